// A return trip through the SDK against the real server, over gRPC and gRPC-web, on every backend: both legs
// searched in one call, held in one booking and paid once; then the return changed to a dearer flight, the
// new seats held while the change waits for its own payment, and the change made when that is paid.
import { describe, expect, it } from "vitest";

import { BookingStatus, CabinClass, PassengerType, PaymentStatus } from "../src/index.js";
import { MATRIX, clientFor, eventually, riyadhDate, signUp } from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("books a return trip, pays once, and pays for a dearer return flight before it changes", async () => {
    const client = clientFor(server(), transport);
    await signUp(client, "trip");
    const [out, back] = [riyadhDate(2), riyadhDate(5)];
    const { legs } = await client.flight.searchTrips({
      legs: [
        { origin: "RUH", destination: "JED", departureDate: out },
        { origin: "JED", destination: "RUH", departureDate: back },
      ],
      passengers: 1,
      cabin: CabinClass.ECONOMY,
    });
    expect(legs).toHaveLength(2);
    const [outbound, returns] = [legs[0]!.flights, legs[1]!.flights];
    const [first, later] = [returns.find((f) => f.flightNumber === "AB102"), returns.find((f) => f.flightNumber === "AB106")];
    expect(outbound.length > 0 && first !== undefined && later !== undefined).toBe(true);

    const trip = await client.booking.createBooking({
      passengers: [{ givenName: "Sara", familyName: "Ahmed", dateOfBirth: "1990-01-01", type: PassengerType.ADULT }],
      contactEmail: "sara@example.com",
      segments: [outbound[0]!, first!].map((flight) => ({ flightId: flight.id, cabin: CabinClass.ECONOMY, seatNumbers: [] })),
    });
    expect(trip.segments.map((segment) => segment.flightId)).toEqual([outbound[0]!.id, first!.id]);
    const paying = await client.payment.createPaymentIntent({ bookingId: trip.id });
    expect(paying.amount?.amountMinor).toBe(trip.totalPrice?.amountMinor);
    await eventually(
      () => client.booking.getBooking({ bookingId: trip.id }),
      (current) => current.status === BookingStatus.CONFIRMED,
      "the trip's one payment to confirm it",
    );

    const quote = await client.booking.quoteChange({
      bookingId: trip.id,
      flightId: first!.id,
      newFlightId: later!.id,
      newCabin: CabinClass.ECONOMY,
    });
    const due = quote.amountDue!.amountMinor;
    expect(due).toBe(quote.fareDifference!.amountMinor + quote.changeFee!.amountMinor);
    expect(due > 0n).toBe(true);
    const waiting = await client.booking.changeFlight({ bookingId: trip.id, quoteId: quote.quoteId });
    expect(waiting.pendingChange?.newFlightId).toBe(later!.id);
    expect(waiting.segments[1]!.flightId).toBe(first!.id);
    const forChange = await client.payment.createPaymentIntent({ bookingId: trip.id });
    expect(forChange.amount?.amountMinor).toBe(due);
    const changed = await eventually(
      () => client.booking.getBooking({ bookingId: trip.id }),
      (current) => current.pendingChange === undefined,
      "the change's payment to make the change",
    );
    expect(changed.segments[1]!.flightId).toBe(later!.id);
    expect(changed.segments[1]!.seatNumbers).toEqual(waiting.pendingChange!.seatNumbers);
    expect(changed.totalPrice?.amountMinor).toBe(trip.totalPrice!.amountMinor + due);
    expect((await client.payment.getPayment({ bookingId: trip.id })).status).toBe(PaymentStatus.SUCCEEDED);
  });
});
