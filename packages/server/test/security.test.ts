import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Diags, Files, Principals, SessionSchema, Tenants, Tokens, Uploads, VHosts } from "@cacheroach/proto";
import { Code, createClient } from "@connectrpc/connect";
import { startServer } from "../src/server.js";
import { startTestServer, type TestServer, testTransport } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

let ts: TestServer;
let tenantA: string;
let tenantB: string;
const ALL = { read: true, write: true, delegate: true, pii: true, fetch: true };
const inMinutes = (m: number) => timestampFromDate(new Date(Date.now() + m * 60_000));
const loc = (tenantId: string, path: string) => ({
  kind: { case: "onLocation" as const, value: { tenantId, path } },
});

/** Creates a principal and its login session (on_principal(self), all capabilities). */
async function user(name: string, claims: Record<string, unknown> = {}, emailDomain = "") {
  const p = await ts.client(Principals, ts.superToken).ensure({
    principal: { claimsJson: JSON.stringify({ name, ...claims }), emailDomain },
  });
  const id = p.principal!.id;
  const login = await ts.client(Tokens, ts.superToken).issue({
    template: create(SessionSchema, {
      principalId: id,
      capabilities: ALL,
      scope: { kind: { case: "onPrincipal", value: id } },
      expiresAt: inMinutes(30),
      name: "<self>",
    }),
  });
  return { id, token: login.token!.jwt, sessionId: login.issued!.id };
}

/** Root grants `caps` at a location to a principal. */
async function grant(principalId: string, caps: object, tenantId: string, path: string, minutes = 20) {
  const r = await ts.client(Tokens, ts.superToken).issue({
    template: create(SessionSchema, {
      principalId,
      capabilities: caps,
      scope: loc(tenantId, path),
      expiresAt: inMinutes(minutes),
    }),
  });
  return r.issued!.id;
}

const put = (token: string, tenantId: string, path: string) =>
  ts
    .client(Uploads, token)
    .begin({ tenantId, path, committed: { case: "contents", value: Buffer.from(path) } });
const stat = (token: string, tenantId: string, path: string) =>
  ts.client(Files, token).stat({ tenantId, path });

before(async () => {
  ts = await startTestServer({ sessionCacheMs: 300 });
  const tenants = ts.client(Tenants, ts.superToken);
  tenantA = (await tenants.ensure({ tenant: { label: "A" } })).tenant!.id;
  tenantB = (await tenants.ensure({ tenant: { label: "B" } })).tenant!.id;
});
after(async () => ts?.close());

