// The boarding-pass string decoder against the examples published with IATA Resolution 792 (Attachment B),
// field by field, as the Rust SDK's decoder is tested.
import { describe, expect, it } from "vitest";

import { BcbpError, decodeBcbp } from "../src/index.js";

const MANDATORY_ONLY = "M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100";
const WITH_TICKET =
  "M1GRANDMAIRE/MELANIE  EABC123 GVACDGAF 0123 339C002F0025 130>5002A0571234567890  AF AF 1234567890123456    Y^18ABCDEFGH";
const ALL_ITEMS =
  "M1DESMARAIS/LUC       EAB12C3 YULFRAAC 0834 326J003A0027 167>5321WW1325BAC 0014123456002001412346700100141234789012A0141234567890 1AC AC 1234567890123    4PCYLX58Z^108ABCDEFGH";

describe("decodeBcbp", () => {
  it("reads the mandatory items of the published example", () => {
    expect(decodeBcbp(MANDATORY_ONLY)).toEqual({
      passengerName: "DESMARAIS/LUC",
      electronicTicket: true,
      bookingReference: "ABC123",
      from: "YUL",
      to: "FRA",
      carrier: "AC",
      flightNumber: 834,
      dayOfYear: 326,
      compartment: "J",
      seat: "1A",
      sequenceNumber: 25,
      passengerStatus: "1",
    });
  });

  it("reads the ticket number from the repeated conditional items, past any unique ones", () => {
    const melanie = decodeBcbp(WITH_TICKET);
    expect([melanie.passengerName, melanie.from, melanie.to, melanie.seat, melanie.compartment]).toEqual([
      "GRANDMAIRE/MELANIE",
      "GVA",
      "CDG",
      "2F",
      "C",
    ]);
    expect([melanie.flightNumber, melanie.dayOfYear, melanie.ticketNumber]).toEqual([123, 339, "0571234567890"]);
    const luc = decodeBcbp(ALL_ITEMS);
    expect([luc.bookingReference, luc.seat, luc.sequenceNumber, luc.ticketNumber]).toEqual(["AB12C3", "3A", 27, "0141234567890"]);
  });

  it("names the item of a string that is not a pass", () => {
    const item = (pass: string) => {
      try {
        decodeBcbp(pass);
        return "none";
      } catch (error) {
        return error instanceof BcbpError ? error.item : "other";
      }
    };
    expect(item("")).toBe("pass");
    expect(item(`X1${MANDATORY_ONLY.slice(2)}`)).toBe("format");
    expect(item(`${MANDATORY_ONLY.slice(0, 58)}FF>6`)).toBe("conditional_size");
  });
});
