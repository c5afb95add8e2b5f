// Every error code the server produces that a client can cause from outside, decoded by the SDK over
// both transports exactly as the shared contract table (and the Rust SDK's suite) expects.
import { createServer, type Server, type Socket } from "node:net";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CabinClass, ErrorCode, NEVER_RETRY, type ApiError } from "../src/index.js";
import { expectDecoded, failure } from "./support/contract.js";
import {
  MATRIX,
  clientFor,
  expiredCopyOf,
  holdRequest,
  newFlight,
  operatorFor,
  riyadhDate,
  signUp,
} from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend, { AEROBOOK_MAX_HOLDS_PER_USER: "2" });

  it("decodes each refusal with its code, correlation id, retry facts and metadata", async () => {
    const seen: [ErrorCode, ApiError][] = [];
    const expectCode = async (code: ErrorCode, call: Promise<unknown>) => seen.push([code, await failure(call)]);
    const customer = clientFor(server(), transport, { retry: NEVER_RETRY });
    await signUp(customer);
    const operator = await operatorFor(server(), transport);
    const flight = await newFlight(operator, "AB");

    const anonymous = clientFor(server(), transport);
    const invalid = await failure(anonymous.flight.searchFlights({ origin: "R1", destination: "JED", departureDate: riyadhDate(1), passengers: 1 }));
    expectDecoded(ErrorCode.VALIDATION_ERROR, invalid);
    expect(invalid.fieldViolations.map((violation) => violation.field)).toContain("origin");
    await expectCode(ErrorCode.UNAUTHORIZED, anonymous.auth.getMe({}));

    const expired = clientFor(server(), transport);
    const accessToken = (await customer.tokens())?.accessToken ?? "";
    await expired.setTokens({ accessToken: expiredCopyOf(accessToken) });
    await expectCode(ErrorCode.TOKEN_EXPIRED, expired.auth.getMe({}));
    await expectCode(ErrorCode.FORBIDDEN, customer.flight.createFlight({ flightNumber: "XY990", origin: "RUH", destination: "JED" }));
    await expectCode(ErrorCode.NOT_FOUND, customer.booking.getBooking({ bookingId: crypto.randomUUID() }));

    const key = `ts-conflict-${crypto.randomUUID()}`;
    await customer.booking.createBooking(holdRequest(flight, ["Layla"], ["10A"]), { idempotencyKey: key });
    await expectCode(ErrorCode.IDEMPOTENCY_CONFLICT, customer.booking.createBooking(holdRequest(flight, ["Omar"]), { idempotencyKey: key }));
    await expectCode(ErrorCode.SEATS_UNAVAILABLE, customer.booking.createBooking(holdRequest(flight, ["Sami"], ["10A"])));
    const second = await customer.booking.createBooking(holdRequest(flight, ["Omar"], ["10B"]));
    await expectCode(ErrorCode.MAX_PER_USER_EXCEEDED, customer.booking.createBooking(holdRequest(flight, ["Sami"])));
    await customer.booking.cancelBooking({ bookingId: second.id });
    await expectCode(ErrorCode.INVALID_STATE_TRANSITION, customer.booking.cancelBooking({ bookingId: second.id }));

    const offline = await customer.booking.createBooking(holdRequest(flight, ["Sami"]));
    await operator.booking.confirmBooking({ bookingId: offline.id, note: "paid at the desk" });
    await expectCode(ErrorCode.PAYMENT_REQUIRED, customer.payment.refundBooking({ bookingId: offline.id }));

    expect(seen.map(([code]) => ErrorCode[code])).toHaveLength(9);
    for (const [code, error] of seen) {
      expectDecoded(code, error);
    }
  });

  it("keeps a caller's correlation id on errors", async () => {
    const error = await failure(clientFor(server(), transport).auth.getMe({}, { correlationId: "ts-support-42" }));
    expectDecoded(ErrorCode.UNAUTHORIZED, error, "ts-support-42");
  });
});

