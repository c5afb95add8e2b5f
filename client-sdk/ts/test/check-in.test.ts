// The journey after the sale through the SDK against the real server, over gRPC and gRPC-web, on every
// backend: a confirmed booking on an international flight checks in with a passport (the SDK adds the
// idempotency key the proto's policy asks for), its pass's barcode string reads back, and at the gate the
// operator boards the passenger once.
import { describe, expect, it } from "vitest";

import { CabinClass, ErrorCode, PassengerType, TravelDocumentType, TicketStatus, decodeBcbp } from "../src/index.js";
import { expectDecoded, failure } from "./support/contract.js";
import { MATRIX, clientFor, newFlight, operatorFor, signUp } from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("checks in with a passport, reads the pass back, and boards once", async () => {
    const operator = await operatorFor(server(), transport);
    const flight = await newFlight(operator, "AB", { hoursAhead: 6, destination: "DXB" });
    const client = clientFor(server(), transport);
    await signUp(client, "check-in");
    const held = await client.booking.createBooking({
      flightId: flight.id,
      cabin: CabinClass.ECONOMY,
      passengers: [{ givenName: "Sara", familyName: "Ahmed", dateOfBirth: "1990-01-01", type: PassengerType.ADULT }],
      contactEmail: "sara@example.com",
    });
    const booking = await operator.booking.confirmBooking({ bookingId: held.id, note: "paid at the desk" });
    expect(booking.tickets).toHaveLength(1);

    const missing = await failure(client.checkIn.checkIn({ bookingId: booking.id, flightId: flight.id }));
    expectDecoded(ErrorCode.DOCUMENTS_REQUIRED, missing);
    expect(missing.fieldViolations.map((violation) => violation.field)).toEqual(["documents[0]"]);

    const passport = {
      type: TravelDocumentType.PASSPORT,
      number: "A1234567",
      issuingCountry: "SA",
      nationality: "SA",
      expiresOn: "2031-01-01",
    };
    const { boardingPasses } = await client.checkIn.checkIn({ bookingId: booking.id, flightId: flight.id, documents: [passport] });
    expect(boardingPasses).toHaveLength(1);
    const pass = boardingPasses[0]!;
    const fields = decodeBcbp(pass.bcbp);
    expect(fields).toMatchObject({
      passengerName: "AHMED/SARA",
      bookingReference: booking.reference,
      from: "RUH",
      to: "DXB",
      carrier: flight.flightNumber.slice(0, 2),
      flightNumber: Number(flight.flightNumber.slice(2)),
      compartment: "Y",
      seat: pass.seatNumber,
      sequenceNumber: pass.sequenceNumber,
      ticketNumber: booking.tickets[0]!.ticketNumber,
    });
    const again = await client.checkIn.getBoardingPass({ bookingId: booking.id, flightId: flight.id, passengerIndex: 0 });
    expect(again.bcbp).toBe(pass.bcbp);

    const boarded = await operator.checkIn.boardPassenger({ flightId: flight.id, bcbp: pass.bcbp });
    expect(boarded.boarded).toBe(true);
    expectDecoded(ErrorCode.ALREADY_BOARDED, await failure(operator.checkIn.boardPassenger({ flightId: flight.id, bcbp: pass.bcbp })));
    const { passengers } = await operator.checkIn.listPassengers({ flightId: flight.id });
    expect(passengers.map((entry) => [entry.ticketNumber, entry.boarded, entry.documentsPresent])).toEqual([
      [pass.ticketNumber, true, true],
    ]);
    const read = await client.booking.getBooking({ bookingId: booking.id });
    expect(read.tickets[0]!.status).toBe(TicketStatus.BOARDED);
    expect(read.passengers[0]!.document?.number).toBe("A1234567");
  });
});
