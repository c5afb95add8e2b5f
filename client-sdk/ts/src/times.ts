// Flight times as travellers read them: departure in the origin airport's own time, arrival in the
// destination's, whatever the time zone of the machine showing them. The API sends instants (Timestamps)
// and each airport's IANA zone (`Flight.origin_time_zone`, `destination_time_zone`).
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import type { Flight } from "./gen/aerobook/v1/flight_pb.js";

/** One instant as the clocks of one time zone show it. */
export interface LocalTime {
  /** Local calendar date, `YYYY-MM-DD`. */
  readonly date: string;
  /** Local wall-clock time, `HH:mm` (24 h). */
  readonly time: string;
  /** The IANA time zone it is read in, e.g. `Asia/Riyadh`. */
  readonly timeZone: string;
  /** The instant itself (for formatting with a locale, in `timeZone`). */
  readonly at: Date;
}

/** A flight's departure and arrival in local airport time. */
export interface FlightLocalTimes {
  /** In the origin airport's time zone. */
  readonly departure: LocalTime;
  /** In the destination airport's time zone. */
  readonly arrival: LocalTime;
  /**
   * Calendar days from the local departure date to the local arrival date: 0 the same day, 1 the next
   * day, -1 the day before (crossing the date line towards the Americas).
   */
  readonly dayChange: number;
}

/** What `flightLocalTimes` reads of a flight (a `Flight`, or any object with these fields). */
export type FlightSchedule = Pick<Flight, "departsAt" | "arrivesAt" | "originTimeZone" | "destinationTimeZone"> & {
  /** Named in errors when present. */
  readonly flightNumber?: string;
};

/**
 * A flight whose local times cannot be known: a missing timestamp or time zone (a server older than the
 * contract's `origin_time_zone`/`destination_time_zone`), or a zone this runtime does not know.
 */
export class FlightTimeError extends Error {
  override readonly name = "FlightTimeError";
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** A formatter for `timeZone`, with ASCII digits and a 00..23 hour whatever the locale. */
function formatIn(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US-u-nu-latn", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formats.set(timeZone, format);
  }
  return format;
}

/** `at` as the clocks of `timeZone` (an IANA name) show it. Throws `RangeError` for an unknown zone. */
export function localTime(at: Date | Timestamp, timeZone: string): LocalTime {
  const instant = at instanceof Date ? at : timestampDate(at);
  const parts: Partial<Record<Intl.DateTimeFormatPartTypes, string>> = {};
  for (const part of formatIn(timeZone).formatToParts(instant)) {
    parts[part.type] = part.value;
  }
  const year = (parts.year ?? "").padStart(4, "0");
  return {
    date: `${year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
    timeZone,
    at: instant,
  };
}

/**
 * The flight's departure in its origin's local time and arrival in its destination's, and the number of
 * calendar days between the two local dates. Throws `FlightTimeError` when a time or a zone is missing or
 * the zone is unknown: a wrong local time is worse than none.
 */
export function flightLocalTimes(flight: FlightSchedule): FlightLocalTimes {
  const departure = end(flight, flight.departsAt, flight.originTimeZone, "departure", "origin_time_zone");
  const arrival = end(flight, flight.arrivesAt, flight.destinationTimeZone, "arrival", "destination_time_zone");
  return { departure, arrival, dayChange: daysBetween(departure.date, arrival.date) };
}

function end(
  flight: FlightSchedule,
  at: Timestamp | undefined,
  timeZone: string,
  which: "departure" | "arrival",
  field: string,
): LocalTime {
  const name = flight.flightNumber ? `flight ${flight.flightNumber}` : "flight";
  if (at === undefined) {
    throw new FlightTimeError(`${name} has no ${which} time`);
  }
  if (timeZone === "") {
    throw new FlightTimeError(`${name} has no ${field}: its local ${which} time is unknown (is the server older than the SDK?)`);
  }
  try {
    return localTime(at, timeZone);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new FlightTimeError(`${name}: unknown ${field} "${timeZone}" (${error.message})`);
    }
    throw error;
  }
}

function daysBetween(from: string, to: string): number {
  const day = (date: string) => {
    const [year, month, dayOfMonth] = date.split("-").map(Number);
    return Date.UTC(year ?? 0, (month ?? 1) - 1, dayOfMonth ?? 1);
  };
  return Math.round((day(to) - day(from)) / 86_400_000);
}

/** `""` on the same day, otherwise `"+1"`, `"+2"`, `"-1"`... */
export function formatDayChange(dayChange: number): string {
  return dayChange === 0 ? "" : `${dayChange > 0 ? "+" : "-"}${Math.abs(dayChange)}`;
}

/** `"06:00 → 07:45"`, or `"23:10 → 01:05 +1"` when the flight lands on another local day. */
export function formatFlightTimes(flight: FlightSchedule): string {
  const { departure, arrival, dayChange } = flightLocalTimes(flight);
  const change = formatDayChange(dayChange);
  return `${departure.time} → ${arrival.time}${change === "" ? "" : ` ${change}`}`;
}
