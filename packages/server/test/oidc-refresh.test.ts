/**
 * Re-validation of OIDC principals with their refresh tokens, against a real provider whose access
 * tokens live 2 s, with two server instances on one database: one refresh for both, a revoked
 * grant makes the next request say "log in again", an unreachable provider is a temporary
 * failure. Refresh tokens stay sealed at rest and appear in no API answer.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Principals, Tokens } from "@cacheroach/proto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import pg from "pg";
import { SecretBox } from "../src/auth/secret-box.js";
import { ERROR_CODE_HEADER } from "../src/errors.js";
import { type RunningServer, startServer } from "../src/server.js";
import { startTestServer, type TestServer, testTransport } from "../src/testing.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  FetchBrowser,
  startTestProvider,
  type TestProvider,
} from "./fixtures/oidc-provider.js";

const ACCESS_TOKEN_SECONDS = 2;
const GRACE_MS = 3000;

let provider: TestProvider;
let a: TestServer;
let b: RunningServer;
let db: pg.Client;

const oidcOptions = () => ({
  oidcIssuer: provider.issuer,
  oidcClientId: CLIENT_ID,
  oidcClientSecret: CLIENT_SECRET,
  oidcDomains: ["example.com"],
  oidcRefreshGraceMs: GRACE_MS,
  sessionCacheMs: 100,
});

before(async () => {
  provider = await startTestProvider({ accessTokenTtl: ACCESS_TOKEN_SECONDS });
  a = await startTestServer(oidcOptions());
  await provider.allowRedirect(a.url);
  // A second instance of the same deployment: same database, same signing key.
  b = await startServer({
    bind: "127.0.0.1:0",
    databaseUrl: a.databaseUrl,
    signingKeys: [a.signingKey],
    logLevel: "silent",
    gracePeriodMs: 0,
    maxConnections: 4,
    ...oidcOptions(),
  });
  db = new pg.Client({ connectionString: a.databaseUrl });
  await db.connect();
});

after(async () => {
  await db?.end();
  await b?.close();
  await a?.close();
  await provider?.close();
});

async function loginAlice(): Promise<string> {
  const browser = new FetchBrowser();
  const r = await browser.login(`${a.url}/_/v0/provision`, "alice");
  assert.equal(r.response?.status, 200);
  return browser.jar.get("authorization")!;
}

async function row(): Promise<{ refresh_token: string; refresh_after: Date; refresh_status: string }> {
  const r = await db.query(
    "SELECT refresh_token, refresh_after, refresh_status FROM principals WHERE email = 'alice@example.com'",
  );
  return r.rows[0];
}

/** Waits until alice's access token has expired (her refresh time has passed). */
async function untilRefreshDue(): Promise<void> {
  const due = (await row()).refresh_after.getTime();
  await sleep(Math.max(0, due - Date.now()) + 200);
}

const current = (url: string, token: string) => createClient(Tokens, testTransport(url, token)).current({});

async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConnectError, String(err));
    return err;
  }
  assert.fail("the call succeeded");
}

test("after expiry, requests on two instances cause one refresh at the provider", async () => {
  const token = await loginAlice();
  const before = provider.grants.refresh_token;
  await untilRefreshDue();
  const calls = [];
  for (let i = 0; i < 4; i++) calls.push(current(a.url, token), current(b.url, token));
  const answers = await Promise.all(calls);
  assert.ok(answers.every((s) => s.principalId === answers[0]!.principalId));
  assert.equal(provider.grants.refresh_token - before, 1, "exactly one refresh for both instances");
  const r = await row();
  assert.equal(Number(r.refresh_status), 0);
  assert.ok(r.refresh_after.getTime() > Date.now(), "valid until the new access token expires");
  // The one refresh shows in the metrics of the instance that made it.
  const okCount = async (url: string) => {
    const body = await (await fetch(`${url}/metrics`)).text();
    return Number(/^cacheroach_oidc_refreshes_total\{outcome="ok"\} (\d+)/m.exec(body)?.[1] ?? Number.NaN);
  };
  assert.equal((await okCount(a.url)) + (await okCount(b.url)), 1);
});

test("refresh tokens are sealed at rest and appear in no API answer", async () => {
  const token = await loginAlice();
  const sealed = (await row()).refresh_token;
  const plain = new SecretBox([a.signingKey], "oidc refresh token v1").open(sealed);
  assert.ok(plain && plain.length > 10, "the server's key opens it");
  assert.equal(sealed.includes(plain), false);
  const principals = createClient(Principals, testTransport(a.url, a.superToken));
  const all = [];
  for await (const p of principals.list({}))
    all.push(JSON.stringify(p, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
  assert.ok(all.length > 0);
  assert.equal(all.join("").includes(plain), false);
  assert.equal(all.join("").includes(sealed), false);
  const config = await (
    await fetch(`${a.url}/_/v0/config`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  assert.equal(config.includes(plain), false);
});

test("a grant revoked at the provider makes the next request say to log in again, on every instance", async () => {
  const token = await loginAlice();
  const plain = new SecretBox([a.signingKey], "oidc refresh token v1").open((await row()).refresh_token)!;
  await provider.revoke(plain);
  await untilRefreshDue();
  const err = await errorOf(current(a.url, token));
  assert.equal(err.code, Code.Unauthenticated);
  assert.equal(err.metadata.get(ERROR_CODE_HEADER), "ERR_LOGIN_REQUIRED");
  assert.match(err.rawMessage, /cacheroach auth login/);
  assert.equal(Number((await row()).refresh_status), 2);
  // The other instance refuses it too, also over plain HTTP, once what it cached ends: it may
  // have accepted alice until the end of an earlier grace window (at most GRACE_MS).
  await sleep(GRACE_MS);
  const other = await errorOf(current(b.url, token));
  assert.equal(other.metadata.get(ERROR_CODE_HEADER), "ERR_LOGIN_REQUIRED");
  const http = await fetch(`${b.url}/_/v0/config`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(http.status, 401);
  assert.match(await http.text(), /cacheroach auth login/);
  // A new login makes the principal valid again.
  const fresh = await loginAlice();
  await sleep(200); // the refusal is cached for the session-cache period (100 ms here)
  assert.ok((await current(a.url, fresh)).principalId);
  assert.ok((await current(b.url, fresh)).principalId);
});

test("a provider that cannot be reached is a temporary failure; the refresh is tried again later", async () => {
  const token = await loginAlice();
  await untilRefreshDue();
  provider.down = true;
  let err: ConnectError;
  try {
    err = await errorOf(current(a.url, token));
  } finally {
    provider.down = false;
  }
  assert.equal(err.code, Code.Unavailable);
  assert.equal(err.metadata.get(ERROR_CODE_HEADER), "ERR_UNAVAILABLE");
  assert.notEqual(Number((await row()).refresh_status), 2, "not marked as needing a new login");
  // During the grace window the user is accepted; after it, the refresh is tried again and works.
  assert.ok((await current(b.url, token)).principalId);
  const before = provider.grants.refresh_token;
  await untilRefreshDue();
  assert.ok((await current(a.url, token)).principalId);
  assert.equal(provider.grants.refresh_token - before, 1);
  assert.equal(Number((await row()).refresh_status), 0);
});
