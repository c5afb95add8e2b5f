// The SDK's pure parts, without a server: decoding statuses as they arrive on the wire, the retry rules,
// the policy read from the descriptors, flight times in local airport time, and waiting for a pass
// against an in-memory waiting room.
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, timestampFromDate, type Any } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";

import {
  AdminService,
  AirportService,
  ApiError,
  AuthService,
  BookingService,
  createAerobookClient,
  DEFAULT_RETRY_POLICY,
  ErrorCode,
  flightLocalTimes,
  FlightService,
  FlightTimeError,
  formatFlightTimes,
  localTime,
  NEVER_RETRY,
  policyOf,
  reasonOf,
  uuidv7,
  waitForPass,
  WaitingRoomError,
  WaitingRoomService,
  type FlightSchedule,
  type RetryPolicy,
  type WaitingRoomProgress,
  type WaitingRoomStatusSchema,
} from "../src/index.js";
import * as api from "../src/gen/index.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";
import { delayAfter } from "../src/retry.js";

/** The trailers of a failed call, built the way the server builds them. */
function trailers(code: Code, message: string, details: Any[]): Headers {
  const status = create(StatusSchema, { code, message, details });
  return new Headers({
    "grpc-status": String(code),
    "grpc-message": encodeURIComponent(message),
    "grpc-status-details-bin": Buffer.from(toBinary(StatusSchema, status)).toString("base64").replace(/=+$/, ""),
  });
}

function serverError(reason: string, retryable: boolean): ApiError {
  const details = [
    anyPack(ErrorInfoSchema, create(ErrorInfoSchema, {
      reason,
      domain: "aerobook",
      metadata: { correlationId: "corr-1", retryable: String(retryable), seatsAvailable: "0" },
    })),
    anyPack(RequestInfoSchema, create(RequestInfoSchema, { requestId: "corr-1" })),
    ...(retryable ? [anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: { seconds: 1n, nanos: 500_000_000 } }))] : []),
  ];
  return ApiError.from(findTrailerError(trailers(Code.FailedPrecondition, "refused", details)));
}

describe("ApiError", () => {
  it("decodes every code of the proto enum from its reason", () => {
    const codes = Object.values(ErrorCode).filter((value): value is ErrorCode => typeof value === "number" && value !== 0);
    expect(codes.length).toBeGreaterThanOrEqual(22);
    for (const code of codes) {
      const retryable = code % 2 === 0;
      const error = serverError(reasonOf(code), retryable);
      expect({ code: error.code, origin: error.origin, retryable: error.retryable }).toEqual({ code, origin: "server", retryable });
      expect(error.correlationId).toBe("corr-1");
      expect(error.retryAfter).toBe(retryable ? 1_500 : undefined);
      expect(error.metadata["seatsAvailable"]).toBe("0");
      expect(error.grpcCode).toBe(Code.FailedPrecondition);
    }
  });

  it("reads field violations, and RequestInfo when ErrorInfo lacks the id", () => {
    const details = [
      anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "VALIDATION_ERROR", domain: "aerobook", metadata: { retryable: "false" } })),
      anyPack(RequestInfoSchema, create(RequestInfoSchema, { requestId: "corr-2" })),
      anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [{ field: "passengers[1].given_name", description: "must not be empty" }] })),
    ];
    const error = ApiError.from(findTrailerError(trailers(Code.InvalidArgument, "invalid", details)));
    expect(error.correlationId).toBe("corr-2");
    expect(error.fieldViolations).toEqual([{ field: "passengers[1].given_name", description: "must not be empty" }]);
    expect(String(error)).toBe("VALIDATION_ERROR: invalid (correlation id corr-2)");
  });

  it("falls back on the gRPC code for statuses without the contract's details", () => {
    const bare = new Headers({ "grpc-status": String(Code.ResourceExhausted), "grpc-message": "too large", "x-correlation-id": "from-header" });
    const error = ApiError.from(findTrailerError(bare), "sent");
    expect({ code: error.code, origin: error.origin, correlationId: error.correlationId }).toEqual({
      code: ErrorCode.RATE_LIMITED,
      origin: "protocol",
      correlationId: "from-header",
    });
    const unknown = ApiError.from(findTrailerError(new Headers({ "grpc-status": String(Code.Unimplemented) })), "sent");
    expect({ code: unknown.code, retryable: unknown.retryable, correlationId: unknown.correlationId }).toEqual({
      code: ErrorCode.INTERNAL_ERROR,
      retryable: false,
      correlationId: "sent",
    });
    const foreign = [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "UPSTREAM", domain: "proxy.example" }))];
    const gateway = ApiError.from(findTrailerError(trailers(Code.Unavailable, "gateway", foreign)), "sent");
    expect({ code: gateway.code, retryable: gateway.retryable }).toEqual({ code: ErrorCode.SERVICE_UNAVAILABLE, retryable: true });
  });

  it("calls a failure without any gRPC status a transport failure", () => {
    const error = ApiError.from(new TypeError("fetch failed"), "sent");
    expect({ code: error.code, origin: error.origin, retryable: error.retryable }).toEqual({
      code: ErrorCode.SERVICE_UNAVAILABLE,
      origin: "transport",
      retryable: true,
    });
  });
});

