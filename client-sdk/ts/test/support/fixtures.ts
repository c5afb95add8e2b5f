// Clients of both transports for a test server, and the requests the tests share.
import { createHmac } from "node:crypto";

import type { Interceptor } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";

import {
  CabinClass,
  PassengerType,
  type AerobookClient,
  type ClientOptions,
  type CreateBookingRequest,
  type Flight,
  CreateBookingRequestSchema,
} from "../../src/index.js";
import { createNodeClient } from "../../src/node.js";
import { createWebClient } from "../../src/web.js";
import { BACKENDS, JWT_SECRET, type Backend, type TestServer } from "./server.js";

export type TransportName = "grpc" | "grpc-web";
export const TRANSPORTS: TransportName[] = ["grpc", "grpc-web"];

/** Every backend of this run crossed with both transports, for `describe.each`. */
export const MATRIX: [Backend, TransportName][] = BACKENDS.flatMap((backend) =>
  TRANSPORTS.map((transport): [Backend, TransportName] => [backend, transport]),
);

export function clientFor(
  server: Pick<TestServer, "url">,
  transport: TransportName,
  options: ClientOptions & { readonly interceptors?: Interceptor[] } = {},
): AerobookClient {
  return transport === "grpc" ? createNodeClient(server.url, options) : createWebClient(server.url, options);
}

export function uniqueEmail(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}@example.com`;
}

export const PASSWORD = "correct horse battery staple";

export async function signUp(client: AerobookClient, prefix = "sdk"): Promise<string> {
  const tokens = await client.auth.register({ email: uniqueEmail(prefix), password: PASSWORD, fullName: "Sara Ahmed" });
  return tokens.user?.id ?? "";
}

/** A client signed in as an operator created with the server's admin command. */
export async function operatorFor(server: TestServer, transport: TransportName): Promise<AerobookClient> {
  const email = uniqueEmail("operator");
  server.admin("create-operator", "--email", email, "--password", PASSWORD);
  const operator = clientFor(server, transport);
  await operator.auth.login({ email, password: PASSWORD });
  return operator;
}

/** Local date at Riyadh (UTC+3, no daylight saving) `days` from now: the demo schedule's dates. */
export function riyadhDate(days: number): string {
  return new Date(Date.now() + 3 * 3_600_000 + days * 86_400_000).toISOString().slice(0, 10);
}

/** Flight numbers already used by this test process: each new flight gets the next one. */
let lastFlightNumber = 1000;

/**
 * A new flight with one economy row (row 10, seats `letters`), so a test owns its inventory: from Riyadh, in
 * two days unless said otherwise.
 */
export async function newFlight(
  operator: AerobookClient,
  letters: string,
  { hoursAhead = 48, destination = "JED" }: { hoursAhead?: number; destination?: string } = {},
): Promise<Flight> {
  const departs = new Date(Date.now() + hoursAhead * 3_600_000);
  departs.setUTCMinutes(0, 0, 0);
  const arrives = new Date(departs.getTime() + 90 * 60_000);
  lastFlightNumber += 1;
  return operator.flight.createFlight({
    flightNumber: `XT${lastFlightNumber}`,
    origin: "RUH",
    destination,
    departsAt: { seconds: BigInt(departs.getTime() / 1000), nanos: 0 },
    arrivesAt: { seconds: BigInt(arrives.getTime() / 1000), nanos: 0 },
    cabins: [
      { cabin: CabinClass.ECONOMY, firstRow: 10, rows: 1, seatLetters: letters, price: { currencyCode: "SAR", amountMinor: 39_500n } },
    ],
  });
}

export function holdRequest(flight: Flight, givenNames: string[], seats: string[] = []): CreateBookingRequest {
  return create(CreateBookingRequestSchema, {
    flightId: flight.id,
    cabin: CabinClass.ECONOMY,
    passengers: givenNames.map((givenName) => ({
      givenName,
      familyName: "Ahmed",
      dateOfBirth: "1990-04-01",
      type: PassengerType.ADULT,
    })),
    seatNumbers: seats,
    contactEmail: "sara@example.com",
  });
}

export function economySeatsAvailable(flight: Pick<Flight, "cabins">): number {
  return flight.cabins.find((cabin) => cabin.cabin === CabinClass.ECONOMY)?.seatsAvailable ?? -1;
}

/**
 * An access token the server will call expired: the claims of `current` (a token it issued) moved two
 * hours into the past, signed with the test key under the same key id.
 */
export function expiredCopyOf(current: string): string {
  const [header, payload] = current.split(".");
  const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as Record<string, unknown>;
  const twoHoursAgo = Math.floor(Date.now() / 1000) - 7_200;
  const moved = Buffer.from(JSON.stringify({ ...claims, iat: twoHoursAgo, exp: twoHoursAgo + 900 })).toString("base64url");
  const signature = createHmac("sha256", JWT_SECRET).update(`${header}.${moved}`).digest("base64url");
  return `${header}.${moved}.${signature}`;
}

/** Polls `read` until `done` holds for its answer (for effects of the payment webhook, which is async). */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const giveUpAt = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (done(value)) {
      return value;
    }
    if (Date.now() > giveUpAt) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
