// The search form and its results: one offer per flight in the cabin asked for or, for any cabin, every
// cabin of each flight with its price and free seats, the traveller choosing the cabin there.
import { CabinClass, type CabinAvailability, type Flight } from "@aerobook/sdk";

import { cabinOf, timesHtml } from "./flights.js";
import { cabinName, escape, flightTimes, money, tomorrowInRiyadh } from "./format.js";
import { attempt, client, ui } from "./page.js";
import { renderReturnResults } from "./return-trip.js";
import { openTrip } from "./seat-map.js";

/** Wires the search form, its date set to tomorrow. */
export function setUpSearch(): void {
  ui.searchForm.querySelector<HTMLInputElement>("[name=date]")!.value = tomorrowInRiyadh();
  ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(ui.searchForm);
    // "Any cabin" is UNSPECIFIED: flights with room in at least one cabin, each with all its cabins.
    const cabin = CabinClass[String(form.get("cabin")) as keyof typeof CabinClass];
    const passengers = Number(form.get("passengers"));
    const [origin, destination] = [String(form.get("origin")).toUpperCase(), String(form.get("destination")).toUpperCase()];
    const [departureDate, returnDate] = [String(form.get("date")), String(form.get("return") ?? "")];
    void attempt(async () => {
      if (returnDate !== "") {
        // A return trip is booked in one cabin: "any cabin" reads as economy.
        const tripCabin = cabin === CabinClass.UNSPECIFIED ? CabinClass.ECONOMY : cabin;
        const legs = [
          { origin, destination, departureDate },
          { origin: destination, destination: origin, departureDate: returnDate },
        ];
        const found = await client.flight.searchTrips({ legs, passengers, cabin: tripCabin });
        renderReturnResults(found.legs, tripCabin, passengers);
        return;
      }
      const { flights } = await client.flight.searchFlights({ origin, destination, departureDate, passengers, cabin });
      renderResults(flights, cabin, passengers);
    }, ui.searchForm.querySelector("button")!);
  });
}

function renderResults(flights: Flight[], cabin: CabinClass, passengers: number): void {
  if (flights.length === 0) {
    ui.results.innerHTML = `<p class="empty">No flights with ${passengers} free seat(s) on that day. Try another date.</p>`;
    return;
  }
  const anyCabin = cabin === CabinClass.UNSPECIFIED;
  ui.results.innerHTML = flights
    .map((flight) => {
      const offer = cabinOf(flight, cabin);
      const seatsLeft = anyCabin ? "" : `· <span class="seats-left">${offer?.seatsAvailable ?? 0} seats left</span>`;
      return `<article class="card flight" data-testid="flight" data-flight-id="${escape(flight.id)}"
          data-flight-number="${escape(flight.flightNumber)}">
        <div class="times" data-testid="flight-times">${timesHtml(flight)}</div>
        <div class="meta"><strong>${escape(flight.flightNumber)}</strong> · ${escape(flightTimes(flight).departureDay)}
          ${seatsLeft}</div>
        ${anyCabin ? cabinsHtml(flight, passengers) : offerHtml(offer)}
      </article>`;
    })
    .join("");
  for (const card of ui.results.querySelectorAll<HTMLElement>("[data-flight-id]")) {
    const flight = flights.find((each) => each.id === card.dataset["flightId"])!;
    if (!anyCabin) {
      card.querySelector("button")!.addEventListener("click", () => void attempt(() => openTrip(flight, cabin, passengers)));
      continue;
    }
    const cabins = inCabinOrder(flight);
    card.querySelectorAll<HTMLButtonElement>("[data-testid=cabin] button").forEach((button, index) => {
      button.addEventListener("click", () => void attempt(() => openTrip(flight, cabins[index]!.cabin, passengers)));
    });
  }
}

/** The offer of the cabin searched for. */
function offerHtml(offer: CabinAvailability | undefined): string {
  return `<div class="offer"><span class="price">${money(offer?.price)}</span><span class="per">per passenger</span>
          <button type="button" class="primary">Choose</button></div>`;
}

/** The flight's cabins from the back of the aircraft to the front. */
function inCabinOrder(flight: Flight): CabinAvailability[] {
  return [...flight.cabins].sort((a, b) => a.cabin - b.cabin);
}

/**
 * Every cabin of the flight (any cabin searched for), each with its price, its free seats and a button to
 * choose it; a cabin without room for the party cannot be chosen.
 */
function cabinsHtml(flight: Flight, passengers: number): string {
  const cabins = inCabinOrder(flight).map((each) => {
    const name = cabinName(each.cabin);
    const full = each.seatsAvailable < passengers;
    return `<li class="cabin-offer" data-testid="cabin" data-cabin="${escape(CabinClass[each.cabin] ?? String(each.cabin))}">
        <span class="cabin-name">${escape(name)} <span class="seats-left">${each.seatsAvailable} seats left</span></span>
        <span class="price">${money(each.price)}</span>
        <button type="button" class="primary" aria-label="Choose ${escape(name)}"
          ${full ? `disabled title="Not enough free seats for ${passengers}"` : ""}>Choose</button>
      </li>`;
  });
  return `<div class="offer"><ul class="cabins">${cabins.join("")}</ul><span class="per">per passenger</span></div>`;
}
