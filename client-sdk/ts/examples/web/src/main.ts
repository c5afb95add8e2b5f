// The Aerobook booking page: search, live availability, seat map, sign-in, the waiting room of a flight in
// a flash sale, hold with countdown, simulated payment, confirmation and cancellation, all through
// @aerobook/sdk over gRPC-web.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  ApiError,
  BookingStatus,
  CabinClass,
  ErrorCode,
  PassengerType,
  waitForPass,
  WaitingRoomError,
  type Booking,
  type CabinAvailability,
  type Flight,
  type Seat,
  type WaitingRoomPass,
} from "@aerobook/sdk";
import { createWebClient, webStorageTokenStore } from "@aerobook/sdk/web";

import { countdown, duration, escape, flightTimes, money, roughly, tomorrowInRiyadh } from "./format.js";

const apiUrl =
  new URLSearchParams(location.search).get("api") ?? import.meta.env["VITE_AEROBOOK_URL"] ?? "http://127.0.0.1:50051";
const client = createWebClient(apiUrl, { tokenStore: webStorageTokenStore(sessionStorage) });

const $ = <T extends HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (element === null) {
    throw new Error(`missing ${selector}`);
  }
  return element;
};

const ui = {
  account: $("#account"),
  searchForm: $<HTMLFormElement>("#search-form"),
  error: $("#error"),
  results: $("#results"),
  trip: $("#trip"),
  signIn: $<HTMLDialogElement>("#sign-in"),
  signInForm: $<HTMLFormElement>("#sign-in-form"),
};

interface Trip {
  flight: Flight;
  cabin: CabinClass;
  passengers: number;
  seats: Seat[];
  selected: string[];
  booking?: Booking;
  /** The flight's waiting-room pass once admitted: a later hold on the trip reuses it until it expires. */
  pass?: WaitingRoomPass;
  /** Ends the availability stream and the wait in the queue of the flight on screen. */
  watching: AbortController;
}

let trip: Trip | undefined;
let ticking: number | undefined;

// ---- errors ----

function showError(error: unknown): void {
  const failure = ApiError.from(error);
  const message =
    failure.origin === "transport"
      ? "We cannot reach Aerobook right now. Check your connection and try again."
      : failure.message || "Something went wrong";
  const violations = failure.fieldViolations.map((v) => `<li><code>${escape(v.field)}</code> ${escape(v.description)}</li>`).join("");
  ui.error.innerHTML = `
    <strong>${escape(message)}</strong>
    ${violations ? `<ul>${violations}</ul>` : ""}
    <span class="support">Support reference: <code data-testid="correlation-id">${escape(failure.correlationId || "none")}</code>
    · ${escape(failure.reason)}</span>
    <button type="button" class="close" aria-label="Dismiss">×</button>`;
  ui.error.hidden = false;
  ui.error.querySelector("button")?.addEventListener("click", clearError);
}

function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

/** Runs an action of the user's, showing its failure instead of letting it vanish. */
async function attempt(action: () => Promise<void>, button?: HTMLButtonElement): Promise<void> {
  clearError();
  if (button) button.disabled = true;
  try {
    await action();
  } catch (error) {
    showError(error);
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- account ----

async function renderAccount(): Promise<void> {
  const signedIn = (await client.tokens()) !== undefined;
  if (!signedIn) {
    ui.account.innerHTML = `<button type="button" class="ghost" data-testid="open-sign-in">Sign in</button>`;
    ui.account.querySelector("button")?.addEventListener("click", () => openSignIn());
    return;
  }
  try {
    const me = await client.auth.getMe({});
    ui.account.innerHTML = `<span class="who" data-testid="signed-in-as">${escape(me.fullName || me.email)}</span>
      <button type="button" class="ghost">Sign out</button>`;
    ui.account.querySelector("button")?.addEventListener("click", () =>
      attempt(async () => {
        await client.signOut();
        await renderAccount();
      }),
    );
  } catch (error) {
    // A session the server no longer accepts ends here; a passing failure keeps it for the next try.
    if (ApiError.from(error).code === ErrorCode.UNAUTHORIZED) {
      await client.setTokens(undefined);
      await renderAccount();
    }
    showError(error);
  }
}

let afterSignIn: (() => void) | undefined;
let registering = false;

function openSignIn(then?: () => void): void {
  afterSignIn = then;
  ui.signIn.showModal();
}

function setRegistering(on: boolean): void {
  registering = on;
  $("#sign-in-title").textContent = on ? "Create your account" : "Sign in";
  $("#sign-in-submit").textContent = on ? "Create account" : "Sign in";
  $("#sign-in-toggle").textContent = on ? "Have an account? Sign in" : "New here? Create an account";
  ui.signInForm.querySelector<HTMLElement>("[data-register-only]")!.hidden = !on;
}

$("#sign-in-toggle").addEventListener("click", () => setRegistering(!registering));
// Dismissing the dialog also drops the action that was waiting for the sign-in.
$("#sign-in-close").addEventListener("click", () => {
  afterSignIn = undefined;
  ui.signIn.close();
});
ui.signIn.addEventListener("cancel", () => (afterSignIn = undefined));
ui.signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(ui.signInForm);
  const email = String(form.get("email"));
  const password = String(form.get("password"));
  void attempt(async () => {
    if (registering) {
      await client.auth.register({ email, password, fullName: String(form.get("fullName") ?? "") });
    } else {
      await client.auth.login({ email, password });
    }
    ui.signIn.close();
    ui.signInForm.reset();
    await renderAccount();
    afterSignIn?.();
    afterSignIn = undefined;
  }, $<HTMLButtonElement>("#sign-in-submit"));
});

