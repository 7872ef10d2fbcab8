/**
 * Knowing a content hash is not read access (docs/security.md, guarantee 4): linking content by hash needs read on a
 * live file that holds it (anything else is answered exactly as for content the tenant does not
 * store); listings return only entries the caller may read; and failed preconditions reveal no
 * version, ETag or hash to a caller without read on the path.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Files, Principals, SessionSchema, Tenants, Tokens, Uploads, VHosts } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

let ts: TestServer;
let sql: pg.Client;
let tenant: string;
const inMinutes = (m: number) => timestampFromDate(new Date(Date.now() + m * 60_000));

/** A principal and its login session (on_principal(self), all capabilities). */
async function user(name: string): Promise<{ id: string; token: string }> {
  const p = await ts.client(Principals, ts.superToken).ensure({
    principal: { claimsJson: JSON.stringify({ name }) },
  });
  const id = p.principal!.id;
  const login = await ts.client(Tokens, ts.superToken).issue({
    template: create(SessionSchema, {
      principalId: id,
      capabilities: { read: true, write: true, delegate: true },
      scope: { kind: { case: "onPrincipal", value: id } },
      expiresAt: inMinutes(30),
      name: "<self>",
    }),
  });
  return { id, token: login.token!.jwt };
}

/** Root grants `caps` on `path` (exact or "/dir/*") in the test tenant. */
async function grant(principalId: string, caps: object, path: string) {
  await ts.client(Tokens, ts.superToken).issue({
    template: create(SessionSchema, {
      principalId,
      capabilities: caps,
      scope: { kind: { case: "onLocation", value: { tenantId: tenant, path } } },
      expiresAt: inMinutes(20),
    }),
  });
}

/** A user holding exactly the given grants. */
async function userWith(name: string, grants: [object, string][]) {
  const u = await user(name);
  for (const [caps, path] of grants) await grant(u.id, caps, path);
  return u;
}

const R = { read: true };
const W = { write: true };
const RW = { read: true, write: true };

async function write(path: string, contents: Buffer | string) {
  return (
    await ts.client(Uploads, ts.superToken).begin({
      tenantId: tenant,
      path,
      committed: { case: "contents", value: Buffer.from(contents) },
    })
  ).file!;
}

async function rowCounts() {
  const r = await sql.query(
    "SELECT (SELECT count(*) FROM file_versions) AS v, (SELECT count(*) FROM chunks) AS c, (SELECT count(*) FROM ropes) AS r, (SELECT count(*) FROM uploads) AS u",
  );
  return r.rows[0];
}

before(async () => {
  ts = await startTestServer({ sessionCacheMs: 200 });
  sql = new pg.Client({ connectionString: ts.databaseUrl });
  await sql.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "visibility" } })).tenant!.id;
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
});
after(async () => {
  await sql?.end();
  await ts?.close();
});

