// The whole booking through the SDK against the real server, over gRPC and gRPC-web, on every backend.
import { describe, expect, it } from "vitest";

import { ApiError, BookingStatus, CabinClass, ErrorCode, PaymentStatus, type ResponseInfo } from "../src/index.js";
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
});
