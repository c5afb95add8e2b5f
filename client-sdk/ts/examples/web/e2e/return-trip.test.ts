// A return trip on the booking page in a real browser (Debian's Chromium, headless): airports suggested as
// the traveller types, outbound and return flights picked side by side, both held and paid once, then the
// return changed to a dearer flight with the amount due shown, paid, and made.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BookingStatus } from "@aerobook/sdk";
import { createNodeClient } from "@aerobook/sdk/node";

import type { TestServer } from "../../../test/support/server.js";
import { clearStage, setStage, shoot, utcPage, type Stage } from "./support.js";

/** A date `days` ahead in Riyadh (UTC+3), as the date fields take it. */
const riyadhDate = (days: number) => new Date(Date.now() + 3 * 3_600_000 + days * 86_400_000).toISOString().slice(0, 10);

describe("a return trip on the booking page", () => {
  let api: TestServer;
  let site: Stage["site"];
  let browser: Browser;
  beforeAll(async () => void ({ api, site, browser } = await setStage()));
  afterAll(() => clearStage({ api, site, browser }));

  it("suggests airports, books out and back in one hold and one payment, and changes the return for its amount due", async () => {
    const page = await utcPage(browser, { width: 1200, height: 900 });
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    const password = "correct horse battery staple";
    const email = `return-${crypto.randomUUID()}@example.com`;
    await page.getByTestId("open-sign-in").click();
    await page.getByRole("button", { name: "New here? Create an account" }).click();
    await page.locator("[name=fullName]").fill("Sara Ahmed");
    await page.locator("[name=email]").fill(email);
    await page.locator("[name=password]").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByTestId("signed-in-as").waitFor();

    // Typing a city offers its airports by code (ListAirports).
    await page.locator("[name=destination]").fill("Jedd");
    await page.locator("#destination-airports option[value=JED]").waitFor({ state: "attached" });
    expect(await page.locator("#destination-airports option[value=JED]").textContent()).toContain("Jeddah");
    await page.locator("[name=destination]").fill("JED");
    await page.locator("[name=date]").fill(riyadhDate(5));
    await page.locator("[name=return]").fill(riyadhDate(7));
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.getByTestId("leg").nth(1).waitFor();
    expect(await page.getByTestId("leg").count()).toBe(2);
    const legFlight = (leg: number, number: string) => page.locator(`[data-leg="${leg}"] [data-flight-number="${number}"]`);
    await legFlight(0, "AB101").getByTestId("pick").click();
    await legFlight(1, "AB102").getByTestId("pick").click();
    await shoot(page, "10-return-trip-picked");

    await page.locator("[name=given-0]").fill("Sara");
    await page.locator("[name=family-0]").fill("Ahmed");
    await page.locator("[name=born-0]").fill("1990-04-01");
    await page.locator("[name=contact]").fill("sara@example.com");
    await page.getByTestId("hold-trip").click();
    await page.getByTestId("countdown").waitFor();
    expect(await page.getByTestId("segment").count()).toBe(2);
    await page.getByTestId("pay-trip").click();
    await page.getByTestId("trip-confirmed").waitFor();
    await shoot(page, "11-return-trip-confirmed");

    // The return moves to the afternoon flight: 25.00 SAR dearer, and the 39.50 SAR fee of the cabin booked.
    const later = await legFlight(1, "AB106").getAttribute("data-flight-id");
    await page.getByTestId("change-to").selectOption(`1:${later}`);
    await page.getByTestId("quote").click();
    expect(await page.getByTestId("amount-due").textContent()).toContain("64.50");
    await page.getByTestId("make-change").click();
    await page.getByTestId("change-waiting").waitFor();
    await shoot(page, "12-change-waiting-for-payment");
    await page.getByTestId("pay-change").click();
    await page.getByTestId("trip-confirmed").waitFor();
    expect(await page.getByTestId("segment").nth(1).textContent()).toContain("AB106");
    await shoot(page, "13-return-changed");

    // The server agrees: one booking, both flights, the return changed, the total grown by the amount due.
    const customer = createNodeClient(api.url);
    await customer.auth.login({ email, password });
    const { bookings } = await customer.booking.listBookings({});
    expect(bookings).toHaveLength(1);
    const [booking] = bookings;
    expect([booking!.status, booking!.pendingChange, booking!.segments[1]!.flightId]).toEqual([BookingStatus.CONFIRMED, undefined, later]);
    expect(booking!.totalPrice?.amountMinor).toBe(2n * 39_500n + 6_450n);
    expect(consoleErrors).toEqual([]);
  });
});