describe("a user works within a grant and is refused outside it", () => {
  let alice: Awaited<ReturnType<typeof user>>;
  before(async () => {
    alice = await user("alice");
    await grant(alice.id, { read: true, write: true }, tenantA, "/*");
  });

  test("inside the grant", async () => {
    await put(alice.token, tenantA, "/notes/a.txt");
    assert.equal((await stat(alice.token, tenantA, "/notes/a.txt")).file!.version, 1n);
    const ls = await ts.client(Files, alice.token).list({ tenantId: tenantA, path: "/" });
    assert.deepEqual(
      ls.files.map((f) => f.path),
      ["/notes/a.txt"],
    );
  });

  test("outside it: another tenant, super-only services, other principals", async () => {
    await rejects(put(alice.token, tenantB, "/x"), Code.PermissionDenied, /lacks write on \/x in tenant/);
    await rejects(stat(alice.token, tenantB, "/x"), Code.PermissionDenied, /lacks read/);
    await rejects(ts.client(Tenants, alice.token).get({ id: tenantB }), Code.NotFound, /no tenant/);
    const listed: string[] = [];
    for await (const t of ts.client(Tenants, alice.token).list({})) listed.push(t.id);
    assert.deepEqual(listed, [tenantA], "tenant listing never reveals tenants the caller cannot read");
    await rejects(
      ts.client(Tenants, alice.token).ensure({ tenant: { label: "mine" } }),
      Code.PermissionDenied,
      /super/,
    );
    await rejects(
      ts.client(Principals, alice.token).ensure({ principal: { claimsJson: "{}" } }),
      Code.PermissionDenied,
      /super/,
    );
    await rejects(
      ts.client(VHosts, alice.token).ensure({ vhost: { vhost: "x.com", tenantId: tenantA } }),
      Code.PermissionDenied,
      /super/,
    );
    await rejects(ts.client(Diags, alice.token).echo({}), Code.PermissionDenied, /super/);
  });

  test("escalation through delegation is refused and creates nothing", async () => {
    const tokens = ts.client(Tokens, alice.token);
    const bob = await user("bob");
    const attempt = (template: object) => tokens.issue({ template: create(SessionSchema, template) });
    // alice holds read+write on A but not delegate.
    await rejects(
      attempt({ capabilities: { read: true }, scope: loc(tenantA, "/notes/*"), expiresAt: inMinutes(5) }),
      Code.PermissionDenied,
      /may not delegate/,
    );
    await rejects(
      attempt({
        capabilities: { read: true },
        scope: { kind: { case: "superToken", value: true } },
        expiresAt: inMinutes(5),
      }),
      Code.PermissionDenied,
      /super/,
    );
    await rejects(
      attempt({
        principalId: bob.id,
        capabilities: ALL,
        scope: { kind: { case: "onPrincipal", value: bob.id } },
        expiresAt: inMinutes(5),
      }),
      Code.PermissionDenied,
      /no delegate authority over the principal/,
    );
    await rejects(
      attempt({
        capabilities: ALL,
        scope: { kind: { case: "onPrincipal", value: alice.id } },
        expiresAt: inMinutes(600),
      }),
      Code.PermissionDenied,
      /outlive/,
    );
    await rejects(
      attempt({ capabilities: {}, scope: loc(tenantA, "/*") }),
      Code.InvalidArgument,
      /no capabilities/,
    );
    await rejects(
      attempt({ capabilities: { read: true }, scope: loc(tenantA, "/a*b") }),
      Code.InvalidArgument,
      /pattern/,
    );
    const mine: string[] = [];
    for await (const s of tokens.find({})) mine.push(s.id);
    assert.equal(mine.length, 2, "alice still holds only her login and her grant");
  });

  test("sessions and principals of others are not visible", async () => {
    const bob = await user("bob2");
    await rejects(
      ts.client(Principals, alice.token).load({ kind: { case: "id", value: bob.id } }),
      Code.NotFound,
      /no such principal/,
    );
    await rejects(
      ts.client(Tokens, alice.token).load({ kind: { case: "id", value: bob.sessionId } }),
      Code.PermissionDenied,
      /no authority/,
    );
    await rejects(
      ts.client(Tokens, alice.token).invalidate({ kind: { case: "id", value: bob.sessionId } }),
      Code.PermissionDenied,
      /no authority/,
    );
    assert.equal(
      (await ts.client(Tokens, bob.token).current({})).principalId,
      bob.id,
      "bob's session still works",
    );
    const self = await ts.client(Principals, alice.token).load({ kind: { case: "id", value: alice.id } });
    assert.equal(self.label, "alice");
  });
});

describe("delegation chain and revocation", () => {
  test("a delegate grants a narrower read to another user, then revokes it", async () => {
    const carol = await user("carol");
    const dan = await user("dan");
    await grant(carol.id, { read: true, write: true, delegate: true }, tenantA, "/shared/*");
    await put(ts.superToken, tenantA, "/shared/doc");
    const issued = await ts.client(Tokens, carol.token).issue({
      template: create(SessionSchema, {
        principalId: dan.id,
        capabilities: { read: true },
        scope: loc(tenantA, "/shared/*"),
        expiresAt: inMinutes(10),
      }),
    });
    assert.equal((await stat(dan.token, tenantA, "/shared/doc")).file!.path, "/shared/doc");
    await rejects(put(dan.token, tenantA, "/shared/new"), Code.PermissionDenied, /lacks write/);
    await rejects(stat(dan.token, tenantA, "/notes/a.txt"), Code.PermissionDenied, /lacks read/);
    await ts.client(Tokens, carol.token).invalidate({ kind: { case: "id", value: issued.issued!.id } });
    await new Promise((r) => setTimeout(r, 400));
    await rejects(stat(dan.token, tenantA, "/shared/doc"), Code.PermissionDenied, /lacks read/);
  });

  test("refresh replaces a session without extending its authority", async () => {
    const erin = await user("erin");
    const before = await ts.client(Tokens, erin.token).current({});
    const fresh = await ts.client(Tokens, erin.token).refresh({});
    assert.notEqual(fresh.issued!.id, erin.sessionId);
    assert.equal(fresh.issued!.name, "<self>", "the name survives a refresh");
    assert.deepEqual(fresh.issued!.scope, before.scope);
    assert.deepEqual(fresh.issued!.capabilities, before.capabilities);
    await rejects(ts.client(Tokens, erin.token).current({}), Code.Unauthenticated, /revoked/);
    assert.equal((await ts.client(Tokens, fresh.token!.jwt).current({})).id, fresh.issued!.id);
  });

  test("logout revokes the current session", async () => {
    const fay = await user("fay");
    await ts.client(Tokens, fay.token).invalidate({ kind: { case: "current", value: true } });
    await new Promise((r) => setTimeout(r, 400));
    await rejects(ts.client(Tokens, fay.token).current({}), Code.Unauthenticated, /revoked/);
  });

  test("revocation reaches a second server instance sharing the database", async () => {
    const second = await startServer({
      bind: "127.0.0.1:0",
      databaseUrl: ts.databaseUrl,
      signingKeys: [ts.signingKey],
      logLevel: "silent",
      sessionCacheMs: 300,
      maxConnections: 4,
    });
    try {
      const gus = await user("gus");
      await grant(gus.id, { read: true }, tenantA, "/*");
      const onSecond = createClient(Files, testTransport(second.url, gus.token));
      await rejects(onSecond.stat({ tenantId: tenantA, path: "/nothing" }), Code.NotFound, /no file/);
      await ts.client(Tokens, ts.superToken).invalidate({ kind: { case: "id", value: gus.sessionId } });
      await new Promise((r) => setTimeout(r, 500));
      await rejects(onSecond.stat({ tenantId: tenantA, path: "/nothing" }), Code.Unauthenticated, /revoked/);
    } finally {
      await second.close();
    }
  });
});

