// A return trip's booking: held (pay once for both flights), confirmed (change one of its flights to
// another of the same day: the server's quote shows the fare difference, the change fee and the amount
// due), and a change waiting for its payment (pay the amount due; the flight changes once it is paid).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { BookingStatus, type Booking, type CabinClass, type ChangeQuote, type Flight } from "@aerobook/sdk";

import { flightLine } from "./flights.js";
import { countdown, escape, money } from "./format.js";
import { attempt, client, readUntil, ui } from "./page.js";

/** The trip searched, the flights picked for each leg, and its booking once held. */
export interface ReturnTrip {
  legs: Flight[][];
  cabin: CabinClass;
  passengers: number;
  picked: (Flight | undefined)[];
  booking?: Booking;
}

export function renderTripBooking(trip: ReturnTrip): void {
  const booking = trip.booking!;
  const panel = ui.trip.querySelector<HTMLElement>("#booking")!;
  panel.hidden = false;
  const flights = booking.segments.map((segment) => trip.legs.flat().find((flight) => flight.id === segment.flightId));
  const segments = booking.segments
    .map((segment, index) => `<li data-testid="segment">${flights[index] ? flightLine(flights[index]) : escape(segment.flightId)}
        · seats <span data-testid="segment-seats">${escape(segment.seatNumbers.join(", "))}</span></li>`)
    .join("");
  const summary = `<dl class="summary"><dt>Reference</dt><dd data-testid="reference">${escape(booking.reference)}</dd>
      <dt>Total</dt><dd data-testid="trip-total">${money(booking.totalPrice)}</dd></dl>
    <ol class="segments" data-testid="segments">${segments}</ol>`;
  const change = booking.pendingChange;
  if (booking.status === BookingStatus.HELD) {
    const expires = booking.holdExpiresAt ? timestampDate(booking.holdExpiresAt) : new Date();
    panel.innerHTML = `<h3>Both flights are held</h3>${summary}
      <p class="countdown">Complete payment within <strong data-testid="countdown">${countdown(expires)}</strong></p>
      <button type="button" class="primary" data-testid="pay-trip">Pay ${money(booking.totalPrice)}</button>`;
    onClick(panel, "pay-trip", () => pay(trip, (paid) => paid.status !== BookingStatus.HELD));
  } else if (booking.status === BookingStatus.CONFIRMED && change !== undefined) {
    panel.innerHTML = `<h3 data-testid="change-waiting">Your change waits for its payment</h3>${summary}
      <p>The new flight's seats (${escape(change.seatNumbers.join(", "))}) are held for you until you pay.</p>
      <button type="button" class="primary" data-testid="pay-change">Pay ${money(change.amountDue)}</button>`;
    onClick(panel, "pay-change", () => pay(trip, (paid) => paid.pendingChange === undefined));
  } else if (booking.status === BookingStatus.CONFIRMED) {
    panel.innerHTML = `<h3 class="ok" data-testid="trip-confirmed">Return trip confirmed</h3>${summary}
      <div class="change" data-testid="change">${changeFormHtml(trip)}</div>`;
    wireChangeForm(trip, panel);
  } else {
    panel.innerHTML = `<h3 data-testid="trip-ended">${escape(BookingStatus[booking.status] ?? "Booking")}</h3>${summary}`;
  }
}

/** Pays what the booking waits for (the trip, or a change), then shows it once `paid` holds. */
async function pay(trip: ReturnTrip, paid: (booking: Booking) => boolean): Promise<void> {
  const bookingId = trip.booking!.id;
  await client.payment.createPaymentIntent({ bookingId });
  // The payment provider confirms through its webhook, a moment after the intent is created.
  trip.booking = await readUntil(bookingId, paid);
  renderTripBooking(trip);
}

/** Each booked flight, with the other flights of its day to change to. */
function changeFormHtml(trip: ReturnTrip): string {
  const booked = trip.booking!.segments.map((segment) => segment.flightId);
  const options = trip.legs
    .map((flights, leg) =>
      flights
        .filter((flight) => flight.id !== booked[leg])
        .map((flight) => `<option value="${leg}:${escape(flight.id)}">${flightLine(flight)}</option>`)
        .join(""),
    )
    .join("");
  return `<label>Change a flight to <select name="change-to" data-testid="change-to">${options}</select></label>
    <button type="button" class="ghost" data-testid="quote">See the price</button>
    <div class="quote" data-testid="quote-panel" hidden></div>`;
}

function wireChangeForm(trip: ReturnTrip, panel: HTMLElement): void {
  onClick(panel, "quote", async () => {
    const [leg, newFlightId] = panel.querySelector<HTMLSelectElement>("[data-testid=change-to]")!.value.split(":");
    const booking = trip.booking!;
    const quote = await client.booking.quoteChange({
      bookingId: booking.id,
      flightId: booking.segments[Number(leg)]!.flightId,
      newFlightId: newFlightId!,
      newCabin: trip.cabin,
    });
    showQuote(trip, panel, quote);
  });
}

/** The server's price of the change, and the button that makes it. */
function showQuote(trip: ReturnTrip, panel: HTMLElement, quote: ChangeQuote): void {
  const shown = panel.querySelector<HTMLElement>("[data-testid=quote-panel]")!;
  const due = quote.amountDue?.amountMinor ?? 0n;
  const verdict = due > 0n ? "to pay" : due < 0n ? "back to your card" : "nothing to pay";
  shown.hidden = false;
  shown.innerHTML = `<dl class="summary"><dt>Fare difference</dt><dd>${money(quote.fareDifference)}</dd>
      <dt>Change fee</dt><dd>${money(quote.changeFee)}</dd>
      <dt>Amount due</dt><dd><strong data-testid="amount-due">${money(quote.amountDue)}</strong> ${verdict}</dd></dl>
    <button type="button" class="primary" data-testid="make-change">Change the flight</button>`;
  onClick(shown, "make-change", async () => {
    trip.booking = await client.booking.changeFlight({ bookingId: trip.booking!.id, quoteId: quote.quoteId });
    renderTripBooking(trip);
  });
}

function onClick(panel: HTMLElement, testId: string, action: () => Promise<void>): void {
  const button = panel.querySelector<HTMLButtonElement>(`[data-testid=${testId}]`)!;
  button.addEventListener("click", () => void attempt(action, button));
}