describe("listings return only what the caller may read", () => {
  const all = ["/a", "/a/b", "/a/c/d", "/pub", "/pub/x", "/pub/y/z", "/pubx", "/q/r", "/secret"];
  before(async () => {
    for (const p of all) await write(p, `content of ${p}`);
  });

  async function list(token: string, path: string, pageSize = 0): Promise<string[]> {
    const out: string[] = [];
    let cursor = "";
    do {
      const page = await ts.client(Files, token).list({ tenantId: tenant, path, cursor, pageSize });
      out.push(...page.files.map((f) => f.path));
      cursor = page.nextCursor;
    } while (cursor !== "");
    return out;
  }

  test("a /pub/* grant lists what is below /pub/, never /pub itself, at every prefix shape", async () => {
    const u = await userWith("lister", [[R, "/pub/*"]]);
    for (const prefix of ["/pub", "/pub/"]) {
      assert.deepEqual(await list(u.token, prefix), ["/pub/x", "/pub/y/z"], prefix);
      assert.deepEqual(await list(u.token, prefix, 1), ["/pub/x", "/pub/y/z"], `${prefix} by pages of 1`);
    }
    assert.deepEqual(await list(u.token, "/pub/y"), ["/pub/y/z"]);
    assert.deepEqual(await list(u.token, "/pub/x"), ["/pub/x"], "a file below the grant lists itself");
    for (const prefix of ["/", "", "/pubx", "/a"]) {
      await rejects(list(u.token, prefix), Code.PermissionDenied, /lacks read/);
    }
    // Its content hash and metadata are not readable either.
    await rejects(
      ts.client(Files, u.token).stat({ tenantId: tenant, path: "/pub" }),
      Code.PermissionDenied,
      /lacks read/,
    );
    // With read on /pub as well, /pub lists itself.
    const v = await userWith("lister-and-file", [
      [R, "/pub/*"],
      [R, "/pub"],
    ]);
    assert.deepEqual(await list(v.token, "/pub"), ["/pub", "/pub/x", "/pub/y/z"]);
    assert.deepEqual(await list(v.token, "/pub/", 1), ["/pub", "/pub/x", "/pub/y/z"]);
  });

  test("a /a/* grant lists /a without /a itself; an exact grant lists nothing; /* lists all", async () => {
    const u = await userWith("a-dir", [[R, "/a/*"]]);
    assert.deepEqual(await list(u.token, "/a"), ["/a/b", "/a/c/d"]);
    assert.deepEqual(await list(u.token, "/a/c/"), ["/a/c/d"]);
    await rejects(list(u.token, "/"), Code.PermissionDenied, /lacks read on \/\*/);
    // An exact grant reads its file but lists nothing: a listing needs the directory.
    const exact = await userWith("exact", [[R, "/a/b"]]);
    for (const prefix of ["/a/b", "/a", "/"]) {
      await rejects(list(exact.token, prefix), Code.PermissionDenied, /lacks read/);
    }
    assert.equal(
      (await ts.client(Files, exact.token).stat({ tenantId: tenant, path: "/a/b" })).file!.path,
      "/a/b",
    );
    // A /* grant covers every path, so each prefix lists itself too.
    const everything = await userWith("everything", [[R, "/*"]]);
    assert.deepEqual(await list(everything.token, "/"), all);
    assert.deepEqual(await list(everything.token, ""), all);
    assert.deepEqual(await list(everything.token, "/a"), ["/a", "/a/b", "/a/c/d"]);
    assert.deepEqual(await list(ts.superToken, "/pub"), ["/pub", "/pub/x", "/pub/y/z"]);
  });

  test("HTTP: the directory page lists only children; no redirect reveals what is below an unreadable directory", async () => {
    const u = await userWith("web", [
      [R, "/pub/*"],
      [R, "/q"],
    ]);
    const get = (path: string) =>
      fetch(`${ts.url}${path}`, { headers: { authorization: `Bearer ${u.token}` }, redirect: "manual" });
    const page = await get("/pub/");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /href="\.\/x"/);
    assert.match(html, /href="\.\/y\/"/);
    assert.doesNotMatch(html, /content of/);
    // /q is not a file, but /q/r exists: only a caller who may read /q/* learns that.
    const q = await get("/q");
    assert.equal(q.status, 404, await q.text());
    const root = await ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/q/r" });
    assert.ok(root.file);
    const redirect = await fetch(`${ts.url}/q`, {
      headers: { authorization: `Bearer ${ts.superToken}` },
      redirect: "manual",
    });
    assert.equal(redirect.status, 301);
    assert.equal((await get("/")).status, 403);
    // An empty "/lonely/" redirects to the file "/lonely" only for a caller who may read that
    // file; a "/lonely/*" grant gets the same 404 as for a name that does not exist.
    await write("/lonely", "a file, not a directory");
    const dirOnly = await userWith("dir-only", [
      [R, "/lonely/*"],
      [R, "/nothing/*"],
    ]);
    const both = await userWith("both", [
      [R, "/lonely/*"],
      [R, "/lonely"],
    ]);
    const as = (token: string, path: string) =>
      fetch(`${ts.url}${path}`, { headers: { authorization: `Bearer ${token}` }, redirect: "manual" });
    const hidden = await as(dirOnly.token, "/lonely/");
    const absent = await as(dirOnly.token, "/nothing/");
    assert.equal(hidden.status, 404);
    assert.equal(absent.status, 404);
    assert.equal((await hidden.text()).replace("lonely", "X"), (await absent.text()).replace("nothing", "X"));
    assert.equal((await as(both.token, "/lonely/")).status, 301);
  });
});