describe("delayAfter", () => {
  const error = (origin: ApiError["origin"], retryable: boolean, retryAfter?: number) =>
    new ApiError({ code: ErrorCode.SERVICE_UNAVAILABLE, message: "", correlationId: "", retryable, retryAfter, origin, grpcCode: Code.Unavailable });

  it("doubles the backoff within its jitter bounds and stops after maxAttempts", () => {
    const retryable = error("server", true);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, retryable, false, undefined, 0)).toBe(50);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, retryable, false, undefined, 1)).toBe(100);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 3, retryable, false, undefined, 1)).toBe(400);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 4, retryable, false, undefined, 0.5)).toBeUndefined();
    expect(delayAfter({ ...DEFAULT_RETRY_POLICY, maxAttempts: 40 }, 30, retryable, false, undefined, 1)).toBe(5_000);
    expect(delayAfter(NEVER_RETRY, 1, retryable, true, undefined, 0.5)).toBeUndefined();
  });

  it("takes RetryInfo as a floor and the deadline as a ceiling", () => {
    const rateLimited = error("server", true, 1_200);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, rateLimited, false, undefined, 0.9)).toBe(1_200);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, rateLimited, false, 1_000, 0.9)).toBeUndefined();
  });

  it("repeats transport failures only of calls that are safe to repeat, and never the SDK's own errors", () => {
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, error("transport", true), false, undefined, 0)).toBeUndefined();
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, error("transport", true), true, undefined, 0)).toBe(50);
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, error("client", true), true, undefined, 0)).toBeUndefined();
    expect(delayAfter(DEFAULT_RETRY_POLICY, 1, error("server", false), true, undefined, 0)).toBeUndefined();
  });
});

