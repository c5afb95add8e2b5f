// The booking of the trip on screen: the hold (queueing first for a flight in a flash sale), its countdown,
// the simulated payment, the confirmation, and the release, expiry or cancellation with refund.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  ApiError,
  BookingStatus,
  ErrorCode,
  waitForPass,
  WaitingRoomError,
  type Booking,
  type WaitingRoomPass,
} from "@aerobook/sdk";

import { offerCheckIn } from "./check-in.js";
import { flightLine } from "./flights.js";
import { countdown, escape, money, roughly } from "./format.js";
import { attempt, client, readUntil, ui } from "./page.js";
import { partyFrom } from "./passengers.js";
import { currentTrip, setTrip, type Trip } from "./trip.js";

let ticking: number | undefined;

export async function placeHold(form: HTMLFormElement): Promise<void> {
  const current = currentTrip();
  if (current === undefined) return;
  const request = {
    flightId: current.flight.id,
    cabin: current.cabin,
    ...partyFrom(form, current.passengers),
    seatNumbers: current.selected,
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
  const trip = currentTrip();
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
      offerCheckIn(panel, booking);
      break;
    default:
      panel.innerHTML = `<h3 data-testid="ended">${escape(endedTitle(booking.status))}</h3>${summary}
        <button type="button" class="ghost" data-testid="start-over">Book another flight</button>`;
      panel.querySelector("[data-testid=start-over]")!.addEventListener("click", () => {
        currentTrip()?.watching.abort();
        setTrip(undefined);
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
  const booking = await readUntil(bookingId, (current) => settled(current.status));
  const trip = currentTrip();
  if (trip) trip.booking = booking;
  renderBooking(booking);
}

async function refreshBooking(bookingId: string): Promise<void> {
  await attempt(async () => renderBooking(await client.booking.getBooking({ bookingId })));
}

