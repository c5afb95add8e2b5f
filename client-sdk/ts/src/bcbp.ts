// The bar coded boarding pass string of the contract (`BoardingPass.bcbp`, IATA Resolution 792, format M,
// one leg) read back into its fields, as the Rust SDK's `Bcbp::decode` does: for apps that show a pass's
// details offline, and for tests that read a rendered barcode.

/** One leg's boarding pass, field by field. */
export interface BoardingPassFields {
  /** `SURNAME/GIVEN`. */
  passengerName: string;
  electronicTicket: boolean;
  bookingReference: string;
  /** IATA airport codes. */
  from: string;
  to: string;
  carrier: string;
  flightNumber: number;
  flightSuffix?: string;
  /** The flight's date as its day of the year (1..=366). */
  dayOfYear: number;
  compartment: string;
  /** `12C`, or `INF`. */
  seat: string;
  sequenceNumber: number;
  passengerStatus: string;
  /** The 13-digit ticket number, when the pass carries it. */
  ticketNumber?: string;
}

/** Why a string is not a pass: the item at fault. */
export class BcbpError extends Error {
  constructor(
    readonly item: string,
    problem: string,
  ) {
    super(`${item}: ${problem}`);
    this.name = "BcbpError";
  }
}

const MANDATORY_LEN = 60;

function number(item: string, text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) {
    throw new BcbpError(item, `${JSON.stringify(text)} is not a number`);
  }
  return Number.parseInt(text, 10);
}

function hex(item: string, text: string | undefined): number {
  if (text === undefined || !/^[0-9A-Fa-f]{2}$/.test(text)) {
    throw new BcbpError(item, `${JSON.stringify(text ?? "")} is not hexadecimal`);
  }
  return Number.parseInt(text, 16);
}

/** `012C` as people write it: `12C`. */
function seatOf(item: string): string {
  const trimmed = item.trimEnd();
  const match = /^(\d+)([A-Z])$/.exec(trimmed);
  return match === null ? trimmed : `${match[1]!.replace(/^0+/, "")}${match[2]}`;
}

function ticketOf(conditional: string): string | undefined {
  if (conditional === "") {
    return undefined;
  }
  if (!conditional.startsWith(">")) {
    throw new BcbpError("conditional_items", "must start with >");
  }
  const repeatedAt = 4 + hex("unique_conditional_size", conditional.slice(2, 4));
  const repeatedLen = hex("repeated_conditional_size", conditional.slice(repeatedAt, repeatedAt + 2));
  const repeated = conditional.slice(repeatedAt + 2, repeatedAt + 2 + repeatedLen);
  // Items cut short carry no ticket number, as the Rust decoder reads them.
  const ticket = repeated.length === repeatedLen ? repeated.slice(0, 13) : "";
  return /^\d{13}$/.test(ticket) ? ticket : undefined;
}

/** Reads a one-leg pass of format M (any version), ignoring items it does not know and any security data. */
export function decodeBcbp(pass: string): BoardingPassFields {
  if (!/^[\x20-\x7e]*$/.test(pass)) {
    throw new BcbpError("pass", "must be printable ASCII");
  }
  if (pass.length < MANDATORY_LEN) {
    throw new BcbpError("pass", `is ${pass.length} characters; the mandatory items take ${MANDATORY_LEN}`);
  }
  if (!pass.startsWith("M1")) {
    throw new BcbpError("format", "must be M with one leg (M1)");
  }
  const item = (from: number, to: number) => pass.slice(from, to).trimEnd();
  const conditionalLen = hex("conditional_size", pass.slice(58, 60));
  if (pass.length < MANDATORY_LEN + conditionalLen) {
    throw new BcbpError("conditional_size", "runs past the end of the pass");
  }
  const suffix = pass.charAt(43);
  const ticketNumber = ticketOf(pass.slice(MANDATORY_LEN, MANDATORY_LEN + conditionalLen));
  return {
    passengerName: item(2, 22),
    electronicTicket: pass.charAt(22) === "E",
    bookingReference: item(23, 30),
    from: item(30, 33),
    to: item(33, 36),
    carrier: item(36, 39),
    flightNumber: number("flight_number", pass.slice(39, 43)),
    ...(/[A-Z]/.test(suffix) ? { flightSuffix: suffix } : {}),
    dayOfYear: number("day_of_year", pass.slice(44, 47)),
    compartment: pass.charAt(47),
    seat: seatOf(pass.slice(48, 52)),
    sequenceNumber: number("sequence_number", pass.slice(52, 56)),
    passengerStatus: pass.charAt(57),
    ...(ticketNumber === undefined ? {} : { ticketNumber }),
  };
}
