/**
 * Shared by the browser tests: a real server on a fresh PostgreSQL database, Debian's Chromium
 * driven by playwright-core (never a downloaded browser), and logging in by pasting a token.
 * Without /usr/bin/chromium the tests are skipped, except under CI=true, where .ci/run installs
 * it and its absence is a failure.
 */
import { existsSync } from "node:fs";
import { startTestServer, type TestServer } from "@cacheroach/server/testing";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env["CI"] === "true")
    throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
  return `${CHROMIUM} is missing (apt-get install -y chromium)`;
}

/** A server and a browser for one test file. */
export interface Harness {
  readonly server: TestServer;
  readonly browser: Browser;
  /** A fresh browser profile (downloads allowed) at `width`×`height`. */
  context(width?: number, height?: number): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const server = await startTestServer();
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--no-first-run",
      ],
    });
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    browser,
    async context(width = 1280, height = 800) {
      const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width, height } });
      await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
      // CI shares two cores with the rest of the suite: be patient before calling a step failed.
      ctx.setDefaultTimeout(90_000);
      return ctx;
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** Opens the UI in `page` and logs in by pasting `token`; resolves once the file browser shows. */
export async function logIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/_/ui/`);
  await page.getByRole("textbox", { name: "Token" }).fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor();
}
