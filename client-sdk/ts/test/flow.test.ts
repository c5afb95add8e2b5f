// The whole booking through the SDK against the real server, over gRPC and gRPC-web, on every backend,
// directly and through a flight's waiting room.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

import {
  ApiError,
  BookingStatus,
  CabinClass,
  ErrorCode,
  PaymentStatus,
  waitForPass,
  WaitingRoomError,
  type ResponseInfo,
  type WaitingRoomProgress,
} from "../src/index.js";
import { expectDecoded, failure } from "./support/contract.js";
import {
  MATRIX,
  clientFor,
  economySeatsAvailable,
  eventually,
  holdRequest,
  riyadhDate,
  signUp,
  operatorFor,
  newFlight,
} from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("registers, searches, holds seats, pays, confirms, cancels and signs out", async () => {
    const client = clientFor(server(), transport);
    let answered: ResponseInfo | undefined;
    const tokens = await client.auth.register(
      { email: `flow-${crypto.randomUUID()}@example.com`, password: "correct horse battery staple", fullName: "Sara Ahmed" },
      { correlationId: "ts-flow-1", onResponse: (info) => (answered = info) },
    );
    expect(answered?.correlationId).toBe("ts-flow-1");
    expect(answered?.header.get("x-correlation-id")).toBe("ts-flow-1");
    expect((await client.tokens())?.accessToken).toBe(tokens.accessToken);
    expect((await client.auth.getMe({})).email).toBe(tokens.user?.email);

    const { flights } = await client.flight.searchFlights({
      origin: "RUH",
      destination: "JED",
      departureDate: riyadhDate(1),
      passengers: 2,
      cabin: CabinClass.ECONOMY,
    });
    expect(flights.length).toBeGreaterThan(0);
    const flight = flights[0]!;
    const seatMap = await client.flight.getSeatMap({ flightId: flight.id, cabin: CabinClass.ECONOMY });
    const free = seatMap.seats.filter((seat) => seat.available).map((seat) => seat.seatNumber);
    const seats = free.slice(0, 2);
    expect(seats).toHaveLength(2);

    const booking = await client.booking.createBooking(holdRequest(flight, ["Sara", "Omar"], seats));
    expect(booking.status).toBe(BookingStatus.HELD);
    expect([...booking.seatNumbers].sort()).toEqual([...seats].sort());
    const after = await client.flight.getFlight({ flightId: flight.id });
    expect(economySeatsAvailable(after)).toBe(economySeatsAvailable(flight) - 2);

    const payment = await client.payment.createPaymentIntent({ bookingId: booking.id });
    expect(payment.clientSecret).not.toBe("");
    expect(payment.amount?.amountMinor).toBe(booking.totalPrice?.amountMinor);
    const confirmed = await eventually(
      () => client.booking.getBooking({ bookingId: booking.id }),
      (current) => current.status === BookingStatus.CONFIRMED,
      "the simulated payment to confirm the booking",
    );
    expect(confirmed.reference).toBe(booking.reference);
    expect((await client.payment.getPayment({ bookingId: booking.id })).status).toBe(PaymentStatus.SUCCEEDED);

    const second = await client.booking.createBooking(holdRequest(flight, ["Layla"]));
    const cancelled = await client.booking.cancelBooking({ bookingId: second.id, reason: "changed plans" });
    expect(cancelled.status).toBe(BookingStatus.CANCELLED);
    const mine = await client.booking.listBookings({ flightId: flight.id });
    expect(mine.bookings.map((each) => each.id).sort()).toEqual([booking.id, second.id].sort());

    await client.signOut();
    expect(await client.tokens()).toBeUndefined();
    const refused = await client.auth.getMe({}).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe(ErrorCode.UNAUTHORIZED);
  });

  it("streams live availability: the current state first, then each change", async () => {
    const operator = await operatorFor(server(), transport);
    const flight = await newFlight(operator, "ABC");
    const customer = clientFor(server(), transport);
    await signUp(customer);
    const updates = customer.flight.watchAvailability({ flightId: flight.id })[Symbol.asyncIterator]();
    const first = await updates.next();
    expect(economySeatsAvailable(first.value)).toBe(3);
    await customer.booking.createBooking(holdRequest(flight, ["Sara"], ["10B"]));
    const next = await updates.next();
    expect(economySeatsAvailable(next.value)).toBe(2);
    await updates.return?.();
  });

  it("books through a flight's waiting room with the pass it hands out, and only with it", async () => {
    const operator = await operatorFor(server(), transport);
    const { flights } = await operator.flight.searchFlights({ origin: "RUH", destination: "JED", departureDate: riyadhDate(3), passengers: 1 });
    const [flight, roomless] = flights;
    const room = await operator.waitingRoom.configureWaitingRoom({ flightId: flight!.id, enabled: true, admitPerMinute: 6_000, passTtlSeconds: 300 });
    expect(room).toMatchObject({ flightId: flight!.id, enabled: true, admitPerMinute: 6_000, passTtlSeconds: 300 });
    expect(await operator.waitingRoom.getWaitingRoom({ flightId: roomless!.id })).toMatchObject({ enabled: false, admitPerMinute: 0 });

    const customer = clientFor(server(), transport);
    await signUp(customer);
    expectDecoded(ErrorCode.WAITING_ROOM_REQUIRED, await failure(customer.booking.createBooking(holdRequest(flight!, ["Sara"]))));
    expectDecoded(ErrorCode.NOT_FOUND, await failure(waitForPass(customer, roomless!.id)));

    const admitted = await waitForPass(customer, flight!.id);
    expect(admitted.pass).not.toBe("");
    expect(admitted.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(admitted.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 301_000);
    // The pass is the customer's own: another customer cannot book with it.
    const stranger = clientFor(server(), transport);
    await signUp(stranger);
    expectDecoded(
      ErrorCode.WAITING_ROOM_REQUIRED,
      await failure(stranger.booking.createBooking({ ...holdRequest(flight!, ["Omar"]), waitingRoomPass: admitted.pass })),
    );
    const booking = await customer.booking.createBooking({ ...holdRequest(flight!, ["Sara"]), waitingRoomPass: admitted.pass });
    expect(booking.status).toBe(BookingStatus.HELD);

    // Joining again while the pass is valid keeps the admitted ticket.
    expect(await customer.waitingRoom.joinWaitingRoom({ flightId: flight!.id })).toMatchObject({ ticketId: admitted.ticketId, position: 0n });
    expect(await operator.waitingRoom.getWaitingRoom({ flightId: flight!.id })).toMatchObject({ enabled: true, waiting: 0n, admitted: 1n });
  });

  it("reports the place in the queue until the room opens", async () => {
    const operator = await operatorFor(server(), transport);
    const flight = await newFlight(operator, "AB");
    const customer = clientFor(server(), transport);
    await signUp(customer);
    // A whole second, so no rounding of the server's lets it open early.
    const opensAt = new Date(Math.ceil((Date.now() + 3_000) / 1_000) * 1_000);
    await operator.waitingRoom.configureWaitingRoom({
      flightId: flight.id,
      enabled: true,
      admitPerMinute: 6_000,
      passTtlSeconds: 60,
      opensAt: timestampFromDate(opensAt),
    });
    const progress: WaitingRoomProgress[] = [];
    const joinedAt = Date.now();
    const admitted = await waitForPass(customer, flight.id, { onStatus: (each) => progress.push(each) });
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt.getTime());
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toMatchObject({ ticketId: admitted.ticketId, position: 1 });
    expect(progress[0]!.estimatedWaitMs).toBeGreaterThan(0);
    expect(progress[0]!.estimatedWaitMs).toBeLessThanOrEqual(opensAt.getTime() - joinedAt + 1_000);
    const booking = await customer.booking.createBooking({ ...holdRequest(flight, ["Sara"]), waitingRoomPass: admitted.pass });
    expect(booking.status).toBe(BookingStatus.HELD);
  });

  it("tells whoever waits for a sold-out flight that it sold out", async () => {
    const operator = await operatorFor(server(), transport);
    const flight = await newFlight(operator, "A");
    await operator.waitingRoom.configureWaitingRoom({ flightId: flight.id, enabled: true, admitPerMinute: 6_000, passTtlSeconds: 60 });
    const first = clientFor(server(), transport);
    await signUp(first);
    const { pass } = await waitForPass(first, flight.id);
    await first.booking.createBooking({ ...holdRequest(flight, ["Sara"]), waitingRoomPass: pass });

    const late = clientFor(server(), transport);
    await signUp(late);
    const error = await waitForPass(late, flight.id).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(WaitingRoomError);
    expect(error).toMatchObject({ soldOut: true, flightId: flight.id });
  });
});
