// Online check-in of a confirmed booking and its boarding passes: travel documents asked for when the
// server says the flight needs them, and each pass shown with its PDF417 barcode, drawn by bwip-js from the
// pass's IATA string (`bcbp`), the string a gate scanner reads.
import { ApiError, ErrorCode, localTime, TravelDocumentType, type Booking, type BoardingPass } from "@aerobook/sdk";
import { pdf417 } from "bwip-js/browser";

import { cabinName, escape } from "./format.js";
import { attempt, client } from "./page.js";
import { currentTrip } from "./trip.js";

/** Puts the check-in of `booking`'s first flight under `panel`: a button, then the passes. */
export function offerCheckIn(panel: HTMLElement, booking: Booking): void {
  const section = document.createElement("section");
  section.className = "check-in";
  section.innerHTML = `<h3>Check in</h3>
    <p class="hint">Online check-in opens a day before departure and closes an hour before.</p>
    <div data-testid="documents" hidden></div>
    <button type="button" class="primary" data-testid="check-in">Check in</button>
    <div data-testid="boarding-passes" class="boarding-passes"></div>`;
  panel.append(section);
  const button = section.querySelector<HTMLButtonElement>("[data-testid=check-in]")!;
  button.addEventListener("click", () => attempt(() => checkIn(section, booking), button));
}

async function checkIn(section: HTMLElement, booking: Booking): Promise<void> {
  const documentsForm = section.querySelector<HTMLElement>("[data-testid=documents]")!;
  const documents = documentsForm.hidden ? [] : documentsFrom(documentsForm, booking);
  try {
    const { boardingPasses } = await client.checkIn.checkIn({ bookingId: booking.id, flightId: booking.flightId, documents });
    documentsForm.hidden = true;
    section.querySelector("[data-testid=check-in]")!.remove();
    showPasses(section.querySelector("[data-testid=boarding-passes]")!, boardingPasses);
  } catch (error) {
    if (ApiError.from(error).code === ErrorCode.DOCUMENTS_REQUIRED && documentsForm.hidden) {
      // The flight crosses a border: ask for a document per passenger, then check in again with them.
      askForDocuments(documentsForm, booking);
      return;
    }
    throw error;
  }
}

function askForDocuments(form: HTMLElement, booking: Booking): void {
  form.innerHTML = `<p>This flight is international: give each traveller's passport or identity card.</p>${booking.passengers
    .map(
      (passenger, i) => `<fieldset class="document"><legend>${escape(`${passenger.givenName} ${passenger.familyName}`)}</legend>
        <label>Document <select name="doc-type-${i}"><option value="PASSPORT">Passport</option><option value="NATIONAL_ID">National ID</option></select></label>
        <label>Number <input name="doc-number-${i}" maxlength="20" autocomplete="off" required /></label>
        <label>Issued by <input name="doc-issuer-${i}" maxlength="2" placeholder="SA" required /></label>
        <label>Nationality <input name="doc-nationality-${i}" maxlength="2" placeholder="SA" required /></label>
        <label>Expires <input name="doc-expires-${i}" type="date" required /></label></fieldset>`,
    )
    .join("")}`;
  form.hidden = false;
}

function documentsFrom(form: HTMLElement, booking: Booking) {
  const value = (name: string) => form.querySelector<HTMLInputElement | HTMLSelectElement>(`[name=${name}]`)?.value.trim() ?? "";
  return booking.passengers.map((_, i) => ({
    type: value(`doc-type-${i}`) === "NATIONAL_ID" ? TravelDocumentType.NATIONAL_ID : TravelDocumentType.PASSPORT,
    number: value(`doc-number-${i}`).toUpperCase(),
    issuingCountry: value(`doc-issuer-${i}`).toUpperCase(),
    nationality: value(`doc-nationality-${i}`).toUpperCase(),
    expiresOn: value(`doc-expires-${i}`),
  }));
}

function showPasses(list: HTMLElement, passes: BoardingPass[]): void {
  const zone = currentTrip()?.flight.originTimeZone || "UTC";
  const at = (timestamp: BoardingPass["departsAt"]) => (timestamp ? localTime(timestamp, zone).time : "");
  list.innerHTML = passes
    .map(
      (pass) => `<article class="boarding-pass" data-testid="boarding-pass" data-ticket="${escape(pass.ticketNumber)}">
        <header><strong>${escape(pass.passengerName)}</strong> <span>${escape(pass.flightNumber)} · ${escape(pass.origin)} → ${escape(pass.destination)}</span></header>
        <dl class="summary">
          <dt>Seat</dt><dd data-testid="pass-seat">${escape(pass.seatNumber)}</dd>
          <dt>Cabin</dt><dd>${escape(cabinName(pass.cabin))}</dd>
          <dt>Boarding</dt><dd data-testid="pass-boarding">${escape(at(pass.boardingTime))}</dd>
          <dt>Departs</dt><dd>${escape(at(pass.departsAt))}</dd>
          <dt>Sequence</dt><dd data-testid="pass-sequence">${pass.sequenceNumber}</dd>
          <dt>E-ticket</dt><dd data-testid="pass-ticket">${escape(pass.ticketNumber)}</dd>
        </dl>
        <canvas data-testid="barcode" aria-label="Boarding pass barcode"></canvas>
      </article>`,
    )
    .join("");
  list.querySelectorAll<HTMLCanvasElement>("canvas[data-testid=barcode]").forEach((canvas, i) => {
    // A white quiet zone around the symbol: scanners look for it.
    pdf417(canvas, { bcid: "pdf417", text: passes[i]!.bcbp, scale: 2, paddingwidth: 8, paddingheight: 8, backgroundcolor: "FFFFFF" });
  });
}
