// What the browser tests share: the built page served as a static site, Debian's Chromium launched headless,
// a page whose clock reads UTC, and screenshots of each step in screenshots/.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, resolve } from "node:path";

import { chromium, type Browser, type Page } from "playwright-core";
import { expect } from "vitest";

import { startServer, type TestServer } from "../../../test/support/server.js";

const here = import.meta.dirname;
const dist = resolve(here, "..", "dist");
const screenshots = resolve(here, "..", "screenshots");
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

/** Serves the built page, as any static web server would in production. */
async function serveStatic(): Promise<{ url: string; server: Server }> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const file = join(dist, path === "/" ? "index.html" : path);
    if (!file.startsWith(dist) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`, server };
}

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    // This machine's network is closed: without these, Chromium keeps calling Google's services.
    args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A page in a browser whose clock reads UTC, unlike every demo airport: times shown in the browser's zone
 * instead of the airport's would be off by hours.
 */
export async function utcPage(browser: Browser, viewport?: { width: number; height: number }): Promise<Page> {
  const context = await browser.newContext({ timezoneId: "UTC", ...(viewport ? { viewport } : {}) });
  return context.newPage();
}


/** What a browser test drives: the API server (embedded), the built page's site, and Chromium. */
export interface Stage {
  api: TestServer;
  site: { url: string; server: Server };
  browser: Browser;
}

/**
 * Starts the stage (the server with `settings`), once the page is known to be built; screenshots go to
 * screenshots/.
 */
export async function setStage(settings: Record<string, string> = {}): Promise<Stage> {
  expect(existsSync(join(dist, "index.html")), "build the page first: npm run build").toBe(true);
  mkdirSync(screenshots, { recursive: true });
  const [api, site, browser] = await Promise.all([startServer("embedded", settings), serveStatic(), launch()]);
  return { api, site, browser };
}

export async function clearStage(stage: Partial<Stage>): Promise<void> {
  await stage.browser?.close();
  stage.site?.server.close();
  await stage.api?.stop();
}

export async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}
