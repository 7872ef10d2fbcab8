/**
 * OIDC browser login against a real OpenID provider (oidc-provider on loopback), driven by a
 * fetch-and-cookie-jar browser: the happy path, every refusal rule of the callback (400 with a
 * short reason, nothing created), concurrent first logins, the CLI hand-off, log-out, and a
 * server without OIDC.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Tokens } from "@cacheroach/proto";
import { ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { OidcDiscoveryError } from "../src/auth/oidc-client.js";
import { ConfigError } from "../src/config.js";
import { ERROR_CODE_HEADER } from "../src/errors.js";
import { Site } from "../src/http/site.js";
import type { HttpRequest } from "../src/net/node-http.js";
import { startServer } from "../src/server.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  FetchBrowser,
  startTestProvider,
  type TestProvider,
} from "./fixtures/oidc-provider.js";

let provider: TestProvider;
let ts: TestServer;
let db: pg.Client;

const isReceive = (u: URL) => u.pathname === "/_/oidc/receive";

before(async () => {
  provider = await startTestProvider();
  ts = await startTestServer({
    oidcIssuer: provider.issuer,
    oidcClientId: CLIENT_ID,
    oidcClientSecret: CLIENT_SECRET,
    oidcDomains: ["example.com"],
  });
  await provider.allowRedirect(ts.url);
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
});

after(async () => {
  await db?.end();
  await ts?.close();
  await provider?.close();
});

async function principalsWithEmail(
  email: string,
): Promise<{ id: string; refresh_token: string; claims: Record<string, unknown> }[]> {
  return (await db.query("SELECT id, refresh_token, claims FROM principals WHERE email = $1", [email])).rows;
}

/** Runs a login up to the provider's redirect back to the server, and returns that URL unfetched. */
async function untilReceive(
  login: string,
  start = `${ts.url}/_/oidc/login`,
): Promise<{ browser: FetchBrowser; receive: URL }> {
  const browser = new FetchBrowser();
  const r = await browser.login(start, login, { stopAt: isReceive });
  assert.ok(r.stoppedAt, `the login of ${login} did not come back to the server (ended at ${r.url})`);
  return { browser, receive: r.stoppedAt };
}

/** The session cookie's value among a response's Set-Cookie lines, if any. */
function sessionCookieSet(res: Response): string | undefined {
  return res.headers
    .getSetCookie()
    .find((c) => c.startsWith("authorization=") && !c.startsWith("authorization=;"));
}

async function currentPrincipal(token: string): Promise<string> {
  return (await ts.client(Tokens, token).current({})).principalId;
}

