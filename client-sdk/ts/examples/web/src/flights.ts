// A flight as the results, the trip and the booking show it: its times, its one-line summary, its cabins.
import type { CabinAvailability, CabinClass, Flight } from "@aerobook/sdk";

import { duration, escape, flightTimes } from "./format.js";

export function cabinOf(flight: Pick<Flight, "cabins">, cabin: CabinClass): CabinAvailability | undefined {
  return flight.cabins.find((each) => each.cabin === cabin);
}

/** The flight's departure and arrival, each in its airport's local time, with the arrival's day change. */
export function timesHtml(flight: Flight): string {
  const shown = flightTimes(flight);
  const change = shown.dayChange
    ? `<sup class="day-change" data-testid="day-change" title="Arrives ${escape(shown.arrivalDay)}">${escape(shown.dayChange)}</sup>`
    : "";
  return `<span class="time" data-testid="departure-time" title="${escape(shown.departureZone)}">${escape(shown.departure)}</span>
    <span class="code">${escape(flight.origin)}</span>
    <span class="line">${duration(flight.departsAt, flight.arrivesAt)}</span>
    <span class="time" data-testid="arrival-time" title="${escape(shown.arrivalZone)}">${escape(shown.arrival)}${change}</span>
    <span class="code">${escape(flight.destination)}</span>`;
}

/** One line for summaries: "AB101 · Tue, 1 Dec · RUH 06:00 → JED 07:45 +1". */
export function flightLine(flight: Flight): string {
  const shown = flightTimes(flight);
  const change = shown.dayChange ? ` <span class="day-change">${escape(shown.dayChange)}</span>` : "";
  return `${escape(flight.flightNumber)} · ${escape(shown.departureDay)} · ${escape(flight.origin)} ${escape(shown.departure)}
    → ${escape(flight.destination)} ${escape(shown.arrival)}${change}`;
}
