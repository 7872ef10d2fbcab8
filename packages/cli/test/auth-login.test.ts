/**
 * `cacheroach auth login` against a real OIDC provider (oidc-provider on loopback): the CLI runs
 * as a child process with --no-browser, the test follows the URL it prints with a
 * fetch-and-cookie-jar browser through the provider's login and consent, and posts the hand-off
 * form to the CLI as a browser would. (The same with Chromium: browser-login.test.ts.)
 */
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Tokens } from "@cacheroach/proto";
import { startTestServer, type TestServer } from "@cacheroach/server/testing";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  FetchBrowser,
  startTestProvider,
  type TestProvider,
} from "../../server/test/fixtures/oidc-provider.js";
import { jsonOut, runCli, startAuthLogin, tempDir } from "./helpers.js";

let provider: TestProvider;
let ts: TestServer;
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  provider = await startTestProvider();
  ts = await startTestServer({
    oidcIssuer: provider.issuer,
    oidcClientId: CLIENT_ID,
    oidcClientSecret: CLIENT_SECRET,
    oidcDomains: ["example.com"],
  });
  await provider.allowRedirect(ts.url);
  ({ dir, cleanup } = await tempDir());
});

after(async () => {
  await ts?.close();
  await provider?.close();
  await cleanup?.();
});

/** Submits the server's hand-off page (an auto-submitting form) as a browser would. */
async function submitHandoff(html: string): Promise<Response> {
  const action = /<form method="post" action="([^"]+)" id="handoff">/.exec(html)?.[1];
  assert.ok(action, "the hand-off form");
  const unHtml = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  const field = (name: string) => unHtml(new RegExp(`name="${name}" value="([^"]*)"`).exec(html)![1]!);
  return fetch(action, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ state: field("state"), config: field("config") }),
  });
}

describe("cacheroach auth login", () => {
  test("--no-browser prints the URL; after the provider login the config is written 0600 and whoami names the user", async () => {
    const config = join(dir, "alice.cfg");
    const login = await startAuthLogin(ts.url, ["-c", config]);
    assert.equal(login.url.origin, ts.url);
    assert.match(login.url.searchParams.get("state") ?? "", /^[A-Za-z0-9_-]{32}$/);
    const port = Number(login.url.searchParams.get("port"));

    // Someone else's post to the CLI's port, without its state, is refused and changes nothing.
    const forged = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ state: "x".repeat(32), config: JSON.stringify({ token: "forged" }) }),
    });
    assert.equal(forged.status, 400);

    const browser = new FetchBrowser();
    const r = await browser.login(login.url, "alice");
    assert.equal(r.response?.status, 200);
    const handed = await submitHandoff(await r.response!.text());
    assert.equal(handed.status, 200);
    assert.match(await handed.text(), /You can close this window now/);
    const end = await login.done;
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /Logged in to .* as principal /);
    assert.equal((await stat(config)).mode & 0o777, 0o600);

    const who = await runCli(["auth", "whoami", "--json", "-c", config]);
    assert.equal(who.code, 0, who.stderr);
    const w = jsonOut<{ principalLabel: string; principalId: string; server: string }>(who);
    assert.equal(w.principalLabel, "Alice Example");
    assert.equal(w.server, ts.url);

    // auth logout revokes the session server-side.
    const token = (
      JSON.parse(await (await import("node:fs/promises")).readFile(config, "utf8")) as { token: string }
    ).token;
    const out = await runCli(["auth", "logout", "-c", config]);
    assert.equal(out.code, 0, out.stderr);
    await assert.rejects(ts.client(Tokens, token).current({}));
  });

  test("no login within --timeout: a clear error, exit 3, no config", async () => {
    const config = join(dir, "late.cfg");
    const login = await startAuthLogin(ts.url, ["--timeout", "1s", "-c", config]);
    const end = await login.done;
    assert.equal(end.code, 3);
    assert.match(end.stderr, /no login arrived within 1s; nothing was changed/);
    await assert.rejects(stat(config));
  });

  test("a server without OIDC is refused at once", async () => {
    const plain = await startTestServer();
    try {
      const r = await runCli(["auth", "login", "--no-browser", plain.url, "-c", join(dir, "none.cfg")]);
      assert.equal(r.code, 3);
      assert.match(r.stderr + String(r.error?.message), /has no OIDC login/);
    } finally {
      await plain.close();
    }
  });
});