describe("linking content by its hash needs read on a live file that holds it", () => {
  let secret: Buffer;
  let shared: Buffer;
  let readable: Buffer;
  before(async () => {
    secret = Buffer.from(
      (await write("/vault/secret.txt", `secret ${randomBytes(8).toString("hex")}`)).contentHash,
    );
    const sharedText = `shared ${randomBytes(8).toString("hex")}`;
    shared = Buffer.from((await write("/vault/shared.txt", sharedText)).contentHash);
    await write("/open/shared-copy.txt", sharedText);
    readable = Buffer.from(
      (await write("/open/readable.txt", `open ${randomBytes(8).toString("hex")}`)).contentHash,
    );
  });

  const link = (token: string, path: string, hash: Buffer) =>
    ts
      .client(Uploads, token)
      .begin({ tenantId: tenant, path, committed: { case: "contentHash", value: hash } });

  /** The refusal, with the hash masked, so "exists but unreadable" can be compared with "absent". */
  async function refusal(p: Promise<unknown>, hash: Buffer): Promise<string> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, Code.NotFound, err.rawMessage);
      return err.rawMessage.replaceAll(hash.toString("hex"), "<hash>");
    }
    assert.fail("linking was not refused");
  }

  test("write without read: existing content is answered exactly as absent content, and nothing is written", async () => {
    const w = await userWith("writer", [[W, "/drop/*"]]);
    const before = await rowCounts();
    const absent = randomBytes(32);
    const unknown = await refusal(link(w.token, "/drop/a", absent), absent);
    assert.match(unknown, /no file this session may read holds content <hash>; upload the bytes instead/);
    for (const h of [secret, shared, readable]) {
      assert.equal(await refusal(link(w.token, "/drop/a", h), h), unknown);
    }
    assert.deepEqual(await rowCounts(), before);
    await rejects(
      ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/drop/a" }),
      Code.NotFound,
      /no file/,
    );
  });

  test("read on some file that holds the content is enough, also another path than the one written", async () => {
    const u = await userWith("reader-writer", [
      [R, "/open/*"],
      [W, "/drop/*"],
    ]);
    const before = await rowCounts();
    assert.equal(
      await refusal(link(u.token, "/drop/b", secret), secret),
      await refusal(link(u.token, "/drop/b", randomBytes(32).fill(1)), randomBytes(32).fill(1)),
    );
    assert.deepEqual(await rowCounts(), before);
    const a = await link(u.token, "/drop/b", readable);
    assert.deepEqual(Buffer.from(a.file!.contentHash), readable);
    // /vault/shared.txt is unreadable, /open/shared-copy.txt holds the same content and is readable.
    const b = await link(u.token, "/drop/c", shared);
    assert.deepEqual(Buffer.from(b.file!.contentHash), shared);
  });

  test("an exact-path read grant counts; a grant on a neighbouring path does not", async () => {
    const u = await userWith("exact-reader", [
      [R, "/vault/secret.txt"],
      [R, "/vault/secret.txt2"],
      [W, "/drop/*"],
    ]);
    assert.ok((await link(u.token, "/drop/d", secret)).file);
    const v = await userWith("neighbour", [
      [R, "/vault/secret.tx"],
      [R, "/vault/secret.txt/*"],
      [W, "/drop/*"],
    ]);
    await refusal(link(v.token, "/drop/e", secret), secret);
  });

  test("a location-scoped session (a delegated token) is limited to its own scope", async () => {
    const owner = await userWith("delegator", [[{ read: true, write: true, delegate: true }, "/*"]]);
    const issued = await ts.client(Tokens, owner.token).issue({
      template: create(SessionSchema, {
        principalId: owner.id,
        capabilities: RW,
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/drop/*" } } },
        expiresAt: inMinutes(5),
      }),
    });
    const scoped = issued.token!.jwt;
    const elsewhere = Buffer.from(
      (await write("/open/elsewhere.txt", `only here ${randomBytes(8).toString("hex")}`)).contentHash,
    );
    await refusal(link(scoped, "/drop/f", elsewhere), elsewhere);
    const own = Buffer.from((await write("/drop/own.txt", "mine")).contentHash);
    assert.ok((await link(scoped, "/drop/f", own)).file);
  });

  test("content whose only readable holder was deleted can no longer be linked", async () => {
    const u = await userWith("late-reader", [
      [R, "/gone/*"],
      [W, "/drop/*"],
    ]);
    const h = Buffer.from(
      (await write("/gone/only.txt", `gone ${randomBytes(8).toString("hex")}`)).contentHash,
    );
    assert.ok((await link(u.token, "/drop/g", h)).file);
    await ts.client(Files, ts.superToken).delete({ tenantId: tenant, path: "/gone/only.txt" });
    const absent = randomBytes(32);
    assert.equal(
      await refusal(link(u.token, "/drop/h", h), h),
      await refusal(link(u.token, "/drop/h", absent), absent),
    );
  });
});

describe("failed preconditions reveal nothing to a caller without read", () => {
  let head: { version: bigint; hash: Buffer };
  const path = "/guarded/f.txt";
  /** What a failure message must not contain for a caller without read. */
  const assertReveals = (message: string, reveals: boolean, what: string) => {
    const hex = head.hash.toString("hex");
    const leaks = [/version\s*\d/i, new RegExp(hex.slice(0, 16)), /etag/i, /[0-9a-f]{16}/];
    if (reveals)
      assert.ok(
        leaks.some((l) => l.test(message)),
        `${what}: expected details in ${JSON.stringify(message)}`,
      );
    else for (const l of leaks) assert.doesNotMatch(message, l, `${what}: ${message}`);
  };
  before(async () => {
    await write(path, "one");
    const f = await write(path, "two");
    head = { version: f.version, hash: Buffer.from(f.contentHash) };
  });

  async function failed(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, Code.FailedPrecondition, err.rawMessage);
      return err.rawMessage;
    }
    assert.fail("the precondition did not fail");
  }

  test("RPC: Begin, Commit, PutFiles, Delete say what the path holds only to a reader", async () => {
    for (const reads of [false, true]) {
      const u = await userWith(`rpc-${reads}`, reads ? [[RW, "/guarded/*"]] : [[W, "/guarded/*"]]);
      const uploads = ts.client(Uploads, u.token);
      const before = await rowCounts();
      const wrongHash = randomBytes(32).fill(7);
      const preconditions = [
        { kind: { case: "mustNotExist" as const, value: true } },
        { kind: { case: "version" as const, value: 99n } },
        { kind: { case: "contentHash" as const, value: wrongHash } },
      ];
      for (const precondition of preconditions) {
        const what = precondition.kind.case;
        assertReveals(
          await failed(uploads.begin({ tenantId: tenant, path, precondition })),
          reads,
          `begin ${what}`,
        );
        assertReveals(
          await failed(
            uploads.begin({
              tenantId: tenant,
              path,
              precondition,
              committed: { case: "contents", value: Buffer.from("x") },
            }),
          ),
          reads,
          `one-shot ${what}`,
        );
        const put = await uploads.putFiles({
          tenantId: tenant,
          files: [{ path, contents: Buffer.from("x"), precondition }],
        });
        assert.equal(put.results[0]!.result.case, "error");
        const item = put.results[0]!.result.value as { code: string; message: string };
        assert.equal(item.code, "failed_precondition");
        assertReveals(item.message, reads, `putFiles ${what}`);
        if (what !== "mustNotExist") {
          assertReveals(
            await failed(ts.client(Files, u.token).delete({ tenantId: tenant, path, precondition })),
            reads,
            `delete ${what}`,
          );
        }
      }
      // At commit: the upload began unconditionally, the precondition comes with the commit.
      const b = await uploads.begin({ tenantId: tenant, path });
      const t = await uploads.transfer({ state: b.state, data: Buffer.from("three") });
      assertReveals(
        await failed(uploads.commit({ state: t.state, precondition: preconditions[1] })),
        reads,
        "commit version",
      );
      const after = await rowCounts();
      assert.equal(after.v, before.v, "no version written");
      const now = (await ts.client(Files, ts.superToken).stat({ tenantId: tenant, path })).file!;
      assert.equal(now.version, head.version);
    }
  });

  test("HTTP: a 412 for PUT and DELETE names the version and ETag only to a reader", async () => {
    for (const reads of [false, true]) {
      const u = await userWith(`http-${reads}`, reads ? [[RW, "/guarded/*"]] : [[W, "/guarded/*"]]);
      const before = await rowCounts();
      const cases: [string, Record<string, string>][] = [
        ["PUT", { "if-match": '"0000"' }],
        ["PUT", { "if-none-match": "*" }],
        ["PUT", { "if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT" }],
        ["DELETE", { "if-match": `"${randomBytes(32).toString("hex")}"` }],
      ];
      for (const [method, headers] of cases) {
        const r = await fetch(`${ts.url}${path}`, {
          method,
          body: method === "PUT" ? "new" : undefined,
          headers: { authorization: `Bearer ${u.token}`, ...headers },
        });
        const text = await r.text();
        assert.equal(r.status, 412, `${method} ${JSON.stringify(headers)}: ${text}`);
        assert.equal(r.headers.get("etag"), null);
        assertReveals(text, reads, `${method} ${JSON.stringify(headers)} ${reads ? "with" : "without"} read`);
      }
      assert.deepEqual(await rowCounts(), before);
    }
  });
});
