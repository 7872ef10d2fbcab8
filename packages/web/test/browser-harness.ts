/**
 * Shared by the browser tests: a real server on a fresh PostgreSQL database, Debian's Chromium
 * driven by playwright-core (never a downloaded browser), and logging in by pasting a token.
 * Without /usr/bin/chromium the tests are skipped, except under CI=true, where .ci/run installs
 * it and its absence is a failure.
 */
import { existsSync } from "node:fs";
import { type TestContext, type TestOptions, test } from "node:test";
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
  /**
   * What the browser showed: each page open now or closed since the last call, with its address,
   * visible text and its recent console errors, failed requests and error responses.
   */
  report(): Promise<string>;
  /** Forgets the pages closed so far (a new test starts). */
  clearReport(): void;
}

/** Lines kept per page of its console errors, failed requests and error responses. */
const JOURNAL_LINES = 40;

/** A page's address, visible text (cut short) and journal, for a failure message. */
async function describePage(page: Page, journal: readonly string[]): Promise<string> {
  let text: string;
  try {
    text = (await page.locator("body").innerText({ timeout: 2000 })).slice(0, 2000);
  } catch (err) {
    text = `(text unreadable: ${String(err).split("\n")[0]})`;
  }
  return [`page ${page.url()}`, `visible text:\n${text}`, ...journal.map((l) => `  ${l}`)].join("\n");
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
  const journals = new Map<Page, string[]>();
  let closedPages: string[] = [];
  const watch = (page: Page) => {
    const journal: string[] = [];
    journals.set(page, journal);
    const note = (line: string) => {
      journal.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
      if (journal.length > JOURNAL_LINES) journal.shift();
    };
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") note(`console ${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => note(`page error: ${e.message}`));
    page.on("requestfailed", (r) =>
      note(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`),
    );
    page.on("response", (r) => {
      if (r.status() >= 400) note(`response ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
  };
  return {
    server,
    browser,
    async context(width = 1280, height = 800) {
      const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width, height } });
      ctx.on("page", watch);
      // A test closes its context in `finally`, before its failure is reported: keep what it showed.
      const close = ctx.close.bind(ctx);
      ctx.close = async (options) => {
        for (const page of ctx.pages()) {
          closedPages.push(await describePage(page, journals.get(page) ?? []));
          journals.delete(page);
        }
        return close(options);
      };
      await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
      // CI shares two cores with the rest of the suite: be patient before calling a step failed.
      ctx.setDefaultTimeout(90_000);
      return ctx;
    },
    async close() {
      await browser.close();
      await server.close();
    },
    async report() {
      const open = [];
      for (const [page, journal] of journals)
        if (!page.isClosed()) open.push(await describePage(page, journal));
      const all = [...closedPages, ...open];
      closedPages = [];
      return all.join("\n---\n");
    },
    clearReport() {
      closedPages = [];
    },
  };
}

/**
 * `node:test`'s `test` for the harness `harness()` returns, with what the browser showed added to a
 * failure's message (a locator's timeout alone does not say whether the page showed an error,
 * another folder or nothing).
 */
export function browserTests(
  harness: () => Harness | undefined,
): (name: string, options: TestOptions, fn: (t: TestContext) => Promise<void>) => void {
  return (name, options, fn) =>
    test(name, options, async (t) => {
      harness()?.clearReport();
      try {
        await fn(t);
      } catch (err) {
        const h = harness();
        if (h && err instanceof Error)
          err.message += `\n--- what the browser showed ---\n${await h.report()}`;
        throw err;
      }
    });
}

/** Opens the UI in `page` and logs in by pasting `token`; resolves once the file browser shows. */
export async function logIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/_/ui/`);
  await page.getByRole("textbox", { name: "Token" }).fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor();
}
