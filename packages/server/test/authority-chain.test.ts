/**
 * Delegated authority never outlives or exceeds its source (security issue, items 1 and 3): a
 * session is valid only while every session up its chain of authority is; revoking, expiring or
 * deleting a link ends everything below it; expiry and Refresh are bound by the chain; signed-URL
 * tokens read their one file and nothing else.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  Files,
  Principals,
  type Session,
  SessionSchema,
  SessionStatus,
  Tenants,
  Tokens,
} from "@cacheroach/proto";
import { Code, createClient } from "@connectrpc/connect";
import { SignJWT } from "jose";
import pg from "pg";
import { startServer } from "../src/server.js";
import { mintBootstrapToken } from "../src/signing-keys.js";
import { startTestServer, type TestServer, testTransport } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

/** How long a revocation may take to reach the session cache (sessionCacheMs below, plus margin). */
const CACHE_MS = 200;
const settle = () => new Promise((r) => setTimeout(r, CACHE_MS + 150));

let ts: TestServer;
let db: pg.Client;
let tenant: string;

before(async () => {
  ts = await startTestServer({ sessionCacheMs: CACHE_MS });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "chains" } })).tenant!.id;
});
after(async () => {
  await db?.end();
  await ts?.close();
});

const hours = (n: number) => timestampFromDate(new Date(Date.now() + n * 3_600_000));
const seconds = (n: number) => timestampFromDate(new Date(Date.now() + n * 1000));
const ALL = { read: true, write: true, delegate: true };

/** A principal and a login session for it (issued by the super session), with its token. */
async function user(name: string): Promise<{ id: string; login: string; loginId: string }> {
  const p = await ts.client(Principals, ts.superToken).ensure({
    principal: { claimsJson: JSON.stringify({ name }) },
  });
  const id = p.principal!.id;
  const r = await ts.client(Tokens, ts.superToken).issue({
    template: create(SessionSchema, {
      principalId: id,
      capabilities: { read: true, write: true, delegate: true },
      scope: { kind: { case: "onPrincipal", value: id } },
      expiresAt: hours(0.9), // within the test's super session (1 h)
    }),
  });
  return { id, login: r.token!.jwt, loginId: r.issued!.id };
}

