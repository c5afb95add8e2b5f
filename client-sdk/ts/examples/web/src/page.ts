// What every part of the page shares: the API client, the page's elements, and how a failure is shown.
import { ApiError, type Booking } from "@aerobook/sdk";
import { createWebClient, webStorageTokenStore } from "@aerobook/sdk/web";

import { escape } from "./format.js";

const apiUrl =
  new URLSearchParams(location.search).get("api") ?? import.meta.env["VITE_AEROBOOK_URL"] ?? "http://127.0.0.1:50051";
export const client = createWebClient(apiUrl, { tokenStore: webStorageTokenStore(sessionStorage) });

export const $ = <T extends HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (element === null) {
    throw new Error(`missing ${selector}`);
  }
  return element;
};

export const ui = {
  account: $("#account"),
  searchForm: $<HTMLFormElement>("#search-form"),
  error: $("#error"),
  results: $("#results"),
  trip: $("#trip"),
  signIn: $<HTMLDialogElement>("#sign-in"),
  signInForm: $<HTMLFormElement>("#sign-in-form"),
};

// ---- errors ----

export function showError(error: unknown): void {
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
export async function attempt(action: () => Promise<void>, button?: HTMLButtonElement): Promise<void> {
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

/** Reads the booking until `settled` holds (at most a minute): outcomes such as a payment's arrive a moment later. */
export async function readUntil(bookingId: string, settled: (booking: Booking) => boolean): Promise<Booking> {
  const giveUpAt = Date.now() + 60_000;
  let booking = await client.booking.getBooking({ bookingId });
  while (!settled(booking) && Date.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    booking = await client.booking.getBooking({ bookingId });
  }
  return booking;
}
