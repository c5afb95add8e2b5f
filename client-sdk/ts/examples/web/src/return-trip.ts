// A return trip: the outbound and return flights of one search (SearchTrips) side by side, one of each
// picked, and both held in one booking (CreateBooking with segments, seats chosen by the server), paid
// once; trip-booking.ts shows the booking and changes its flights.
import type { CabinClass, Flight, LegFlights } from "@aerobook/sdk";

import { cabinOf, flightLine, timesHtml } from "./flights.js";
import { escape, flightTimes, money } from "./format.js";
import { openSignIn } from "./account.js";
import { attempt, client, ui } from "./page.js";
import { partyFrom, passengerFieldsHtml } from "./passengers.js";
import { renderTripBooking, type ReturnTrip } from "./trip-booking.js";

const LEG_TITLES = ["Outbound", "Return"];

/** Shows each leg's flights in a column of its own; picking one of each offers the hold of both. */
export function renderReturnResults(legs: LegFlights[], cabin: CabinClass, passengers: number): void {
  const trip: ReturnTrip = { legs: legs.map((leg) => leg.flights), cabin, passengers, picked: [] };
  if (trip.legs.some((flights) => flights.length === 0)) {
    ui.results.innerHTML = `<p class="empty">No flights with ${passengers} free seat(s) on one of those days. Try other dates.</p>`;
    return;
  }
  ui.results.innerHTML = `<div class="legs">${trip.legs
    .map(
      (flights, leg) => `<section class="leg" data-testid="leg" data-leg="${leg}">
        <h2>${LEG_TITLES[leg] ?? `Flight ${leg + 1}`} · ${escape(flightTimes(flights[0]!).departureDay)}</h2>
        ${flights.map((flight) => legFlightHtml(flight, cabin)).join("")}
      </section>`,
    )
    .join("")}</div>`;
  ui.results.querySelectorAll<HTMLElement>("[data-leg]").forEach((column, leg) => {
    column.querySelectorAll<HTMLButtonElement>("[data-testid=pick]").forEach((button, index) => {
      button.addEventListener("click", () => {
        trip.picked[leg] = trip.legs[leg]![index]!;
        column.querySelectorAll("[data-flight-id]").forEach((card, each) => card.classList.toggle("picked", each === index));
        if (trip.legs.every((_, each) => trip.picked[each] !== undefined)) renderTripForm(trip);
      });
    });
  });
  ui.trip.hidden = true;
}

function legFlightHtml(flight: Flight, cabin: CabinClass): string {
  const offer = cabinOf(flight, cabin);
  return `<article class="card flight" data-flight-id="${escape(flight.id)}" data-flight-number="${escape(flight.flightNumber)}">
      <div class="times">${timesHtml(flight)}</div>
      <div class="meta"><strong>${escape(flight.flightNumber)}</strong> · ${offer?.seatsAvailable ?? 0} seats left</div>
      <div class="offer"><span class="price">${money(offer?.price)}</span>
        <button type="button" class="primary" data-testid="pick">Select</button></div>
    </article>`;
}

/** The picked flights and the party's details; holding needs a signed-in customer, as a single flight does. */
function renderTripForm(trip: ReturnTrip): void {
  ui.trip.hidden = false;
  ui.trip.innerHTML = `<h2>Your return trip</h2>
    <ol class="segments" data-testid="picked">${trip.picked.map((flight) => `<li>${flightLine(flight!)}</li>`).join("")}</ol>
    <form class="passengers" id="trip-passengers">
      ${passengerFieldsHtml(trip.passengers)}
      <button type="submit" class="primary" data-testid="hold-trip">Hold both flights</button>
    </form>
    <div id="booking" class="booking" hidden></div>`;
  const form = ui.trip.querySelector<HTMLFormElement>("#trip-passengers")!;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const hold = () => void attempt(() => holdTrip(trip, form), form.querySelector("button")!);
    void client.tokens().then((tokens) => (tokens === undefined ? openSignIn(hold) : hold()));
  });
  ui.trip.scrollIntoView({ behavior: "smooth" });
}

async function holdTrip(trip: ReturnTrip, form: HTMLFormElement): Promise<void> {
  trip.booking = await client.booking.createBooking({
    ...partyFrom(form, trip.passengers),
    segments: trip.picked.map((flight) => ({ flightId: flight!.id, cabin: trip.cabin, seatNumbers: [] })),
  });
  form.hidden = true;
  renderTripBooking(trip);
}