/** Issues, with `token`, a grant on /x/* of `tenant` to `principalId`. */
async function grant(
  token: string,
  principalId: string,
  caps: { read?: boolean; write?: boolean; delegate?: boolean } = ALL,
  expiresAt = hours(0.5),
): Promise<{ session: Session; jwt: string }> {
  const r = await ts.client(Tokens, token).issue({
    template: create(SessionSchema, {
      principalId,
      capabilities: caps,
      scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/x/*" } } },
      expiresAt,
    }),
  });
  return { session: r.issued!, jwt: r.token!.jwt };
}

/** Reads /x/file.txt with `token` (a login acting through its grants, or a grant itself). */
const read = (token: string) => ts.client(Files, token).stat({ tenantId: tenant, path: "/x/file.txt" });

/** Writes a file into /x/ directly into the tenant (RPC one-shot), to read it later. */
async function seed(): Promise<void> {
  const { Uploads } = await import("@cacheroach/proto");
  await ts.client(Uploads, ts.superToken).begin({
    tenantId: tenant,
    path: "/x/file.txt",
    committed: { case: "contents", value: new TextEncoder().encode("shared") },
  });
}

/**
 * alice holds G1 (from super) on /x/*; through her login she issues G2 to bob; through his login
 * bob issues G3 to carol: a chain of depth 3 below the super session.
 */
async function chain() {
  const alice = await user("alice");
  const bob = await user("bob");
  const carol = await user("carol");
  const g1 = await grant(ts.superToken, alice.id, ALL, hours(0.5));
  const g2 = await grant(alice.login, bob.id, ALL, hours(0.4));
  const g3 = await grant(bob.login, carol.id, { read: true, delegate: true }, hours(0.3));
  return { alice, bob, carol, g1, g2, g3 };
}

describe("chains of authority", () => {
  before(seed);

  test("an issued session records the issuer and the grant whose authority it used", async () => {
    const c = await chain();
    assert.equal(c.g2.session.issuedBy, c.alice.loginId);
    assert.equal(c.g2.session.authorityId, c.g1.session.id);
    assert.equal(c.g3.session.issuedBy, c.bob.loginId);
    assert.equal(c.g3.session.authorityId, c.g2.session.id);
    // A grant used directly is its own authority.
    const direct = await grant(c.g1.jwt, c.bob.id, { read: true }, hours(0.2));
    assert.equal(direct.session.issuedBy, c.g1.session.id);
    assert.equal(direct.session.authorityId, "");
    for (const t of [c.carol.login, c.g3.jwt, c.bob.login, c.g2.jwt, direct.jwt]) await read(t);
  });

  for (const [what, cut] of [
    ["the root grant is revoked", async (c: Awaited<ReturnType<typeof chain>>) => revoke(c.g1.session.id)],
    [
      "the delegator's login is revoked",
      async (c: Awaited<ReturnType<typeof chain>>) => revoke(c.alice.loginId),
    ],
    [
      "the delegator is deleted",
      async (c: Awaited<ReturnType<typeof chain>>) => {
        const p = await ts
          .client(Principals, ts.superToken)
          .load({ kind: { case: "id", value: c.alice.id } });
        await ts.client(Principals, ts.superToken).ensure({ principal: p, delete: true });
      },
    ],
  ] as const) {
    test(`everything below dies when ${what}: depth 1, 2 and 3, logins and direct tokens`, async () => {
      const c = await chain();
      const signed = await ts
        .client(Files, c.carol.login)
        .retrieve({ tenantId: tenant, path: "/x/file.txt" });
      assert.equal((await fetch(`${ts.url}${signed.getUri}`)).status, 200);
      await cut(c);
      await settle();
      for (const login of [c.bob.login, c.carol.login]) {
        await rejects(read(login), Code.PermissionDenied, /lacks read/);
      }
      for (const direct of [c.g2.jwt, c.g3.jwt]) {
        await rejects(read(direct), Code.Unauthenticated, /revoked|expired|authority/);
      }
      assert.equal((await fetch(`${ts.url}${signed.getUri}`)).status, 401);
      // Refreshing a session whose chain is cut is refused too.
      await rejects(ts.client(Tokens, c.g3.jwt).refresh({}), Code.Unauthenticated, /./);
      // The operator sees what happened to them.
      const listed = await find({ issuedBy: c.bob.id, includeInactive: true });
      assert.deepEqual(
        listed.map((s) => [s.id, s.status]),
        [[c.g3.session.id, SessionStatus.REVOKED]],
      );
      // Others are unaffected: the super session and bob's and carol's own logins.
      await ts.client(Tokens, c.bob.login).current({});
      await ts.client(Tokens, c.carol.login).current({});
    });
  }

  test("a revocation on one instance ends the chain on another within the cache period", async () => {
    const other = await startServer({
      bind: "127.0.0.1:0",
      databaseUrl: ts.databaseUrl,
      signingKeys: [ts.signingKey],
      logLevel: "silent",
      maxConnections: 4,
      sessionCacheMs: CACHE_MS,
    });
    try {
      const c = await chain();
      const viaOther = (token: string) =>
        createClient(Files, testTransport(other.url, token)).stat({ tenantId: tenant, path: "/x/file.txt" });
      await viaOther(c.g3.jwt);
      await viaOther(c.carol.login);
      await revoke(c.g1.session.id); // on the first instance
      await settle();
      await rejects(viaOther(c.g3.jwt), Code.Unauthenticated, /revoked|expired|authority/);
      await rejects(viaOther(c.carol.login), Code.PermissionDenied, /lacks read/);
    } finally {
      await other.close();
    }
  });

  test("a chain cut without a revocation (a link expired or vanished) is caught at use", async () => {
    for (const how of ["expire", "vanish"] as const) {
      const c = await chain();
      await read(c.g3.jwt);
      // Past the cache: the next use re-checks the whole chain.
      if (how === "expire") {
        await db.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1", [
          c.g1.session.id,
        ]);
      } else {
        await db.query("DELETE FROM sessions WHERE id = $1", [c.alice.loginId]);
      }
      await settle();
      await rejects(read(c.g3.jwt), Code.Unauthenticated, /revoked|expired|authority/);
      await rejects(read(c.carol.login), Code.PermissionDenied, /./);
      const status = (await find({ issuedBy: c.bob.id, includeInactive: true }))[0]?.status;
      assert.equal(status, SessionStatus.ORPHANED, how);
    }
  });

  test("an issued session expires no later than its issuer or the grant it came from", async () => {
    const alice = await user("alice-short");
    const bob = await user("bob-short");
    const g1 = await grant(ts.superToken, alice.id, ALL, seconds(120));
    // alice's login lasts most of an hour, but the grant she acts through ends in two minutes.
    await rejects(
      grant(alice.login, bob.id, ALL, hours(1)),
      Code.PermissionDenied,
      /cannot outlive the grant/,
    );
    await rejects(grant(g1.jwt, bob.id, ALL, hours(1)), Code.PermissionDenied, /cannot outlive its issuer/);
    // Without an expiry, the new session gets the earliest one of its chain.
    const r = await ts.client(Tokens, alice.login).issue({
      template: create(SessionSchema, {
        principalId: bob.id,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/x/*" } } },
      }),
    });
    assert.equal(
      timestampDate(r.issued!.expiresAt!).getTime(),
      timestampDate(g1.session.expiresAt!).getTime(),
    );
    // Nothing was stored by the refusals.
    const rows = await db.query("SELECT count(*)::int AS n FROM sessions WHERE principal_id = $1", [bob.id]);
    assert.equal(rows.rows[0].n, 2); // bob's login and the one granted above
  });

  test("Refresh never extends a session past its chain, and keeps what it issued alive", async () => {
    const alice = await user("alice-refresh");
    const bob = await user("bob-refresh");
    const carol = await user("carol-refresh");
    const g1 = await grant(ts.superToken, alice.id, ALL, seconds(90));
    const g2 = await grant(alice.login, bob.id, ALL, seconds(60));
    const g3 = await grant(g2.jwt, carol.id, { read: true }, seconds(50));
    const refreshed = await ts.client(Tokens, g2.jwt).refresh({});
    const exp = timestampDate(refreshed.issued!.expiresAt!).getTime();
    assert.ok(exp <= timestampDate(g1.session.expiresAt!).getTime(), "refresh passed the grant it came from");
    assert.equal(refreshed.issued!.authorityId, g1.session.id);
    // The old token is revoked; what it issued now hangs off the new one and still works.
    await settle();
    await rejects(read(g2.jwt), Code.Unauthenticated, /./);
    await read(refreshed.token!.jwt);
    await read(g3.jwt);
    // Refreshing the refreshed one cannot pass the root either.
    const again = await ts.client(Tokens, refreshed.token!.jwt).refresh({});
    assert.ok(
      timestampDate(again.issued!.expiresAt!).getTime() <= timestampDate(g1.session.expiresAt!).getTime(),
    );
    // Revoking the root still reaches everything, through the refreshed links.
    await revoke(g1.session.id);
    await settle();
    await rejects(read(again.token!.jwt), Code.Unauthenticated, /./);
    await rejects(read(g3.jwt), Code.Unauthenticated, /./);
  });

  test("operators list sessions by owner and by issuer, and revoke a whole subtree", async () => {
    const c = await chain();
    const mine = await find({ owner: c.bob.id });
    assert.deepEqual(mine.map((s) => s.id).sort(), [c.bob.loginId, c.g2.session.id].sort());
    assert.ok(mine.every((s) => s.status === SessionStatus.ACTIVE));
    const underAlice = await find({ issuedBy: c.alice.id });
    assert.deepEqual(underAlice.map((s) => s.id).sort(), [c.g2.session.id, c.g3.session.id].sort());
    const underG2 = await find({ issuedBy: c.g2.session.id });
    assert.deepEqual(
      underG2.map((s) => s.id),
      [c.g3.session.id],
    );
    // Revoking alice's grant revokes the subtree in one call, and says how many.
    const r = await ts
      .client(Tokens, ts.superToken)
      .invalidate({ kind: { case: "id", value: c.g1.session.id } });
    assert.equal(r.revoked, 3);
    const again = await ts
      .client(Tokens, ts.superToken)
      .invalidate({ kind: { case: "id", value: c.g1.session.id } });
    assert.equal(again.revoked, 0);
    assert.deepEqual(await find({ issuedBy: c.alice.id }), []); // none active any more
    // Non-operators: by issuer only their own; another principal's sessions need authority over it.
    await find({ issuedBy: c.bob.id }, c.bob.login);
    await rejects(find({ issuedBy: c.alice.id }, c.bob.login), Code.PermissionDenied, /super/);
    await rejects(find({ owner: c.alice.id }, c.bob.login), Code.PermissionDenied, /delegate over it/);
    await rejects(find({ owner: "not-a-uuid" }), Code.InvalidArgument, /./);
  });
});

describe("signed-URL tokens read their one file and nothing else", () => {
  let url: string;
  let token: string;
  before(async () => {
    await seed();
    const alice = await user("alice-url");
    await grant(ts.superToken, alice.id);
    const r = await ts.client(Files, alice.login).retrieve({ tenantId: tenant, path: "/x/file.txt" });
    url = r.getUri;
    token = new URL(url, ts.url).searchParams.get("access_token")!;
  });

  test("it reads its file over HTTP", async () => {
    const res = await fetch(`${ts.url}${url}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "shared");
  });

  test("it cannot call the API: no Retrieve, no Load of the minter's session, no Current", async () => {
    await rejects(
      ts.client(Files, token).retrieve({ tenantId: tenant, path: "/x/file.txt" }),
      Code.PermissionDenied,
      /signed-URL token/,
    );
    await rejects(
      ts.client(Files, token).stat({ tenantId: tenant, path: "/x/file.txt" }),
      Code.PermissionDenied,
      /signed-URL token/,
    );
    await rejects(ts.client(Tokens, token).current({}), Code.PermissionDenied, /./);
    await rejects(find({}, token), Code.PermissionDenied, /signed-URL token/);
  });

  test("it gets no CLI config and reads no other path", async () => {
    assert.equal((await fetch(`${ts.url}/_/v0/config?access_token=${token}`)).status, 403);
    const other = await fetch(`${ts.url}/x/?access_token=${token}`, { headers: { host: "chains.test" } });
    assert.ok(other.status === 401 || other.status === 403 || other.status === 404, String(other.status));
  });

  test("tokens without a session ID must be a bootstrap token or a proper signed URL", async () => {
    const now = Math.floor(Date.now() / 1000);
    const forge = (cr: unknown) =>
      new SignJWT({ cr })
        .setProtectedHeader({ alg: "HS256" })
        .setAudience("cacheroach")
        .setSubject(ts.rootPrincipalId)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(ts.signingKey);
    const loc = { t: tenant, p: "/x/file.txt" };
    // No issuer and not super: an unrevocable grant. Refused, even correctly signed.
    await rejects(read(await forge({ c: 1, s: loc })), Code.Unauthenticated, /only a bootstrap token/);
    // An ephemeral token that could write, or read a whole directory.
    const issuer = (await ts.client(Tokens, ts.superToken).current({})).id;
    await rejects(read(await forge({ c: 3, s: loc, b: issuer })), Code.Unauthenticated, /signed URL/);
    await rejects(
      read(await forge({ c: 1, s: { t: tenant, p: "/x/*" }, b: issuer })),
      Code.Unauthenticated,
      /signed URL/,
    );
    // The bootstrap token may not mint signed URLs: they would have no session to revoke.
    const boot = await mintBootstrapToken(ts.signingKey, 60);
    await rejects(
      ts.client(Files, boot).retrieve({ tenantId: tenant, path: "/x/file.txt" }),
      Code.PermissionDenied,
      /durable session/,
    );
  });
});

async function revoke(id: string): Promise<void> {
  await ts.client(Tokens, ts.superToken).invalidate({ kind: { case: "id", value: id } });
}

async function find(
  req: { owner?: string; issuedBy?: string; includeInactive?: boolean },
  token = ts.superToken,
): Promise<Session[]> {
  const out: Session[] = [];
  for await (const s of ts.client(Tokens, token).find(req)) out.push(s);
  return out;
}
