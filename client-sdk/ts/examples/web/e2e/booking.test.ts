// The booking page in a real browser: Debian's Chromium, headless, driven by playwright-core, against the
// real server and the built page (dist/). Screenshots of each step go to screenshots/.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BookingStatus, CabinClass, formatFlightTimes, type Flight } from "@aerobook/sdk";
import { createNodeClient } from "@aerobook/sdk/node";

import type { TestServer } from "../../../test/support/server.js";
import { clearStage, setStage, shoot, utcPage, type Stage } from "./support.js";

/** The demo schedule's daily RUH → JED departures (server/src/store/seed.rs), in Riyadh and Jeddah time. */
const RUH_JED_LOCAL: Record<string, [departs: string, arrives: string]> = {
  AB101: ["06:00", "07:45"],
  AB103: ["09:30", "11:15"],
  AB105: ["14:00", "15:45"],
  AB107: ["19:45", "21:30"],
};

const seatsFree = async (page: Page) => Number((await page.getByTestId("live-availability").textContent())?.split(" ")[0]);

describe("the booking page", () => {
  let api: TestServer;
  let site: Stage["site"];
  let browser: Browser;
  beforeAll(async () => void ({ api, site, browser } = await setStage()));
  afterAll(() => clearStage({ api, site, browser }));

  it("searches, watches availability, picks seats, signs up, holds, pays, confirms and cancels", async () => {
    const page = await utcPage(browser, { width: 1200, height: 900 });
    expect(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone)).toBe("UTC");
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);

    await page.locator("select[name=passengers]").selectOption("2");
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.getByTestId("flight").first().waitFor();
    await shoot(page, "1-search-results");

    // Every RUH → JED flight reads in Riyadh and Jeddah time (UTC+3), not in the browser's UTC.
    const shown = await page.getByTestId("flight").evaluateAll((cards) =>
      cards.map((card) => [
        card.getAttribute("data-flight-number"),
        card.querySelector("[data-testid=departure-time]")?.textContent,
        card.querySelector("[data-testid=arrival-time]")?.textContent,
      ]),
    );
    expect(shown.length).toBeGreaterThan(0);
    for (const [number, departs, arrives] of shown) {
      expect([number, departs, arrives]).toEqual([number, ...(RUH_JED_LOCAL[number ?? ""] ?? ["(not a RUH → JED demo flight)"])]);
    }
    const first = page.getByTestId("flight").first();
    const [flightId, flightNumber] = [await first.getAttribute("data-flight-id"), await first.getAttribute("data-flight-number")];
    const [departs, arrives] = RUH_JED_LOCAL[flightNumber ?? ""]!;
    // The SDK's helper in Node agrees with the page, and both differ from the flight's UTC clock time.
    const flight = await createNodeClient(api.url).flight.getFlight({ flightId: flightId ?? "" });
    expect(formatFlightTimes(flight)).toBe(`${departs} → ${arrives}`);
    expect(timestampDate(flight.departsAt!).toISOString().slice(11, 16)).not.toBe(departs);
    expect([flight.originTimeZone, flight.destinationTimeZone]).toEqual(["Asia/Riyadh", "Asia/Riyadh"]);

    await first.getByRole("button", { name: "Choose" }).click();
    expect(await page.getByTestId("trip-times").getByTestId("departure-time").textContent()).toBe(departs);
    await page.locator("[data-testid=live-availability].on").waitFor();
    const before = await seatsFree(page);
    const free = page.locator("[data-testid=seat-map] .seat:not(.taken)");
    const chosen = [await free.nth(0).getAttribute("data-seat"), await free.nth(1).getAttribute("data-seat")];
    for (const seat of chosen) {
      await page.locator(`[data-seat="${seat}"]`).click();
    }
    expect(await page.locator("[data-testid=seat-map] .seat.selected").count()).toBe(2);
    for (const [index, name] of ["Sara", "Omar"].entries()) {
      await page.locator(`[name=given-${index}]`).fill(name);
      await page.locator(`[name=family-${index}]`).fill("Ahmed");
      await page.locator(`[name=born-${index}]`).fill("1990-04-01");
    }
    await page.locator("[name=contact]").fill("sara@example.com");
    await shoot(page, "2-seats-chosen");

    // Holding needs a signed-in customer: the page asks, and goes on once signed up.
    await page.getByTestId("hold").click();
    await page.getByRole("button", { name: "New here? Create an account" }).click();
    const email = `browser-${crypto.randomUUID()}@example.com`;
    await page.locator("[name=fullName]").fill("Sara Ahmed");
    await page.locator("[name=email]").fill(email);
    await page.locator("[name=password]").fill("correct horse battery staple");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByTestId("countdown").waitFor();
    expect(await page.getByTestId("signed-in-as").textContent()).toBe("Sara Ahmed");
    expect(await page.getByTestId("countdown").textContent()).toMatch(/^(10:00|09:[0-5]\d)$/);
    expect((await page.getByTestId("booked-seats").textContent())?.split(", ").sort()).toEqual(chosen.sort());
    // The hold reaches the page through the WatchAvailability stream.
    await page.waitForFunction(
      (expected) => document.querySelector("[data-testid=live-availability]")?.textContent?.startsWith(`${expected} `),
      before - 2,
    );
    await shoot(page, "3-hold-countdown");

    await page.getByTestId("pay").click();
    await page.getByTestId("confirmed").waitFor();
    const reference = await page.getByTestId("reference").textContent();
    expect(await page.getByTestId("booked-flight").textContent()).toMatch(
      new RegExp(`^${flightNumber} · .+ · RUH ${departs}\\s+→ JED ${arrives}$`),
    );
    await shoot(page, "4-confirmed");

    await page.getByTestId("cancel").click();
    await page.getByText("Booking cancelled and refunded").waitFor();
    await shoot(page, "5-cancelled");

    // The server agrees: one booking, refunded, under the reference the page showed.
    const customer = createNodeClient(api.url);
    await customer.auth.login({ email, password: "correct horse battery staple" });
    const { bookings } = await customer.booking.listBookings({});
    expect(bookings.map((booking) => [booking.reference, booking.status])).toEqual([[reference, BookingStatus.REFUNDED]]);
    expect(consoleErrors).toEqual([]);
  });

  it("shows a refusal with its message and correlation id", async () => {
    const page = await utcPage(browser);
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    await page.locator("[name=origin]").fill("R1");
    await page.getByRole("button", { name: "Search flights" }).click();
    const error = page.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toContain("VALIDATION_ERROR");
    expect(await error.locator("li code").textContent()).toBe("origin");
    expect(await page.getByTestId("correlation-id").textContent()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
    await shoot(page, "6-error");
  });

  it("queues for a flight whose waiting room is on, shows the place in the queue, then holds with the pass", async () => {
    const password = "correct horse battery staple";
    const operatorEmail = `operator-${crypto.randomUUID()}@example.com`;
    api.admin("create-operator", "--email", operatorEmail, "--password", password);
    const operator = createNodeClient(api.url);
    await operator.auth.login({ email: operatorEmail, password });
    // Two days ahead in Riyadh, away from the first test's flights.
    const departureDate = new Date(Date.now() + 3 * 3_600_000 + 2 * 86_400_000).toISOString().slice(0, 10);
    const [flight] = (await operator.flight.searchFlights({ origin: "RUH", destination: "JED", departureDate, passengers: 1 })).flights;

    const page = await utcPage(browser, { width: 1200, height: 900 });
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    // Signed up first, so the room can open only a few seconds after the hold is asked for.
    await page.getByTestId("open-sign-in").click();
    await page.getByRole("button", { name: "New here? Create an account" }).click();
    const email = `queued-${crypto.randomUUID()}@example.com`;
    await page.locator("[name=fullName]").fill("Layla Ahmed");
    await page.locator("[name=email]").fill(email);
    await page.locator("[name=password]").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByTestId("signed-in-as").waitFor();

    await page.locator("[name=date]").fill(departureDate);
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.locator(`[data-flight-id="${flight!.id}"]`).getByRole("button", { name: "Choose" }).click();
    await page.locator("[name=given-0]").fill("Layla");
    await page.locator("[name=family-0]").fill("Ahmed");
    await page.locator("[name=born-0]").fill("1992-08-15");
    await page.locator("[name=contact]").fill("layla@example.com");

    // A whole second, so no rounding of the server's lets it open early.
    const opensAt = new Date(Math.ceil((Date.now() + 6_000) / 1_000) * 1_000);
    await operator.waitingRoom.configureWaitingRoom({
      flightId: flight!.id,
      enabled: true,
      admitPerMinute: 6_000,
      passTtlSeconds: 300,
      opensAt: timestampFromDate(opensAt),
    });
    await page.getByTestId("hold").click();
    // The hold is refused without a pass: the page queues, then holds again with the pass once admitted.
    await page.waitForFunction(() =>
      /^You are number 1 in the queue, about [1-8] s$/.test(document.querySelector("[data-testid=queue-position]")?.textContent ?? ""),
    );
    await shoot(page, "8-waiting-room");
    await page.getByTestId("countdown").waitFor();
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt.getTime());
    const reference = await page.getByTestId("reference").textContent();
    await shoot(page, "9-held-with-pass");

    const customer = createNodeClient(api.url);
    await customer.auth.login({ email, password });
    const { bookings } = await customer.booking.listBookings({ flightId: flight!.id });
    expect(bookings.map((booking) => [booking.reference, booking.status])).toEqual([[reference, BookingStatus.HELD]]);
    expect(await operator.waitingRoom.getWaitingRoom({ flightId: flight!.id })).toMatchObject({ waiting: 0n, admitted: 1n });
    expect(consoleErrors).toEqual([]);
  });

  it("searches any cabin, lists every cabin of each flight with its price and seats, and opens the chosen cabin's seat map", async () => {
    // Three days ahead in Riyadh, away from the other tests' flights.
    const departureDate = new Date(Date.now() + 3 * 3_600_000 + 3 * 86_400_000).toISOString().slice(0, 10);
    const server = createNodeClient(api.url);
    const { flights } = await server.flight.searchFlights({
      origin: "RUH",
      destination: "JED",
      departureDate,
      passengers: 1,
      cabin: CabinClass.UNSPECIFIED,
    });
    // Every demo flight has more than one cabin, so "every cabin" is more than the one a search names.
    expect(flights.length).toBeGreaterThan(0);
    expect(flights.filter((flight) => flight.cabins.length < 2)).toEqual([]);
    // The server's cabins from the back of the aircraft to the front: name, free seats, price's digits.
    const cabinsOf = (flight: Flight) =>
      [...flight.cabins]
        .sort((a, b) => a.cabin - b.cabin)
        .map((cabin) => [CabinClass[cabin.cabin], `${cabin.seatsAvailable} seats left`, String(cabin.price?.amountMinor)]);

    const page = await utcPage(browser, { width: 1200, height: 900 });
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    expect(await page.locator("select[name=cabin] option").first().textContent()).toBe("Any cabin");
    await page.locator("[name=date]").fill(departureDate);
    await page.locator("select[name=cabin]").selectOption({ label: "Any cabin" });
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.getByTestId("flight").first().waitFor();
    await shoot(page, "10-any-cabin-results");

    const shown = await page.getByTestId("flight").evaluateAll((cards) =>
      cards.map((card) => [
        card.getAttribute("data-flight-id"),
        [...card.querySelectorAll("[data-testid=cabin]")].map((cabin) => [
          cabin.getAttribute("data-cabin"),
          cabin.querySelector(".seats-left")?.textContent,
          cabin.querySelector(".price")?.textContent?.replace(/\D/g, ""),
        ]),
      ]),
    );
    expect(shown).toEqual(flights.map((flight) => [flight.id, cabinsOf(flight)]));

    // Choosing a cabin on the result opens the seat map of that cabin, and the live counts are its own.
    const first = page.getByTestId("flight").first();
    const flightId = await first.getAttribute("data-flight-id");
    const flight = flights.find((each) => each.id === flightId)!;
    const business = flight.cabins.find((cabin) => cabin.cabin === CabinClass.BUSINESS)!;
    await first.getByRole("button", { name: "Choose Business", exact: true }).click();
    await page.locator("[data-testid=live-availability].on").waitFor();
    const seatsOf = async (cabin: CabinClass) =>
      (await server.flight.getSeatMap({ flightId: flight.id, cabin })).seats.map((seat) => seat.seatNumber).sort();
    const seatMap = (await page.locator("[data-testid=seat-map] [data-seat]").evaluateAll((seats) => seats.map((seat) => seat.getAttribute("data-seat")))).sort();
    expect(seatMap).toEqual(await seatsOf(CabinClass.BUSINESS));
    expect(seatMap).not.toEqual(await seatsOf(CabinClass.ECONOMY));
    expect(await page.getByTestId("live-availability").textContent()).toBe(`${business.seatsAvailable} of ${business.seatsTotal} seats free`);
    await shoot(page, "11-any-cabin-seat-map");
    expect(consoleErrors).toEqual([]);
  });
});

describe("a page on an origin the server does not allow", () => {
  let api: TestServer;
  let site: Stage["site"];
  let browser: Browser;
  beforeAll(async () => void ({ api, site, browser } = await setStage({ AEROBOOK_CORS_ORIGINS: "https://book.aerobook.example" })));
  afterAll(() => clearStage({ api, site, browser }));

  it("is refused by the browser, and the server's preflight names no origin", async () => {
    const preflight = await fetch(`${api.url}/aerobook.v1.FlightService/SearchFlights`, {
      method: "OPTIONS",
      headers: { origin: site.url, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();

    const page = await utcPage(browser);
    const refused: string[] = [];
    page.on("requestfailed", (request) => refused.push(request.url()));
    await page.goto(`${site.url}/?api=${encodeURIComponent(api.url)}`);
    await page.getByRole("button", { name: "Search flights" }).click();
    await page.getByRole("alert").waitFor();
    expect(await page.getByRole("alert").textContent()).toContain("SERVICE_UNAVAILABLE");
    expect(refused).toContain(`${api.url}/aerobook.v1.FlightService/SearchFlights`);
    await shoot(page, "7-cors-refused");
  });
});