// ---- search ----

ui.searchForm.querySelector<HTMLInputElement>("[name=date]")!.value = tomorrowInRiyadh();
ui.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(ui.searchForm);
  const cabin = CabinClass[String(form.get("cabin")) as keyof typeof CabinClass];
  const passengers = Number(form.get("passengers"));
  void attempt(async () => {
    const { flights } = await client.flight.searchFlights({
      origin: String(form.get("origin")).toUpperCase(),
      destination: String(form.get("destination")).toUpperCase(),
      departureDate: String(form.get("date")),
      passengers,
      cabin,
    });
    renderResults(flights, cabin, passengers);
  }, ui.searchForm.querySelector("button")!);
});

function cabinOf(flight: Pick<Flight, "cabins">, cabin: CabinClass): CabinAvailability | undefined {
  return flight.cabins.find((each) => each.cabin === cabin);
}

/** The flight's departure and arrival, each in its airport's local time, with the arrival's day change. */
function timesHtml(flight: Flight): string {
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
function flightLine(flight: Flight): string {
  const shown = flightTimes(flight);
  const change = shown.dayChange ? ` <span class="day-change">${escape(shown.dayChange)}</span>` : "";
  return `${escape(flight.flightNumber)} · ${escape(shown.departureDay)} · ${escape(flight.origin)} ${escape(shown.departure)}
    → ${escape(flight.destination)} ${escape(shown.arrival)}${change}`;
}

function renderResults(flights: Flight[], cabin: CabinClass, passengers: number): void {
  if (flights.length === 0) {
    ui.results.innerHTML = `<p class="empty">No flights with ${passengers} free seat(s) on that day. Try another date.</p>`;
    return;
  }
  ui.results.innerHTML = flights
    .map((flight) => {
      const offer = cabinOf(flight, cabin);
      return `<article class="card flight" data-testid="flight" data-flight-id="${escape(flight.id)}"
          data-flight-number="${escape(flight.flightNumber)}">
        <div class="times" data-testid="flight-times">${timesHtml(flight)}</div>
        <div class="meta"><strong>${escape(flight.flightNumber)}</strong> · ${escape(flightTimes(flight).departureDay)}
          · <span class="seats-left">${offer?.seatsAvailable ?? 0} seats left</span></div>
        <div class="offer"><span class="price">${money(offer?.price)}</span><span class="per">per passenger</span>
          <button type="button" class="primary">Choose</button></div>
      </article>`;
    })
    .join("");
  for (const card of ui.results.querySelectorAll<HTMLElement>("[data-flight-id]")) {
    const flight = flights.find((each) => each.id === card.dataset["flightId"])!;
    card.querySelector("button")!.addEventListener("click", () => void attempt(() => openTrip(flight, cabin, passengers)));
  }
}

// ---- the chosen flight: live availability and seat map ----

async function openTrip(flight: Flight, cabin: CabinClass, passengers: number): Promise<void> {
  trip?.watching.abort();
  const { seats } = await client.flight.getSeatMap({ flightId: flight.id, cabin });
  trip = { flight, cabin, passengers, seats, selected: [], watching: new AbortController() };
  renderTrip();
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

function renderTrip(): void {
  if (trip === undefined) return;
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
        ${Array.from({ length: passengers }, (_, index) => `
          <fieldset><legend>Passenger ${index + 1}</legend>
            <label>Given name <input name="given-${index}" required maxlength="100" /></label>
            <label>Family name <input name="family-${index}" required maxlength="100" /></label>
            <label>Date of birth <input name="born-${index}" type="date" required /></label>
          </fieldset>`).join("")}
        <label>Contact email <input name="contact" type="email" required /></label>
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

// ---- hold, pay, confirm, cancel ----

async function placeHold(form: HTMLFormElement): Promise<void> {
  if (trip === undefined) return;
  const current = trip;
  const data = new FormData(form);
  const request = {
    flightId: current.flight.id,
    cabin: current.cabin,
    passengers: Array.from({ length: current.passengers }, (_, index) => ({
      givenName: String(data.get(`given-${index}`)),
      familyName: String(data.get(`family-${index}`)),
      dateOfBirth: String(data.get(`born-${index}`)),
      type: PassengerType.ADULT,
    })),
    seatNumbers: current.selected,
    contactEmail: String(data.get("contact")),
  };
  const pass = current.pass !== undefined && current.pass.expiresAt.getTime() > Date.now() ? current.pass.pass : "";
  let booking: Booking;
  try {
    booking = await client.booking.createBooking({ ...request, waitingRoomPass: pass });
  } catch (error) {
    if (ApiError.from(error).code !== ErrorCode.WAITING_ROOM_REQUIRED) throw error;
    // The flight is in a flash sale: queue for a pass, then hold with it. The refused hold executed
    // nothing, so this one gets its own idempotency key from the SDK, as every hold does.
    const admitted = await queueFor(current, form);
    if (admitted === undefined) return;
    booking = await client.booking.createBooking({ ...request, waitingRoomPass: admitted.pass });
  }
  current.booking = booking;
  form.hidden = true;
  renderBooking(booking);
}

/**
 * Waits in the flight's waiting room, showing the place in the queue. `undefined` when the wait ended
 * without a pass (sold out, shown in the queue's place) or another flight was chosen meanwhile.
 */
async function queueFor(current: Trip, form: HTMLFormElement): Promise<WaitingRoomPass | undefined> {
  const queue = form.querySelector<HTMLElement>("[data-testid=queue]")!;
  queue.classList.remove("sold-out");
  queue.innerHTML = `<strong>This flight is in high demand</strong>
    <span data-testid="queue-position">Joining the queue…</span>`;
  queue.hidden = false;
  try {
    current.pass = await waitForPass(client, current.flight.id, {
      signal: current.watching.signal,
      onStatus: ({ position, estimatedWaitMs }) => {
        queue.querySelector("[data-testid=queue-position]")!.textContent =
          `You are number ${position} in the queue, ${roughly(estimatedWaitMs)}`;
      },
    });
    queue.hidden = true;
    return current.pass;
  } catch (error) {
    if (current.watching.signal.aborted) return undefined;
    if (!(error instanceof WaitingRoomError)) {
      queue.hidden = true;
      throw error;
    }
    queue.classList.add("sold-out");
    queue.innerHTML = error.soldOut
      ? `<strong data-testid="sold-out">Sold out</strong> Every seat on this flight was taken while you waited.`
      : `<strong>The queue closed before your turn</strong> Please try again.`;
    return undefined;
  }
}

function renderBooking(booking: Booking): void {
  window.clearInterval(ticking);
  const panel = ui.trip.querySelector<HTMLElement>("#booking")!;
  panel.hidden = false;
  const seats = booking.seatNumbers.join(", ");
  const flight = trip?.flight.id === booking.flightId ? trip.flight : undefined;
  const summary = `<dl class="summary">
      <dt>Reference</dt><dd data-testid="reference">${escape(booking.reference)}</dd>
      ${flight ? `<dt>Flight</dt><dd data-testid="booked-flight">${flightLine(flight)}</dd>` : ""}
      <dt>Seats</dt><dd data-testid="booked-seats">${escape(seats)}</dd>
      <dt>Total</dt><dd>${money(booking.totalPrice)}</dd></dl>`;
  switch (booking.status) {
    case BookingStatus.HELD: {
      const expires = booking.holdExpiresAt ? timestampDate(booking.holdExpiresAt) : new Date();
      panel.innerHTML = `<h3>Your seats are held</h3>${summary}
        <p class="countdown">Complete payment within <strong data-testid="countdown">${countdown(expires)}</strong></p>
        <div class="row"><button type="button" class="primary" data-testid="pay">Pay ${money(booking.totalPrice)}</button>
        <button type="button" class="ghost" data-testid="release">Release seats</button></div>
        <p class="hint">Payments are simulated on this server: no card is charged.</p>`;
      ticking = window.setInterval(() => {
        const left = countdown(expires);
        const shown = panel.querySelector("[data-testid=countdown]");
        if (shown) shown.textContent = left;
        if (left === "00:00") {
          window.clearInterval(ticking);
          void refreshBooking(booking.id);
        }
      }, 1000);
      panel.querySelector<HTMLButtonElement>("[data-testid=pay]")!.addEventListener("click", (event) =>
        attempt(() => pay(booking), event.currentTarget as HTMLButtonElement),
      );
      panel.querySelector<HTMLButtonElement>("[data-testid=release]")!.addEventListener("click", (event) =>
        attempt(async () => renderBooking(await client.booking.cancelBooking({ bookingId: booking.id, reason: "released by the customer" })), event.currentTarget as HTMLButtonElement),
      );
      break;
    }
    case BookingStatus.CONFIRMED:
      panel.innerHTML = `<h3 class="ok" data-testid="confirmed">Booking confirmed</h3>${summary}
        <p>${booking.passengers.map((p) => escape(`${p.givenName} ${p.familyName}`)).join(" · ")}</p>
        <button type="button" class="danger" data-testid="cancel">Cancel booking and refund</button>`;
      panel.querySelector<HTMLButtonElement>("[data-testid=cancel]")!.addEventListener("click", (event) =>
        attempt(async () => {
          await client.payment.refundBooking({ bookingId: booking.id, reason: "cancelled by the customer" });
          await settle(booking.id, (status) => status !== BookingStatus.REFUND_PENDING);
        }, event.currentTarget as HTMLButtonElement),
      );
      break;
    default:
      panel.innerHTML = `<h3 data-testid="ended">${escape(endedTitle(booking.status))}</h3>${summary}
        <button type="button" class="ghost" data-testid="start-over">Book another flight</button>`;
      panel.querySelector("[data-testid=start-over]")!.addEventListener("click", () => {
        trip?.watching.abort();
        trip = undefined;
        ui.trip.hidden = true;
        window.scrollTo({ top: 0, behavior: "smooth" });
      });
  }
}

function endedTitle(status: BookingStatus): string {
  switch (status) {
    case BookingStatus.CANCELLED:
      return "Hold released";
    case BookingStatus.EXPIRED:
      return "This hold has expired";
    case BookingStatus.REFUNDED:
      return "Booking cancelled and refunded";
    case BookingStatus.REFUND_PENDING:
      return "Refund on its way";
    default:
      return BookingStatus[status] ?? "Booking";
  }
}

async function pay(booking: Booking): Promise<void> {
  await client.payment.createPaymentIntent({ bookingId: booking.id });
  const panel = ui.trip.querySelector<HTMLElement>("#booking")!;
  panel.querySelector("[data-testid=pay]")!.textContent = "Confirming payment…";
  // The payment provider confirms through its webhook, a moment after the intent is created.
  await settle(booking.id, (status) => status !== BookingStatus.HELD);
}

/** Reads the booking until `settled` holds for its status (at most a minute), then shows it. */
async function settle(bookingId: string, settled: (status: BookingStatus) => boolean): Promise<void> {
  const giveUpAt = Date.now() + 60_000;
  let booking = await client.booking.getBooking({ bookingId });
  while (!settled(booking.status) && Date.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    booking = await client.booking.getBooking({ bookingId });
  }
  if (trip) trip.booking = booking;
  renderBooking(booking);
}

async function refreshBooking(bookingId: string): Promise<void> {
  await attempt(async () => renderBooking(await client.booking.getBooking({ bookingId })));
}

void renderAccount();