describe("domain principals", () => {
  test("grants to a domain apply to every principal with a verified email there", async () => {
    const domain = await ts
      .client(Principals, ts.superToken)
      .ensure({ principal: { claimsJson: '{"name":"Example Inc"}', emailDomain: "Example.COM" } });
    assert.equal(domain.principal!.emailDomain, "example.com");
    await grant(domain.principal!.id, { read: true }, tenantB, "/*");
    await put(ts.superToken, tenantB, "/team.txt");
    const hal = await user("hal", { email: "Hal@example.com", email_verified: true });
    const ivy = await user("ivy", { email: "ivy@example.com", email_verified: false });
    const joe = await user("joe", { email: "joe@elsewhere.org", email_verified: true });
    assert.equal((await stat(hal.token, tenantB, "/team.txt")).file!.path, "/team.txt");
    await rejects(stat(ivy.token, tenantB, "/team.txt"), Code.PermissionDenied, /lacks read/);
    await rejects(stat(joe.token, tenantB, "/team.txt"), Code.PermissionDenied, /lacks read/);
    const found: string[] = [];
    for await (const s of ts.client(Tokens, hal.token).find({})) found.push(s.principalId);
    assert.deepEqual(found.sort(), [hal.id, domain.principal!.id].sort());
    await rejects(
      ts
        .client(Principals, ts.superToken)
        .ensure({ principal: { claimsJson: "{}", emailDomain: "example.com" } }),
      Code.AlreadyExists,
      /email domain/,
    );
  });
});

describe("operator services", () => {
  test("vhosts validate hosts and tenants", async () => {
    const v = ts.client(VHosts, ts.superToken);
    await v.ensure({ vhost: { vhost: "Files.Example.com", tenantId: tenantA } });
    await rejects(
      v.ensure({ vhost: { vhost: "http://x.com:80", tenantId: tenantA } }),
      Code.InvalidArgument,
      /not a host name/,
    );
    await rejects(
      v.ensure({ vhost: { vhost: "y.com", tenantId: "12345678-1234-1234-1234-123456789abc" } }),
      Code.NotFound,
      /does not exist/,
    );
    const all: string[] = [];
    for await (const h of v.list({})) all.push(`${h.vhost}=${h.tenantId}`);
    assert.ok(all.includes(`files.example.com=${tenantA}`));
    await v.ensure({ vhost: { vhost: "files.example.com", tenantId: tenantA }, delete: true });
    await v.ensure({ vhost: { vhost: "files.example.com", tenantId: tenantA }, delete: true });
  });

  test("diags echo redacts credentials and never returns the environment", async () => {
    const r = await ts.client(Diags, ts.superToken).echo({});
    assert.deepEqual(r.requestHeaders["authorization"]?.values, ["[redacted]"]);
    assert.ok(r.hostname.length > 0);
    assert.match(r.databaseVersion, /PostgreSQL/);
    assert.ok(!JSON.stringify(r).includes(ts.superToken));
  });

  test("claims are returned only with pii", async () => {
    const kim = await user("kim", { email: "kim@x.org", email_verified: true });
    const noPii = await ts.client(Tokens, kim.token).issue({
      template: create(SessionSchema, {
        capabilities: { read: true, delegate: true },
        scope: { kind: { case: "onPrincipal", value: kim.id } },
        expiresAt: inMinutes(5),
      }),
    });
    const withPii = await ts.client(Principals, kim.token).load({ kind: { case: "id", value: kim.id } });
    assert.match(withPii.claimsJson, /kim@x.org/);
    const without = await ts
      .client(Principals, noPii.token!.jwt)
      .load({ kind: { case: "id", value: kim.id } });
    assert.equal(without.claimsJson, "");
    assert.equal(without.email, "");
  });
});