describe("policyOf", () => {
  it("reads every RPC's policy and idempotency level from the descriptors", () => {
    const services = Object.values(api).filter((value) => typeof value === "object" && value !== null && "kind" in value && value.kind === "service");
    const methods = services.flatMap((service) => (service as typeof AuthService).methods);
    expect(methods.length).toBeGreaterThanOrEqual(20);
    for (const method of methods) {
      expect(() => policyOf(method)).not.toThrow();
    }
    expect(policyOf(AuthService.method.register)).toMatchObject({ public: true, idempotencyKeyRequired: false, safeToRepeat: false });
    expect(policyOf(AuthService.method.logout)).toMatchObject({ public: true, safeToRepeat: true });
    expect(policyOf(FlightService.method.searchFlights)).toMatchObject({ public: true, safeToRepeat: true });
    expect(policyOf(BookingService.method.createBooking)).toMatchObject({ public: false, idempotencyKeyRequired: true, safeToRepeat: true });
    expect(policyOf(FlightService.method.createFlight).roles).toEqual([api.Role.OPERATOR]);
    expect(policyOf(AirportService.method.listAirports)).toMatchObject({ public: true, idempotencyKeyRequired: false, safeToRepeat: true });
    expect(policyOf(AirportService.method.getAirport)).toMatchObject({ public: true, safeToRepeat: true });
    expect(policyOf(AirportService.method.upsertAirport)).toMatchObject({
      public: false,
      idempotencyKeyRequired: true,
      safeToRepeat: true,
      roles: [api.Role.OPERATOR],
    });
    expect(policyOf(AdminService.method.listJobs)).toMatchObject({ public: false, idempotencyKeyRequired: false, safeToRepeat: true, roles: [api.Role.OPERATOR] });
    expect(policyOf(AdminService.method.getQueueStats)).toMatchObject({ public: false, idempotencyKeyRequired: false, safeToRepeat: true, roles: [api.Role.OPERATOR] });
    expect(policyOf(AdminService.method.retryJob)).toMatchObject({ public: false, idempotencyKeyRequired: true, safeToRepeat: true, roles: [api.Role.OPERATOR] });
    expect(policyOf(AdminService.method.discardJob)).toMatchObject({ public: false, idempotencyKeyRequired: true, safeToRepeat: true, roles: [api.Role.OPERATOR] });
    expect(policyOf(AdminService.method.retryJobs)).toMatchObject({ public: false, idempotencyKeyRequired: true, safeToRepeat: true, roles: [api.Role.OPERATOR] });
  });

  it("gives every service of the generated code a client, AirportService included", async () => {
    const services = Object.entries(api).filter(([, value]) => typeof value === "object" && value !== null && "kind" in value && value.kind === "service");
    expect(services.map(([name]) => name)).toContain("AirportService");
    const transport = createRouterTransport(({ service }) => {
      service(AirportService, {
        getAirport: ({ code }) => ({ code, name: "King Khalid International Airport", city: "Riyadh", countryCode: "SA", timeZone: "Asia/Riyadh" }),
      });
    });
    const client = createAerobookClient(transport, { retry: NEVER_RETRY });
    const accessors = services.map(([name]) => name.replace(/Service$/, "")).map((stem) => stem[0]!.toLowerCase() + stem.slice(1));
    expect(Object.keys(client)).toEqual(expect.arrayContaining([...accessors, "airport", "waitingRoom"]));
    expect(await client.airport.getAirport({ code: "RUH" })).toMatchObject({ code: "RUH", timeZone: "Asia/Riyadh" });
  });

  it("gives AdminService a client whose RetryJob carries an idempotency key and whose reads do not", async () => {
    const keys: Record<string, string | null> = {};
    const transport = createRouterTransport(({ service }) => {
      service(AdminService, {
        getQueueStats: (_, context) => {
          keys["getQueueStats"] = context.requestHeader.get("idempotency-key");
          return { queued: 3n, running: 1n, failed: 0n, dead: 2n };
        },
        listJobs: (_, context) => {
          keys["listJobs"] = context.requestHeader.get("idempotency-key");
          return { jobs: [] };
        },
        retryJob: ({ jobId }, context) => {
          keys["retryJob"] = context.requestHeader.get("idempotency-key");
          return { id: jobId, kind: "SEND_EMAIL", state: api.JobState.QUEUED };
        },
      });
    });
    const client = createAerobookClient(transport, { retry: NEVER_RETRY });
    expect(Object.keys(client)).toContain("admin");
    expect(await client.admin.getQueueStats({})).toMatchObject({ queued: 3n, running: 1n, failed: 0n, dead: 2n });
    expect((await client.admin.listJobs({})).jobs).toEqual([]);
    const jobId = uuidv7();
    expect(await client.admin.retryJob({ jobId })).toMatchObject({ id: jobId, state: api.JobState.QUEUED });
    expect(keys["retryJob"]).toMatch(/^sdk-/);
    expect(keys).toMatchObject({ getQueueStats: null, listJobs: null });
  });
});

