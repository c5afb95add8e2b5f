// The chosen flight: live availability, the seat map of the chosen cabin, and the passengers' form.
import type { CabinClass, Flight, Seat } from "@aerobook/sdk";

import { openSignIn } from "./account.js";
import { placeHold } from "./booking.js";
import { cabinOf, timesHtml } from "./flights.js";
import { escape, flightTimes } from "./format.js";
import { attempt, client, showError, ui } from "./page.js";
import { passengerFieldsHtml } from "./passengers.js";
import { currentTrip, setTrip, type Trip } from "./trip.js";

export async function openTrip(flight: Flight, cabin: CabinClass, passengers: number): Promise<void> {
  currentTrip()?.watching.abort();
  const { seats } = await client.flight.getSeatMap({ flightId: flight.id, cabin });
  const trip: Trip = { flight, cabin, passengers, seats, selected: [], watching: new AbortController() };
  setTrip(trip);
  renderTrip(trip);
  ui.trip.scrollIntoView({ behavior: "smooth", block: "start" });
  void watchAvailability(trip);
}

/** Follows the flight's availability until another flight is chosen; each change refreshes the seat map. */
async function watchAvailability(current: Trip): Promise<void> {
  try {
    for await (const update of client.flight.watchAvailability({ flightId: current.flight.id }, { signal: current.watching.signal })) {
      const cabin = cabinOf(update, current.cabin);
      const live = ui.trip.querySelector("[data-testid=live-availability]");
      if (live && cabin) {
        live.textContent = `${cabin.seatsAvailable} of ${cabin.seatsTotal} seats free`;
        live.classList.add("on");
      }
      if (current.booking === undefined) {
        current.seats = (await client.flight.getSeatMap({ flightId: current.flight.id, cabin: current.cabin })).seats;
        current.selected = current.selected.filter((number) => current.seats.some((s) => s.seatNumber === number && s.available));
        renderSeatMap(current);
      }
    }
  } catch (error) {
    if (!current.watching.signal.aborted) {
      const live = ui.trip.querySelector("[data-testid=live-availability]");
      if (live) {
        live.textContent = "Live updates paused";
        live.classList.remove("on");
      }
      showError(error);
    }
  }
}

function renderTrip(trip: Trip): void {
  const { flight, passengers } = trip;
  ui.trip.hidden = false;
  ui.trip.innerHTML = `
    <div class="trip-head">
      <h2>${escape(flight.flightNumber)} · ${escape(flight.origin)} → ${escape(flight.destination)}</h2>
      <span class="live" data-testid="live-availability">Connecting…</span>
    </div>
    <div class="times trip-times" data-testid="trip-times">${timesHtml(flight)}</div>
    <p class="meta">${escape(flightTimes(flight).departureDay)} · times are local at each airport</p>
    <div class="trip-body">
      <div>
        <h3>Choose ${passengers} seat${passengers > 1 ? "s" : ""}</h3>
        <div class="legend"><span class="seat"></span> free <span class="seat taken"></span> taken <span class="seat selected"></span> yours</div>
        <div class="seatmap" data-testid="seat-map"></div>
      </div>
      <form class="passengers" id="passengers">
        <h3>Passengers</h3>
        ${passengerFieldsHtml(passengers)}
        <button type="submit" class="primary" data-testid="hold">Hold seats</button>
        <div class="queue" data-testid="queue" role="status" hidden></div>
      </form>
    </div>
    <div id="booking" class="booking" hidden></div>`;
  renderSeatMap(trip);
  const form = ui.trip.querySelector<HTMLFormElement>("#passengers")!;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const hold = () => void attempt(() => placeHold(form), form.querySelector("button")!);
    void client.tokens().then((tokens) => (tokens === undefined ? openSignIn(hold) : hold()));
  });
}

function renderSeatMap(current: Trip): void {
  const map = ui.trip.querySelector<HTMLElement>("[data-testid=seat-map]");
  if (map === null) return;
  const rows = new Map<number, Seat[]>();
  for (const seat of current.seats) {
    const row = Number.parseInt(seat.seatNumber, 10);
    rows.set(row, [...(rows.get(row) ?? []), seat]);
  }
  map.innerHTML = [...rows.entries()]
    .sort(([a], [b]) => a - b)
    .map(([row, seats]) => {
      const ordered = seats.sort((a, b) => a.seatNumber.localeCompare(b.seatNumber));
      const aisle = Math.ceil(ordered.length / 2);
      return `<div class="seat-row"><span class="row-number">${row}</span>${ordered
        .map((seat, index) => {
          const mine = current.selected.includes(seat.seatNumber);
          const state = mine ? "selected" : seat.available ? "" : "taken";
          return `${index === aisle ? '<span class="aisle"></span>' : ""}<button type="button" class="seat ${state}"
            data-seat="${escape(seat.seatNumber)}" ${seat.available || mine ? "" : "disabled"}
            aria-pressed="${mine}" title="${escape(seat.seatNumber)}">${escape(seat.seatNumber.replace(/^\d+/, ""))}</button>`;
        })
        .join("")}</div>`;
    })
    .join("");
  for (const button of map.querySelectorAll<HTMLButtonElement>("[data-seat]")) {
    button.addEventListener("click", () => {
      const number = button.dataset["seat"]!;
      if (current.selected.includes(number)) {
        current.selected = current.selected.filter((each) => each !== number);
      } else if (current.selected.length < current.passengers) {
        current.selected = [...current.selected, number];
      } else {
        current.selected = [...current.selected.slice(1), number];
      }
      renderSeatMap(current);
    });
  }
}
