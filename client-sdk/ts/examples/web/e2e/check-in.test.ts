// Check-in on the booking page in Chromium: a booking paid on the page for an international flight leaving
// in a few hours is checked in with a passport, and its boarding pass's barcode, as rendered on screen, is
// read back from a screenshot by ZXing and checked field by field against the pass, the booking and the
// flight.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";

import { CabinClass, decodeBcbp, flightLocalTimes } from "@aerobook/sdk";
import { createNodeClient } from "@aerobook/sdk/node";

import type { TestServer } from "../../../test/support/server.js";
import { clearStage, setStage, shoot, utcPage, type Stage } from "./support.js";

// ZXing's reader from this package's own files: no network.
prepareZXingModule({
  overrides: { wasmBinary: readFileSync(createRequire(import.meta.url).resolve("zxing-wasm/reader/zxing_reader.wasm")) },
});

/** The day of the year of a `YYYY-MM-DD` date. */
function dayOfYear(date: string): number {
  const at = Date.parse(`${date}T00:00:00Z`);
  return Math.round((at - Date.parse(`${date.slice(0, 4)}-01-01T00:00:00Z`)) / 86_400_000) + 1;
}

describe("check-in on the booking page", () => {
  let api: TestServer;
  let site: Stage["site"];
  let browser: Browser;
  beforeAll(async () => void ({ api, site, browser } = await setStage()));
  afterAll(() => clearStage({ api, site, browser }));

  it("checks in with a passport and shows a boarding pass whose barcode reads back as the pass", async () => {
    const password = "correct horse battery staple";
    const operatorEmail = `operator-${crypto.randomUUID()}@example.com`;
    api.admin("create-operator", "--email", operatorEmail, "--password", password);
    const operator = createNodeClient(api.url);
    await operator.auth.login({ email: operatorEmail, password });
    const departs = new Date(Date.now() + 5 * 3_600_000);
    departs.setUTCSeconds(0, 0);
    const flight = await operator.flight.createFlight({
      flightNumber: "XT4242",
      origin: "RUH",
      destination: "DXB",
      departsAt: { seconds: BigInt(departs.getTime() / 1000), nanos: 0 },
      arrivesAt: { seconds: BigInt(departs.getTime() / 1000 + 2 * 3600), nanos: 0 },
      cabins: [{ cabin: CabinClass.ECONOMY, firstRow: 10, rows: 1, seatLetters: "ABC", price: { currencyCode: "SAR", amountMinor: 90_000n } }],
    });
    const departureDate = flightLocalTimes(flight).departure.date;

    const page = await utcPage(browser, { width: 1200, height: 1400 });
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    await page.getByTestId("open-sign-in").click();
    await page.getByRole("button", { name: "New here? Create an account" }).click();
    await page.locator("[name=fullName]").fill("Layla Ahmed");
    await page.locator("[name=email]").fill(`check-in-${crypto.randomUUID()}@example.com`);
    await page.locator("[name=password]").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByTestId("signed-in-as").waitFor();

    await page.locator("[name=destination]").fill("DXB");
    await page.locator("[name=date]").fill(departureDate);
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.locator(`[data-flight-id="${flight.id}"]`).getByRole("button", { name: "Choose" }).click();
    await page.locator("[name=given-0]").fill("Layla");
    await page.locator("[name=family-0]").fill("Ahmed");
    await page.locator("[name=born-0]").fill("1992-08-15");
    await page.locator("[name=contact]").fill("layla@example.com");
    await page.getByTestId("hold").click();
    await page.getByTestId("pay").click();
    await page.getByTestId("confirmed").waitFor();
    const reference = (await page.getByTestId("reference").textContent())!;

    // The flight crosses a border: the first try asks for the passport, the second checks in with it.
    await page.getByTestId("check-in").click();
    await page.locator("[name=doc-number-0]").waitFor();
    await page.locator("[name=doc-number-0]").fill("a1234567");
    await page.locator("[name=doc-issuer-0]").fill("SA");
    await page.locator("[name=doc-nationality-0]").fill("SA");
    await page.locator("[name=doc-expires-0]").fill("2031-01-31");
    await page.getByTestId("check-in").click();
    await page.getByTestId("boarding-pass").waitFor();
    await shoot(page, "12-boarding-pass");

    const shown = async (testId: string) => (await page.getByTestId(testId).textContent())!;
    const screenshot = await page.getByTestId("barcode").screenshot();
    const [read] = await readBarcodes(new Uint8Array(screenshot), { formats: ["PDF417"] });
    expect(read?.error ?? "no barcode found").toBe("");
    const pass = decodeBcbp(read!.text);
    expect(pass).toEqual({
      passengerName: "AHMED/LAYLA",
      electronicTicket: true,
      bookingReference: reference,
      from: "RUH",
      to: "DXB",
      carrier: "XT",
      flightNumber: 4242,
      dayOfYear: dayOfYear(departureDate),
      compartment: "Y",
      seat: await shown("pass-seat"),
      sequenceNumber: Number(await shown("pass-sequence")),
      passengerStatus: "1",
      ticketNumber: await shown("pass-ticket"),
    });
    expect(pass.sequenceNumber).toBe(1);
    const { passengers } = await operator.checkIn.listPassengers({ flightId: flight.id });
    expect(passengers.map((entry) => [entry.ticketNumber, entry.seatNumber, entry.checkedIn, entry.documentsPresent])).toEqual([
      [pass.ticketNumber, pass.seat, true, true],
    ]);
    expect(consoleErrors).toEqual([]);
  });
});