describe("OIDC browser login", () => {
  test("a logged-out visit to /_/v0/provision goes through the provider and back with a session cookie", async () => {
    const browser = new FetchBrowser();
    // The first hop: a redirect to the provider with PKCE S256, state and nonce, bound by an HttpOnly cookie.
    const first = await browser.request(`${ts.url}/_/v0/provision`);
    assert.equal(first.status, 302);
    const auth = new URL(first.headers.get("location")!);
    assert.equal(auth.origin, provider.issuer);
    assert.equal(auth.searchParams.get("code_challenge_method"), "S256");
    assert.match(auth.searchParams.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.ok(auth.searchParams.get("state"));
    assert.ok(auth.searchParams.get("nonce"));
    assert.equal(auth.searchParams.get("redirect_uri"), `${ts.url}/_/oidc/receive`);
    const loginCookie = first.headers.getSetCookie().find((c) => c.startsWith("cacheroach-oidc="));
    assert.ok(loginCookie);
    assert.match(loginCookie, /HttpOnly/);
    assert.match(loginCookie, /SameSite=Lax/);
    assert.match(loginCookie, /Max-Age=600/);
    assert.doesNotMatch(loginCookie, /Secure/); // plain HTTP, no --assume-secure

    const r = await browser.login(auth, "alice");
    assert.equal(r.response?.status, 200);
    assert.equal(r.url.pathname, "/_/v0/provision");
    const html = await r.response!.text();
    assert.match(html, /Signed in as <strong>Alice Example \(alice@example\.com\)<\/strong>/);
    assert.match(html, /href="\/_\/v0\/config"/);
    assert.match(html, /action="\/_\/oidc\/logout"/);
    const token = browser.jar.get("authorization");
    assert.ok(token, "the session cookie is set");
    assert.equal(browser.jar.has("cacheroach-oidc"), false, "the login cookie is gone");

    const [p] = await principalsWithEmail("alice@example.com");
    assert.ok(p, "the principal was created with the lower-cased verified email");
    assert.equal(await currentPrincipal(token), p.id);
    assert.equal(p.claims["name"], "Alice Example");
    assert.equal(p.claims["nonce"], undefined, "protocol claims are not stored");
    assert.match(p.refresh_token, /^v1\./, "the refresh token is stored sealed");
    assert.equal(p.refresh_token.includes(".") && p.refresh_token.length > 40, true);

    // A later login finds the same principal by email and replaces only the refresh token.
    const again = await new FetchBrowser().login(`${ts.url}/_/v0/provision`, "alice");
    assert.equal(again.response?.status, 200);
    const rows = await principalsWithEmail("alice@example.com");
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.id, p.id);
    assert.notEqual(rows[0]!.refresh_token, p.refresh_token);
  });

  test("the session cookie is HttpOnly, SameSite=Lax, Path=/ and lives as long as the session", async () => {
    const { browser, receive } = await untilReceive("alice");
    const res = await browser.request(receive);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/_/v0/provision");
    const c = sessionCookieSet(res);
    assert.ok(c);
    assert.match(c, /; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  test("concurrent first logins of one user create one principal", async () => {
    const a = await untilReceive("carol");
    const b = await untilReceive("carol");
    const [ra, rb] = await Promise.all([a.browser.request(a.receive), b.browser.request(b.receive)]);
    assert.equal(ra.status, 302);
    assert.equal(rb.status, 302);
    const rows = await principalsWithEmail("carol@example.com");
    assert.equal(rows.length, 1);
    assert.equal(await currentPrincipal(a.browser.jar.get("authorization")!), rows[0]!.id);
    assert.equal(await currentPrincipal(b.browser.jar.get("authorization")!), rows[0]!.id);
  });

  describe("the callback refuses, with 400 and a short reason, creating nothing", () => {
    async function refused(res: Response, reason: RegExp): Promise<void> {
      const body = await res.text();
      assert.equal(res.status, 400, body);
      assert.equal(res.headers.get(ERROR_CODE_HEADER), "ERR_BAD_REQUEST");
      assert.match(body, reason);
      assert.equal(sessionCookieSet(res), undefined, "no session cookie");
    }

    after(async () => {
      assert.deepEqual(await principalsWithEmail("frank@example.com"), [], "no principal of a refused login");
      assert.deepEqual(await principalsWithEmail("eve@example.com"), []);
      assert.deepEqual(await principalsWithEmail("bob@other.test"), []);
    });

    test("a missing state cookie (another browser, or expired)", async () => {
      const { receive } = await untilReceive("frank");
      await refused(await new FetchBrowser().request(receive), /no login in progress/);
    });

    test("a state that does not match the cookie's", async () => {
      const { browser, receive } = await untilReceive("frank");
      const forged = new URL(receive);
      forged.searchParams.set("state", "forged-state-value");
      await refused(await browser.request(forged), /state does not match/);
    });

    test("no state at all", async () => {
      const { browser, receive } = await untilReceive("frank");
      const forged = new URL(receive);
      forged.searchParams.delete("state");
      await refused(await browser.request(forged), /has no state/);
    });

    test("a tampered login cookie", async () => {
      const { browser, receive } = await untilReceive("frank");
      const cookie = browser.jar.get("cacheroach-oidc")!;
      browser.jar.set("cacheroach-oidc", `${cookie.slice(0, -4)}AAAA`);
      await refused(await browser.request(receive), /login cookie is invalid/);
    });

    test("a replayed code (even with the original cookies)", async () => {
      const { browser, receive } = await untilReceive("alice");
      const cookies = browser.cookieHeader();
      const first = await browser.request(receive, { headers: { cookie: cookies } });
      assert.equal(first.status, 302);
      await refused(await browser.request(receive, { headers: { cookie: cookies } }), /invalid_grant/);
    });

    test("an ID token for another audience", async () => {
      const { browser, receive } = await untilReceive("frank");
      provider.tamperIdToken = { claims: (c) => ({ ...c, aud: "another-client" }), resign: true };
      await refused(await browser.request(receive), /"aud"/);
    });

    test("an ID token from another issuer", async () => {
      const { browser, receive } = await untilReceive("frank");
      provider.tamperIdToken = { claims: (c) => ({ ...c, iss: "https://evil.test" }), resign: true };
      await refused(await browser.request(receive), /"iss"/);
    });

    test("an expired ID token", async () => {
      const { browser, receive } = await untilReceive("frank");
      const now = Math.floor(Date.now() / 1000);
      provider.tamperIdToken = { claims: (c) => ({ ...c, iat: now - 7200, exp: now - 3600 }), resign: true };
      await refused(await browser.request(receive), /"exp"|timestamp/);
    });

    test("an ID token with another nonce", async () => {
      const { browser, receive } = await untilReceive("frank");
      provider.tamperIdToken = { claims: (c) => ({ ...c, nonce: "another-nonce" }), resign: true };
      await refused(await browser.request(receive), /"nonce"/);
    });

    test("an ID token whose signature does not verify", async () => {
      const { browser, receive } = await untilReceive("frank");
      provider.tamperIdToken = { claims: (c) => ({ ...c, name: "Forged" }), resign: false };
      await refused(await browser.request(receive), /signature/i);
    });

    test("email_verified false", async () => {
      const { browser, receive } = await untilReceive("eve");
      await refused(await browser.request(receive), /has not verified the email eve@example\.com/);
    });

    test("an email outside the allowed domains", async () => {
      const { browser, receive } = await untilReceive("bob");
      await refused(await browser.request(receive), /bob@other\.test is not in a domain allowed/);
    });

    test("the provider's own error answer", async () => {
      const { browser, receive } = await untilReceive("frank");
      const denied = new URL(receive);
      denied.search = `?error=access_denied&state=${receive.searchParams.get("state")}`;
      await refused(await browser.request(denied), /access_denied/);
    });
  });

  test("a waiting CLI gets a session of its own, posted to its loopback port with its state", async () => {
    const browser = new FetchBrowser();
    const state = "cli-state-0123456789abcdef";
    const r = await browser.login(`${ts.url}/_/v0/provision?port=45678&state=${state}`, "alice");
    assert.equal(r.response?.status, 200);
    const csp = r.response!.headers.get("content-security-policy") ?? "";
    assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:45678\//);
    const html = await r.response!.text();
    assert.match(html, /action="http:\/\/127\.0\.0\.1:45678\/"/);
    assert.match(html, new RegExp(`name="state" value="${state}"`));
    const config = JSON.parse(
      /name="config" value="([^"]*)"/
        .exec(html)![1]!
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, "&"),
    ) as { server: string; token: string };
    assert.equal(config.server, ts.url);
    const [p] = await principalsWithEmail("alice@example.com");
    assert.equal(await currentPrincipal(config.token), p!.id);
    assert.notEqual(config.token, browser.jar.get("authorization"), "the CLI's session is not the browser's");

    // Logged in already: the landing page asks before handing the CLI a login (a POST of this page).
    const page = await browser.request(`${ts.url}/_/v0/provision?port=45679&state=${state}`);
    assert.match(await page.text(), /id="send-cli"/);
    const crossSite = await browser.request(`${ts.url}/_/v0/provision`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.test" },
      body: `port=45679&state=${state}`,
    });
    assert.equal(crossSite.status, 403, "a cross-site POST by cookie is refused");
    const bad = await browser.request(`${ts.url}/_/v0/provision?port=80&state=${state}`);
    assert.equal(bad.status, 400);
  });

  test("log-out revokes the cookie's session and clears the cookie; only from this server's pages", async () => {
    const browser = new FetchBrowser();
    await browser.login(`${ts.url}/_/v0/provision`, "alice");
    const token = browser.jar.get("authorization")!;
    const cross = await browser.request(`${ts.url}/_/oidc/logout`, {
      method: "POST",
      headers: { origin: "https://evil.test" },
    });
    assert.equal(cross.status, 403);
    assert.ok(await currentPrincipal(token));
    const out = await browser.request(`${ts.url}/_/oidc/logout`, {
      method: "POST",
      headers: { origin: ts.url },
    });
    assert.equal(out.status, 200);
    assert.match(await out.text(), /You are logged out/);
    assert.equal(browser.jar.has("authorization"), false);
    await assert.rejects(currentPrincipal(token), (err: unknown) => err instanceof ConnectError);
  });

  test("--assume-secure marks cookies Secure behind a TLS proxy", () => {
    const site = new Site({
      publicUrl: undefined,
      activeContentHosts: new Set(),
      isVHost: async () => false,
      assumeSecure: true,
    });
    const req = { headers: { host: "files.test" }, socket: { encrypted: false } } as unknown as HttpRequest;
    assert.equal(site.secureCookies(req), true);
  });
});