describe("flight times in local airport time", () => {
  const flight = (departsAt: string, arrivesAt: string, originTimeZone: string, destinationTimeZone: string): FlightSchedule => ({
    flightNumber: "AB101",
    departsAt: timestampFromDate(new Date(departsAt)),
    arrivesAt: timestampFromDate(new Date(arrivesAt)),
    originTimeZone,
    destinationTimeZone,
  });

  it("reads AB101 out of Riyadh at 06:00 local, not in the machine's zone", () => {
    const ab101 = flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Asia/Riyadh", "Asia/Riyadh");
    expect(flightLocalTimes(ab101)).toEqual({
      departure: { date: "2026-12-01", time: "06:00", timeZone: "Asia/Riyadh", at: new Date("2026-12-01T03:00:00Z") },
      arrival: { date: "2026-12-01", time: "07:45", timeZone: "Asia/Riyadh", at: new Date("2026-12-01T04:45:00Z") },
      dayChange: 0,
    });
    expect(formatFlightTimes(ab101)).toBe("06:00 → 07:45");
  });

  it("marks an arrival on the next local day", () => {
    // Riyadh 22:30 (UTC+3), seven hours to London (UTC+0 in December): 02:30 the next day.
    const overnight = flight("2026-12-01T19:30:00Z", "2026-12-02T02:30:00Z", "Asia/Riyadh", "Europe/London");
    const times = flightLocalTimes(overnight);
    expect([times.departure.date, times.departure.time, times.arrival.date, times.arrival.time, times.dayChange]).toEqual([
      "2026-12-01", "22:30", "2026-12-02", "02:30", 1,
    ]);
    expect(formatFlightTimes(overnight)).toBe("22:30 → 02:30 +1");
    expect(formatFlightTimes(flight("2026-12-01T20:10:00Z", "2026-12-01T22:05:00Z", "Asia/Riyadh", "Asia/Riyadh"))).toBe("23:10 → 01:05 +1");
  });

  it("goes back a day across the date line, Auckland to Honolulu", () => {
    // Auckland 09:00 on 2 December (UTC+13, summer time), 8 h 45 min to Honolulu (UTC-10): 18:45 on 1 December.
    const pacific = flight("2026-12-01T20:00:00Z", "2026-12-02T04:45:00Z", "Pacific/Auckland", "Pacific/Honolulu");
    const times = flightLocalTimes(pacific);
    expect([times.departure.date, times.departure.time, times.arrival.date, times.arrival.time, times.dayChange]).toEqual([
      "2026-12-02", "09:00", "2026-12-01", "18:45", -1,
    ]);
    expect(formatFlightTimes(pacific)).toBe("09:00 → 18:45 -1");
  });

  it("follows daylight saving time and shows midnight as 00:00", () => {
    expect(localTime(new Date("2026-07-01T12:00:00Z"), "Europe/London")).toMatchObject({ date: "2026-07-01", time: "13:00" });
    expect(localTime(timestampFromDate(new Date("2026-12-01T21:00:00Z")), "Asia/Riyadh")).toMatchObject({ date: "2026-12-02", time: "00:00" });
  });

  it("refuses to guess when a time zone or a time is missing or unknown", () => {
    const noZone = flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "", "Asia/Riyadh");
    expect(() => flightLocalTimes(noZone)).toThrow(FlightTimeError);
    expect(() => formatFlightTimes(noZone)).toThrow(/AB101 has no origin_time_zone/);
    expect(() => flightLocalTimes(flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Asia/Riyadh", ""))).toThrow(/no destination_time_zone/);
    expect(() => flightLocalTimes(flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Mars/Olympus", "Asia/Riyadh"))).toThrow(
      /unknown origin_time_zone "Mars\/Olympus"/,
    );
    expect(() => flightLocalTimes({ ...flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Asia/Riyadh", "Asia/Riyadh"), arrivesAt: undefined })).toThrow(
      /AB101 has no arrival time/,
    );
  });
});

describe("uuidv7", () => {
  it("is a version 7 UUID that sorts by time", () => {
    const earlier = uuidv7(1_700_000_000_000);
    const later = uuidv7(1_700_000_000_001);
    expect(earlier).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(earlier < later).toBe(true);
    expect(earlier.slice(0, 13)).toBe("018bcfe5-6800");
  });
});

describe("waitForPass", () => {
  type Status = MessageInitShape<typeof WaitingRoomStatusSchema>;
  const expiresAt = new Date("2026-12-01T03:05:00Z");
  const admitted: Status = { position: 0n, pass: "pass-1", passExpiresAt: timestampFromDate(expiresAt) };
  const place = (position: bigint, seconds: bigint): Status => ({ position, estimatedWait: { seconds, nanos: 500_000_000 } });
  /** Repeats at once: these tests are about whether the wait repeats, not how long it waits. */
  const promptly: RetryPolicy = { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 };
  /** What a dropped connection looks like to the SDK: a failure without any gRPC status. */
  const dropped = () => new ConnectError("connection reset", Code.Unavailable);

  /**
   * An in-memory waiting room whose every join answers the same ticket, and whose watches play `watches`
   * in turn: each its statuses, then its failure if any, else the end of the stream.
   */
  function room(watches: { statuses: Status[]; fails?: ConnectError; hangs?: boolean }[], join?: () => never) {
    const seen = { joins: 0, watched: [] as string[] };
    const transport = createRouterTransport(({ service }) => {
      service(WaitingRoomService, {
        joinWaitingRoom: ({ flightId }) => {
          seen.joins += 1;
          join?.();
          return { ticketId: "ticket-1", flightId, position: 3n };
        },
        async *watchWaitingRoom({ ticketId }, context) {
          seen.watched.push(ticketId);
          const watch = watches.shift() ?? { statuses: [] };
          yield* watch.statuses;
          if (watch.hangs === true) {
            await new Promise((ended) => context.signal.addEventListener("abort", ended));
          }
          if (watch.fails !== undefined) {
            throw watch.fails;
          }
        },
      });
    });
    return { seen, client: createAerobookClient(transport, { retry: NEVER_RETRY }) };
  }

  it("reports each place in the queue, then resolves with the pass", async () => {
    const { seen, client } = room([{ statuses: [place(2n, 2n), place(1n, 1n), admitted] }]);
    const progress: WaitingRoomProgress[] = [];
    const pass = await waitForPass(client, "flight-1", { onStatus: (each) => progress.push(each) });
    expect(pass).toEqual({ pass: "pass-1", expiresAt, ticketId: "ticket-1" });
    expect(progress).toEqual([
      { ticketId: "ticket-1", position: 2, estimatedWaitMs: 2_500 },
      { ticketId: "ticket-1", position: 1, estimatedWaitMs: 1_500 },
    ]);
    expect(seen).toEqual({ joins: 1, watched: ["ticket-1"] });
  });

  it("joins again and keeps watching the same ticket each time the watch breaks after a status", async () => {
    const { seen, client } = room([
      { statuses: [place(3n, 3n)], fails: dropped() },
      { statuses: [place(2n, 2n)], fails: dropped() },
      { statuses: [admitted] },
    ]);
    const pass = await waitForPass(client.waitingRoom, "flight-1", { retry: promptly });
    expect(pass.pass).toBe("pass-1");
    expect(seen).toEqual({ joins: 3, watched: ["ticket-1", "ticket-1", "ticket-1"] });
  });

  it("gives up once the watch keeps breaking without a status", async () => {
    const { seen, client } = room([{ statuses: [], fails: dropped() }, { statuses: [], fails: dropped() }, { statuses: [admitted] }]);
    const error = await waitForPass(client, "flight-1", { retry: promptly }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ApiError);
    expect({ code: (error as ApiError).code, origin: (error as ApiError).origin }).toEqual({ code: ErrorCode.SERVICE_UNAVAILABLE, origin: "transport" });
    expect(seen.joins).toBe(2);
  });

  it("rejects with a WaitingRoomError when the flight sells out or the watch ends without a pass", async () => {
    const soldOut = await waitForPass(room([{ statuses: [place(4n, 9n), { position: 4n, soldOut: true }] }]).client, "flight-1").catch(
      (thrown: unknown) => thrown,
    );
    expect(soldOut).toBeInstanceOf(WaitingRoomError);
    expect(soldOut).toMatchObject({ soldOut: true, flightId: "flight-1" });
    // A pass must come with its expiry.
    const ended = await waitForPass(room([{ statuses: [place(1n, 1n), { pass: "pass-1" }] }]).client, "flight-1").catch((thrown: unknown) => thrown);
    expect(ended).toBeInstanceOf(WaitingRoomError);
    expect(ended).toMatchObject({ soldOut: false, flightId: "flight-1" });
  });

  it("passes a refusal on without repeating it", async () => {
    const noRoom = () => {
      throw new ConnectError("the flight has no waiting room", Code.NotFound, undefined, [
        { desc: ErrorInfoSchema, value: { reason: "NOT_FOUND", domain: "aerobook", metadata: { retryable: "false" } } },
      ]);
    };
    const { seen, client } = room([], noRoom);
    const error = await waitForPass(client, "flight-1", { retry: promptly }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe(ErrorCode.NOT_FOUND);
    expect(seen).toEqual({ joins: 1, watched: [] });
  });

  it("ends the wait with the error of a failing onStatus, without joining again", async () => {
    const { seen, client } = room([{ statuses: [place(5n, 30n)], hangs: true }]);
    const broken = new ApiError({ code: ErrorCode.SERVICE_UNAVAILABLE, message: "", correlationId: "", retryable: true, origin: "transport", grpcCode: Code.Unavailable });
    const wait = waitForPass(client, "flight-1", { retry: promptly, onStatus: () => { throw broken; } });
    await expect(wait).rejects.toBe(broken);
    expect(seen.joins).toBe(1);
  });

  it("stops waiting when aborted, with the signal's reason", async () => {
    const { client } = room([{ statuses: [place(5n, 30n)], hangs: true }]);
    const leaving = new AbortController();
    const reason = new Error("the customer left");
    const wait = waitForPass(client, "flight-1", { signal: leaving.signal, onStatus: () => leaving.abort(reason) });
    await expect(wait).rejects.toBe(reason);
  });
});
