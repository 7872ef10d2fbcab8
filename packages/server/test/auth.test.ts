import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  Diags,
  Files,
  Principals,
  Scrub,
  SessionSchema,
  Tenants,
  Tokens,
  Uploads,
  VHosts,
} from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import { SignJWT } from "jose";
import pg from "pg";
import { methodKey, POLICY } from "../src/auth/policy.js";
import { mintBootstrapToken } from "../src/signing-keys.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

let ts: TestServer;
const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

before(async () => {
  ts = await startTestServer({ sessionCacheMs: 200 });
});
after(async () => ts?.close());

test("every method of every service has an access policy", () => {
  for (const svc of [Files, Uploads, Tenants, Principals, Tokens, VHosts, Diags, Scrub]) {
    for (const m of svc.methods) {
      assert.ok(POLICY.get(methodKey(m)), `${svc.typeName}/${m.name} has no policy`);
    }
  }
});

describe("authentication", () => {
  const stat = (token?: string) => ts.client(Files, token).stat({ tenantId: scratch, path: "/index.html" });

  test("no token is not logged in", async () => {
    await rejects(stat(), Code.Unauthenticated, /not logged in/);
    await rejects(
      ts.client(Uploads).begin({ tenantId: scratch, path: "/x" }),
      Code.Unauthenticated,
      /not logged in/,
    );
  });

  test("malformed authorization header", async () => {
    const t = ts.transport();
    const client = (await import("@connectrpc/connect")).createClient(Files, t);
    await rejects(
      client.stat({ tenantId: scratch, path: "/x" }, { headers: { authorization: "Basic abc" } }),
      Code.Unauthenticated,
      /Bearer/,
    );
  });

  test("forged, tampered, expired, wrong-audience and wrong-algorithm tokens are refused", async () => {
    const key = ts.signingKey;
    const now = Math.floor(Date.now() / 1000);
    const claims = { cr: { c: 31, s: "s" } };
    const sign = (alg: "HS256" | "HS512", k: Uint8Array, aud = "cacheroach", exp = now + 60) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg })
        .setAudience(aud)
        .setSubject("00000000-0000-0000-0000-000000000000")
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .sign(k);
    await rejects(stat(await sign("HS256", randomBytes(32))), Code.Unauthenticated, /signature is invalid/);
    await rejects(stat(await sign("HS256", key, "someone-else")), Code.Unauthenticated, /"aud"/);
    await rejects(stat(await sign("HS256", key, "cacheroach", now - 10)), Code.Unauthenticated, /expired/);
    await rejects(stat(await sign("HS512", key)), Code.Unauthenticated, /algorithm/);
    const good = await sign("HS256", key);
    const [h, p, s] = good.split(".");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${p}.`;
    await rejects(stat(none), Code.Unauthenticated, /algorithm|malformed/);
    const tamperedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), cr: { c: 31, s: "s", x: 1 } }),
    ).toString("base64url");
    await rejects(stat(`${h}.${tamperedPayload}.${s}`), Code.Unauthenticated, /signature/);
    await rejects(stat("not.a.jwt"), Code.Unauthenticated, /malformed|invalid/);
    // The good one works: the signing key is what makes a super token.
    await rejects(stat(good), Code.NotFound, /no file/);
  });

  test("a revoked session stops working within the cache window", async () => {
    const tokens = ts.client(Tokens, ts.superToken);
    const issued = await tokens.issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: scratch, path: "/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    const jwt = issued.token!.jwt;
    await rejects(stat(jwt), Code.NotFound, /no file/); // authorised; the file just isn't there
    const db = new pg.Client({ connectionString: ts.databaseUrl });
    await db.connect();
    await db.query("UPDATE sessions SET revoked_at = now() WHERE id = $1", [issued.issued!.id]);
    await db.end();
    await new Promise((r) => setTimeout(r, 300));
    await rejects(stat(jwt), Code.Unauthenticated, /revoked/);
  });
});

describe("authorization", () => {
  let readOnly: string;
  before(async () => {
    const tokens = ts.client(Tokens, ts.superToken);
    const issued = await tokens.issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true, delegate: true },
        scope: { kind: { case: "onLocation", value: { tenantId: scratch, path: "/pub/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    readOnly = issued.token!.jwt;
  });

  test("a location session is confined to its capabilities and paths", async () => {
    const up = ts.client(Uploads, readOnly);
    await rejects(
      up.begin({ tenantId: scratch, path: "/pub/a", committed: { case: "empty", value: true } }),
      Code.PermissionDenied,
      /lacks write on \/pub\/a/,
    );
    await rejects(
      ts.client(Files, readOnly).stat({ tenantId: scratch, path: "/private" }),
      Code.PermissionDenied,
      /lacks read on \/private/,
    );
    await rejects(
      ts.client(Files, readOnly).list({ tenantId: scratch, path: "/" }),
      Code.PermissionDenied,
      /lacks read on \/\*/,
    );
    await rejects(
      ts.client(Files, readOnly).stat({ tenantId: scratch, path: "/pub/a" }),
      Code.NotFound,
      /no file/,
    );
  });

  test("super-only services refuse other sessions", async () => {
    await rejects(
      ts.client(Tenants, readOnly).ensure({ tenant: { label: "x" } }),
      Code.PermissionDenied,
      /needs a super session/,
    );
    await rejects(
      ts.client(Principals, readOnly).ensure({ principal: {} }),
      Code.PermissionDenied,
      /needs a super session/,
    );
  });

  test("delegation can never widen capabilities, scope or expiry", async () => {
    const tokens = ts.client(Tokens, readOnly);
    const base = {
      capabilities: { read: true },
      scope: { kind: { case: "onLocation" as const, value: { tenantId: scratch, path: "/pub/sub/*" } } },
      expiresAt: timestampFromDate(new Date(Date.now() + 30_000)),
    };
    const ok = await tokens.issue({ template: create(SessionSchema, base) });
    assert.equal(ok.issued!.capabilities!.read, true);
    await rejects(
      tokens.issue({
        template: create(SessionSchema, { ...base, capabilities: { read: true, write: true } }),
      }),
      Code.PermissionDenied,
      /write/,
    );
    await rejects(
      tokens.issue({
        template: create(SessionSchema, {
          ...base,
          scope: { kind: { case: "onLocation", value: { tenantId: scratch, path: "/*" } } },
        }),
      }),
      Code.PermissionDenied,
      /may not delegate/,
    );
    await rejects(
      tokens.issue({
        template: create(SessionSchema, { ...base, scope: { kind: { case: "superToken", value: true } } }),
      }),
      Code.PermissionDenied,
      /super/,
    );
    await rejects(
      tokens.issue({
        template: create(SessionSchema, {
          ...base,
          expiresAt: timestampFromDate(new Date(Date.now() + 3_600_000)),
        }),
      }),
      Code.PermissionDenied,
      /outlive/,
    );
  });

  test("an ephemeral bootstrap token needs the server's signing key", async () => {
    const forged = await mintBootstrapToken(randomBytes(32));
    await rejects(
      ts.client(Tenants, forged).ensure({ tenant: { label: "x" } }),
      Code.Unauthenticated,
      /signature/,
    );
  });
});