describe.each(MATRIX)("rate limits on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend, { AEROBOOK_RATE_LIMIT_SEARCH: "2/1" });

  const search = { origin: "RUH", destination: "JED", departureDate: riyadhDate(1), passengers: 1, cabin: CabinClass.ECONOMY };

  it("decodes RATE_LIMITED with the server's RetryInfo, then repeats reads after that delay", async () => {
    const impatient = clientFor(server(), transport, { retry: NEVER_RETRY });
    const answers = await Promise.allSettled([0, 1, 2].map(() => impatient.flight.searchFlights(search)));
    const refused = answers.filter((answer) => answer.status === "rejected");
    expect(refused).toHaveLength(1);
    expectDecoded(ErrorCode.RATE_LIMITED, (refused[0] as PromiseRejectedResult).reason as ApiError);

    const patient = clientFor(server(), transport);
    const started = Date.now();
    for (let index = 0; index < 4; index++) {
      await patient.flight.searchFlights(search);
    }
    // 2 per second, and the bucket was just emptied: at least one wait came from RetryInfo.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });
});

describe.each(MATRIX)("failures only the database can cause, on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("decodes BOOKING_EXPIRED for a hold whose time is up", async () => {
    const customer = clientFor(server(), transport);
    await signUp(customer);
    const operator = await operatorFor(server(), transport);
    const booking = await customer.booking.createBooking(holdRequest(await newFlight(operator, "AB"), ["Sara"]));
    // Holds last at least a minute; move this one's end back to its start instead of waiting.
    server().sql(`UPDATE bookings SET hold_expires_at = created_at WHERE reference = '${booking.reference}'`);
    expectDecoded(ErrorCode.BOOKING_EXPIRED, await failure(customer.payment.createPaymentIntent({ bookingId: booking.id })));
  });

  it("decodes INTERNAL_ERROR without leaking what failed", async () => {
    const customer = clientFor(server(), transport);
    await signUp(customer);
    const operator = await operatorFor(server(), transport);
    const booking = await customer.booking.createBooking(holdRequest(await newFlight(operator, "AB"), ["Sara"]));
    server().sql("ALTER TABLE bookings RENAME TO bookings_gone");
    try {
      const error = await failure(customer.booking.getBooking({ bookingId: booking.id }));
      expectDecoded(ErrorCode.INTERNAL_ERROR, error);
      expect(error.message).not.toMatch(/bookings|sql|table/i);
    } finally {
      server().sql("ALTER TABLE bookings_gone RENAME TO bookings");
    }
  });
});

describe.each(["grpc", "grpc-web"] as const)("without a server, over %s", (transport) => {
  let silent: Server;
  const held: Socket[] = [];
  let silentUrl = "";
  let closedUrl = "";
  beforeAll(async () => {
    // Accepts connections and never answers: only the caller's deadline ends a call.
    silent = createServer((socket) => held.push(socket));
    await new Promise<void>((listening) => silent.listen(0, "127.0.0.1", listening));
    const address = silent.address();
    silentUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    const closed = createServer();
    await new Promise<void>((listening) => closed.listen(0, "127.0.0.1", listening));
    const closedAddress = closed.address();
    closedUrl = `http://127.0.0.1:${typeof closedAddress === "object" && closedAddress !== null ? closedAddress.port : 0}`;
    await new Promise((done) => closed.close(done));
  });
  afterAll(async () => {
    held.forEach((socket) => socket.destroy());
    await new Promise((done) => silent.close(done));
  });

  it("ends a call at its deadline with the SDK's DEADLINE_EXCEEDED and the call's correlation id", async () => {
    const client = clientFor({ url: silentUrl }, transport, { timeoutMs: 300 });
    const error = await failure(client.flight.getFlight({ flightId: crypto.randomUUID() }, { correlationId: "ts-deadline" }));
    expect({ code: error.code, origin: error.origin, correlationId: error.correlationId }).toEqual({
      code: ErrorCode.DEADLINE_EXCEEDED,
      origin: "client",
      correlationId: "ts-deadline",
    });
  });

  it("reports a refused connection as SERVICE_UNAVAILABLE from the transport", async () => {
    const client = clientFor({ url: closedUrl }, transport, { retry: NEVER_RETRY });
    const error = await failure(client.auth.register({ email: "a@example.com", password: "x", fullName: "A" }));
    expect({ code: error.code, origin: error.origin, retryable: error.retryable }).toEqual({
      code: ErrorCode.SERVICE_UNAVAILABLE,
      origin: "transport",
      retryable: true,
    });
  });
});
