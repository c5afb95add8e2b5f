// How the page shows the API's values.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  CabinClass,
  flightLocalTimes,
  FlightTimeError,
  formatDayChange,
  type Flight,
  type FlightLocalTimes,
  type LocalTime,
  type Money,
} from "@aerobook/sdk";

export function money(amount: Money | undefined): string {
  if (amount === undefined) {
    return "";
  }
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: amount.currencyCode });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(Number(amount.amountMinor) / 10 ** digits);
}

/** A cabin as the search form names it: "Premium economy". */
export function cabinName(cabin: CabinClass): string {
  switch (cabin) {
    case CabinClass.ECONOMY:
      return "Economy";
    case CabinClass.PREMIUM_ECONOMY:
      return "Premium economy";
    case CabinClass.BUSINESS:
      return "Business";
    case CabinClass.FIRST:
      return "First";
    case CabinClass.UNSPECIFIED:
      return "Any cabin";
    default:
      return `Cabin ${cabin}`;
  }
}

/** A flight's times as the page shows them: each in its own airport's local time. */
export interface ShownTimes {
  departure: string;
  arrival: string;
  /** `""`, `"+1"`, `"-1"`... */
  dayChange: string;
  /** Local departure day at the origin, e.g. "Tue, 1 Dec". */
  departureDay: string;
  /** Local arrival day at the destination. */
  arrivalDay: string;
  /** Tooltips naming the zone each time is read in. */
  departureZone: string;
  arrivalZone: string;
}

/**
 * The flight's departure and arrival in local airport time (SDK `flightLocalTimes`). A flight without time
 * zones (a server older than the page) is shown in UTC, labelled so, rather than in the browser's zone.
 */
export function flightTimes(flight: Flight): ShownTimes {
  let times: FlightLocalTimes;
  let zonesKnown = true;
  try {
    times = flightLocalTimes(flight);
  } catch (error) {
    if (!(error instanceof FlightTimeError) || flight.departsAt === undefined || flight.arrivesAt === undefined) {
      throw error;
    }
    times = flightLocalTimes({ ...flight, originTimeZone: "UTC", destinationTimeZone: "UTC" });
    zonesKnown = false;
  }
  const { departure, arrival, dayChange } = times;
  const day = (at: LocalTime) =>
    at.at.toLocaleDateString(undefined, { timeZone: at.timeZone, weekday: "short", day: "numeric", month: "short" });
  const clock = (at: LocalTime) => (zonesKnown ? at.time : `${at.time} UTC`);
  const zone = (at: LocalTime) => (zonesKnown ? `Local time (${at.timeZone})` : "UTC: the airport's time zone is unknown");
  return {
    departure: clock(departure),
    arrival: clock(arrival),
    dayChange: formatDayChange(dayChange),
    departureDay: day(departure),
    arrivalDay: day(arrival),
    departureZone: zone(departure),
    arrivalZone: zone(arrival),
  };
}

export function duration(from: Timestamp | undefined, to: Timestamp | undefined): string {
  if (from === undefined || to === undefined) {
    return "";
  }
  const minutes = Math.round((timestampDate(to).getTime() - timestampDate(from).getTime()) / 60_000);
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** `mm:ss` until `until`, or `00:00` once past. */
export function countdown(until: Date, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.floor((until.getTime() - now) / 1000));
  return `${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
}

/** A wait as people say it: "about 40 s", "about 3 min". */
export function roughly(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return seconds < 90 ? `about ${seconds} s` : `about ${Math.round(seconds / 60)} min`;
}

/** Tomorrow at Riyadh (UTC+3), where the demo schedule's dates are local. */
export function tomorrowInRiyadh(): string {
  return new Date(Date.now() + 3 * 3_600_000 + 86_400_000).toISOString().slice(0, 10);
}

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
