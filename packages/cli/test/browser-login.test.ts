/**
 * OIDC logins in a real browser: Debian's Chromium (/usr/bin/chromium, never a downloaded one)
 * driven by playwright-core, against a real provider (oidc-provider on loopback).
 *
 * * `cacheroach auth login --no-browser`: Chromium opens the printed URL, signs in at the
 *   provider's login and consent pages, the server's page hands the login to the CLI, which
 *   writes its config; `auth whoami` names the user.
 * * A private vhost: a logged-out visit to one of its files is led through the provider and back,
 *   and the file is served with the session cookie; the landing page says who the user is.
 *
 * With CACHEROACH_SCREENSHOTS=1 the pages are saved under docs/img/ (shown in docs/oidc.md).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Principals, SessionSchema, Tenants, Tokens, VHosts } from "@cacheroach/proto";
import { startTestServer, type TestServer } from "@cacheroach/server/testing";
import { type Browser, chromium, type Page } from "playwright-core";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  startTestProvider,
  type TestProvider,
} from "../../server/test/fixtures/oidc-provider.js";
import { jsonOut, runCli, startAuthLogin, tempDir } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const VHOST = "files.test";
const SHOTS = process.env["CACHEROACH_SCREENSHOTS"] === "1";
const IMG = fileURLToPath(new URL("../../../docs/img/", import.meta.url));

let provider: TestProvider;
let ts: TestServer;
let browser: Browser;
let dir: string;
let cleanup: () => Promise<void>;

const missing = !existsSync(CHROMIUM);

describe("OIDC login in Chromium", {
  skip: missing && !process.env["CI"] ? `${CHROMIUM} is missing (apt-get install -y chromium)` : false,
}, () => {
  before(async () => {
    provider = await startTestProvider();
    ts = await startTestServer({
      oidcIssuer: provider.issuer,
      oidcClientId: CLIENT_ID,
      oidcClientSecret: CLIENT_SECRET,
      oidcDomains: ["example.com"],
    });
    await provider.allowRedirect(ts.url);
    await provider.allowRedirect(`http://${VHOST}:${ts.server.port}`);
    ({ dir, cleanup } = await tempDir());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--host-resolver-rules=MAP ${VHOST} 127.0.0.1`,
      ],
    });
  });

  after(async () => {
    await browser?.close();
    await ts?.close();
    await provider?.close();
    await cleanup?.();
  });

  async function shot(page: Page, name: string): Promise<void> {
    if (SHOTS) await page.screenshot({ path: join(IMG, name) });
  }

  /** Fills the provider's login and consent pages as `login`. */
  async function signIn(page: Page, login: string, shots = false): Promise<void> {
    await page.waitForSelector('input[name="login"]');
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', "any");
    if (shots) await shot(page, "oidc-provider-login.png");
    await page.click('button[type="submit"]');
    await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached" });
    if (shots) await shot(page, "oidc-provider-consent.png");
    await page.click('button[type="submit"]');
  }

  test("auth login --no-browser: Chromium signs in at the provider, the CLI writes its config, whoami names the user", async () => {
    const config = join(dir, "alice.cfg");
    const login = await startAuthLogin(ts.url, ["-c", config]);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(login.url.href);
    await signIn(page, "alice", true);
    // The server's hand-off page posts the login to the CLI, which answers it.
    await page.waitForSelector("#cli-result");
    assert.match((await page.textContent("#cli-result")) ?? "", /You can close this window now/);
    await shot(page, "oidc-cli-done.png");
    const end = await login.done;
    assert.equal(end.code, 0, end.stderr);
    const who = await runCli(["auth", "whoami", "--json", "-c", config]);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(jsonOut<{ principalLabel: string }>(who).principalLabel, "Alice Example");
    const saved = JSON.parse(await readFile(config, "utf8")) as { server: string };
    assert.equal(saved.server, ts.url);
    await context.close();
  });

  test("a logged-out visit to a private vhost goes through the provider and serves the file with the cookie", async () => {
    // A private tenant served on files.test, readable by every verified user of example.com.
    const tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "private" } })).tenant!
      .id;
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: VHOST, tenantId: tenant } });
    const domain = (
      await ts.client(Principals, ts.superToken).ensure({
        principal: { claimsJson: '{"name":"Example Inc"}', emailDomain: "example.com" },
      })
    ).principal!.id;
    const tokens = ts.client(Tokens, ts.superToken);
    const grant = (scope: string, principalId: string, caps: { read?: boolean; write?: boolean }) =>
      tokens.issue({
        template: create(SessionSchema, {
          principalId,
          capabilities: caps,
          scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: scope } } },
          expiresAt: timestampFromDate(new Date(Date.now() + 1800_000)),
        }),
      });
    await grant("/*", domain, { read: true });
    const writer = (await grant("/*", ts.rootPrincipalId, { read: true, write: true })).token!.jwt;
    const put = await fetch(`${ts.url}/private.txt`, {
      method: "PUT",
      headers: { authorization: `Bearer ${writer}`, "content-type": "text/plain" },
      body: "only for example.com\n",
    });
    assert.equal(put.status < 300, true, await put.text());
    const base = `http://${VHOST}:${ts.server.port}`;
    assert.equal(await anonymousStatus(ts.server.port, "/private.txt"), 401, "private to anonymous callers");

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/private.txt`);
    await signIn(page, "carol");
    await page.waitForURL(`${base}/private.txt`);
    assert.equal((await page.textContent("body"))?.trim(), "only for example.com");
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === "authorization");
    assert.ok(session, "the session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Lax");
    assert.equal(session.path, "/");

    await page.goto(`${base}/_/v0/provision`);
    assert.match((await page.textContent("#who")) ?? "", /Signed in as Carol Example \(carol@example\.com\)/);
    await shot(page, "oidc-landing.png");
    await page.click("#logout");
    await page.waitForSelector("#logged-out");
    assert.match((await page.textContent("#logged-out")) ?? "", /You are logged out/);
    await context.close();
  });
});

/** The status of an anonymous GET of `path` on the vhost (fetch cannot set Host). */
function anonymousStatus(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, headers: { host: `${VHOST}:${port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    })
      .on("error", reject)
      .end();
  });
}