describe("OIDC off and bad settings", () => {
  test("without an issuer the login routes say OIDC is off (501, not 404)", async () => {
    const plain = await startTestServer();
    try {
      for (const path of ["/_/oidc/login", "/_/oidc/receive?code=x&state=y", "/_/v0/provision"]) {
        const res = await fetch(`${plain.url}${path}`, { redirect: "manual" });
        assert.equal(res.status, 501, path);
        assert.equal(res.headers.get(ERROR_CODE_HEADER), "ERR_OIDC_OFF");
        assert.match(await res.text(), /OIDC is off on this server/);
      }
    } finally {
      await plain.close();
    }
  });

  test("an issuer that cannot be reached stops the start with an error naming its URL", async () => {
    await assert.rejects(
      startServer({
        bind: "127.0.0.1:0",
        databaseUrl: ts.databaseUrl,
        signingKeys: [ts.signingKey],
        logLevel: "silent",
        oidcIssuer: "http://127.0.0.1:9/realm",
        oidcClientId: "x",
        oidcClientSecret: "y",
        oidcDomains: ["example.com"],
      }),
      (err: unknown) =>
        err instanceof OidcDiscoveryError &&
        err.message.includes("http://127.0.0.1:9/realm") &&
        err.message.includes("/.well-known/openid-configuration"),
    );
  });

  test("OIDC settings are all or nothing; domains must be domains", async () => {
    await assert.rejects(
      startServer({ oidcIssuer: provider.issuer, oidcClientId: "x", logLevel: "silent" }),
      (err: unknown) =>
        err instanceof ConfigError && /oidc-client-secret, oidc-domains are missing/.test(err.message),
    );
    await assert.rejects(
      startServer({
        oidcIssuer: provider.issuer,
        oidcClientId: "x",
        oidcClientSecret: "y",
        oidcDomains: ["not a domain"],
        logLevel: "silent",
      }),
      (err: unknown) => err instanceof ConfigError && /is not an email domain/.test(err.message),
    );
  });
});
