/**
 * The batch calls for many small files: Uploads.PutFiles and Files.ReadMany. Each file succeeds
 * or fails on its own; bad input fails the whole call and writes nothing; every path needs the
 * caller's grant.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { contentHash } from "@cacheroach/core";
import { Files, SessionSchema, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

const CHUNK = 64 * 1024;
let ts: TestServer;
let db: pg.Client;
let tenant: string;
let other: string;
let uploads: ReturnType<typeof ts.client<typeof Uploads>>;
let files: ReturnType<typeof ts.client<typeof Files>>;

async function count(table: string, tenantId = tenant): Promise<number> {
  const r = await db.query(`SELECT count(*)::INT8 AS n FROM ${table} WHERE tenant_id = $1`, [tenantId]);
  return Number(r.rows[0].n);
}

/** Row counts of every content table of the tenant, to show a refused call wrote nothing. */
async function snapshot(tenantId = tenant): Promise<number[]> {
  return Promise.all(
    ["chunks", "ropes", "rope_chunks", "file_versions", "files"].map((t) => count(t, tenantId)),
  );
}

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  uploads = ts.client(Uploads, ts.superToken);
  files = ts.client(Files, ts.superToken);
  const tenants = ts.client(Tenants, ts.superToken);
  tenant = (await tenants.ensure({ tenant: { label: "batch test" } })).tenant!.id;
  other = (await tenants.ensure({ tenant: { label: "batch other" } })).tenant!.id;
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("Uploads.PutFiles", () => {
  test("writes every file as a new version, multi-chunk and empty ones too, in request order", async () => {
    const contents = [randomBytes(10), Buffer.alloc(0), randomBytes(CHUNK * 2 + 5), randomBytes(CHUNK)];
    const res = await uploads.putFiles({
      tenantId: tenant,
      files: contents.map((c, i) => ({ path: `/w/f${i}`, contents: c, meta: { n: String(i) } })),
    });
    assert.equal(res.results.length, 4);
    res.results.forEach((r, i) => {
      assert.equal(r.result.case, "file");
      const f = r.result.value as {
        path: string;
        version: bigint;
        size: bigint;
        contentHash: Uint8Array;
        meta: Record<string, string>;
      };
      assert.equal(f.path, `/w/f${i}`);
      assert.equal(f.version, 1n);
      assert.equal(f.size, BigInt(contents[i]!.length));
      assert.deepEqual(Buffer.from(f.contentHash), contentHash(contents[i]!, CHUNK));
      assert.deepEqual(f.meta, { n: String(i) });
    });
    for (const [i, c] of contents.entries()) {
      const parts: Buffer[] = [];
      for await (const m of files.read({ tenantId: tenant, path: `/w/f${i}` }))
        parts.push(Buffer.from(m.data));
      assert.deepEqual(Buffer.concat(parts), c);
    }
    // A second batch makes version 2 and keeps created_at.
    const again = await uploads.putFiles({
      tenantId: tenant,
      files: [{ path: "/w/f0", contents: randomBytes(3) }],
    });
    const v2 = again.results[0]!.result;
    assert.equal(v2.case, "file");
    assert.equal(v2.value.version, 2n);
    const v1 = (await files.stat({ tenantId: tenant, path: "/w/f0", version: 1n })).file!;
    assert.deepEqual(v2.value.createdAt, v1.createdAt);
  });

  test("stores each distinct chunk once, also when files of the batch share content", async () => {
    const same = randomBytes(1000);
    const before = await count("chunks");
    const res = await uploads.putFiles({
      tenantId: tenant,
      files: [0, 1, 2].map((i) => ({ path: `/dedup/${i}`, contents: same })),
    });
    assert.ok(res.results.every((r) => r.result.case === "file"));
    assert.equal((await count("chunks")) - before, 1);
    // Another tenant stores its own copy.
    await ts
      .client(Uploads, ts.superToken)
      .putFiles({ tenantId: other, files: [{ path: "/x", contents: same }] });
    assert.equal(await count("chunks", other), 1);
  });

  test("a failed precondition or hash fails only that file", async () => {
    await uploads.putFiles({
      tenantId: tenant,
      files: [{ path: "/pre/exists", contents: Buffer.from("old") }],
    });
    const good = Buffer.from("fine");
    const res = await uploads.putFiles({
      tenantId: tenant,
      files: [
        {
          path: "/pre/exists",
          contents: Buffer.from("new"),
          precondition: { kind: { case: "mustNotExist", value: true } },
        },
        { path: "/pre/bad-hash", contents: Buffer.from("x"), expectedContentHash: Buffer.alloc(32, 7) },
        { path: "/pre/ok", contents: good, expectedContentHash: contentHash(good, CHUNK) },
        { path: "/pre/missing", contents: good, precondition: { kind: { case: "version", value: 3n } } },
      ],
    });
    const [exists, badHash, ok, missing] = res.results.map((r) => r.result);
    assert.equal(exists!.case, "error");
    assert.equal(exists!.value.code, "failed_precondition");
    assert.match(exists!.value.message, /\/pre\/exists already exists/);
    assert.equal(badHash!.case, "error");
    assert.equal(badHash!.value.code, "data_loss");
    assert.match(badHash!.value.message, /\/pre\/bad-hash/);
    assert.equal(ok!.case, "file");
    assert.equal(missing!.case, "error");
    assert.equal(missing!.value.code, "failed_precondition");
    // The failed ones wrote no version.
    assert.equal((await files.stat({ tenantId: tenant, path: "/pre/exists" })).file!.version, 1n);
    await rejects(files.stat({ tenantId: tenant, path: "/pre/bad-hash" }), Code.NotFound, /no file/);
    await rejects(files.stat({ tenantId: tenant, path: "/pre/missing" }), Code.NotFound, /no file/);
    // A batch in which every file fails early still answers file by file.
    const none = await uploads.putFiles({
      tenantId: tenant,
      files: ["/pre/exists", "/pre/ok"].map((path) => ({
        path,
        contents: Buffer.from("z"),
        precondition: { kind: { case: "mustNotExist" as const, value: true } },
      })),
    });
    assert.deepEqual(
      none.results.map((r) => r.result.case === "error" && r.result.value.code),
      ["failed_precondition", "failed_precondition"],
    );
  });

  test("bad input fails the whole call and writes nothing", async () => {
    const snap = await snapshot();
    const ok = { path: "/bad/ok", contents: Buffer.from("a") };
    await rejects(
      uploads.putFiles({ tenantId: tenant, files: [ok, { path: "/bad/../x", contents: Buffer.from("b") }] }),
      Code.InvalidArgument,
      /path/,
    );
    await rejects(
      uploads.putFiles({ tenantId: tenant, files: [ok, { ...ok, contents: Buffer.from("c") }] }),
      Code.InvalidArgument,
      /appears twice/,
    );
    await rejects(uploads.putFiles({ tenantId: tenant, files: [] }), Code.InvalidArgument, /1\.\.1000/);
    await rejects(
      uploads.putFiles({
        tenantId: tenant,
        files: Array.from({ length: 1001 }, (_, i) => ({ path: `/many/${i}`, contents: Buffer.from("x") })),
      }),
      Code.InvalidArgument,
      /1\.\.1000/,
    );
    await rejects(
      uploads.putFiles({
        tenantId: tenant,
        files: [ok, { path: "/bad/h", contents: Buffer.from("x"), expectedContentHash: Buffer.alloc(5) }],
      }),
      Code.InvalidArgument,
      /32 bytes/,
    );
    await rejects(
      uploads.putFiles({
        tenantId: tenant,
        files: [ok, { path: "/bad/m", contents: Buffer.from("x"), meta: { "": "v" } }],
      }),
      Code.InvalidArgument,
      /meta/,
    );
    // Over max_transfer_size in all (8 chunks by default).
    await rejects(
      uploads.putFiles({
        tenantId: tenant,
        files: Array.from({ length: 9 }, (_, i) => ({
          path: `/big/${i}`,
          contents: randomBytes(i === 8 ? 100 : CHUNK),
        })),
      }),
      Code.ResourceExhausted,
      /limit/,
    );
    await rejects(
      uploads.putFiles({ tenantId: "not-a-uuid", files: [ok] }),
      Code.InvalidArgument,
      /tenant_id/,
    );
    await rejects(
      uploads.putFiles({ tenantId: "00000000-0000-4000-8000-000000000001", files: [ok] }),
      Code.NotFound,
      /tenant/,
    );
    assert.deepEqual(await snapshot(), snap);
  });

  test("needs write on every path", async () => {
    const issued = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true, write: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/mine/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    const limited = ts.client(Uploads, issued.token!.jwt);
    const snap = await snapshot();
    await rejects(
      limited.putFiles({
        tenantId: tenant,
        files: [
          { path: "/mine/a", contents: Buffer.from("a") },
          { path: "/theirs/b", contents: Buffer.from("b") },
        ],
      }),
      Code.PermissionDenied,
      /lacks write on \/theirs\/b/,
    );
    assert.deepEqual(await snapshot(), snap);
    const ok = await limited.putFiles({
      tenantId: tenant,
      files: [
        { path: "/mine/a", contents: Buffer.from("a") },
        { path: "/mine/sub/b", contents: Buffer.from("b") },
      ],
    });
    assert.ok(ok.results.every((r) => r.result.case === "file"));
    await rejects(
      ts
        .client(Uploads)
        .putFiles({ tenantId: tenant, files: [{ path: "/mine/c", contents: Buffer.from("c") }] }),
      Code.Unauthenticated,
      /not logged in/,
    );
  });

  test("concurrent batches over the same paths each make their own versions", async () => {
    const paths = ["/race/a", "/race/b", "/race/c"];
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        uploads.putFiles({
          tenantId: tenant,
          files: (k % 2 ? [...paths].reverse() : paths).map((p) => ({
            path: p,
            contents: Buffer.from(`${k}`),
          })),
        }),
      ),
    );
    for (const r of results) assert.ok(r.results.every((x) => x.result.case === "file"));
    for (const p of paths) {
      const head = (await files.stat({ tenantId: tenant, path: p })).file!;
      assert.equal(head.version, 6n, `${p} has one version per batch`);
    }
  });
});

describe("Files.ReadMany", () => {
  const small = [randomBytes(100), Buffer.alloc(0), randomBytes(CHUNK + 1)];
  before(async () => {
    await uploads.putFiles({
      tenantId: tenant,
      files: small.map((c, i) => ({ path: `/r/f${i}`, contents: c })),
    });
  });

  test("returns metadata and whole contents in request order, with per-path errors", async () => {
    await files.delete({ tenantId: tenant, path: "/w/f3" });
    const res = await files.readMany({
      tenantId: tenant,
      paths: ["/r/f2", "/r/nope", "/r/f0", "/r/f1", "/w/f3", "/r/f0"],
    });
    const [f2, nope, f0, f1, deleted, f0again] = res.results;
    assert.equal(f2!.file!.path, "/r/f2");
    assert.ok(f2!.contentsIncluded);
    assert.deepEqual(Buffer.from(f2!.contents), small[2]);
    assert.equal(nope!.error!.code, "not_found");
    assert.match(nope!.error!.message, /\/r\/nope/);
    assert.equal(nope!.file, undefined);
    assert.deepEqual(Buffer.from(f0!.contents), small[0]);
    assert.ok(f1!.contentsIncluded);
    assert.equal(f1!.contents.length, 0);
    assert.equal(deleted!.error!.code, "not_found");
    assert.deepEqual(Buffer.from(f0again!.contents), small[0]);
  });

  test("leaves out contents above max_size, keeping the metadata", async () => {
    const res = await files.readMany({ tenantId: tenant, paths: ["/r/f0", "/r/f2"], maxSize: 1000n });
    assert.ok(res.results[0]!.contentsIncluded);
    assert.equal(res.results[1]!.contentsIncluded, false);
    assert.equal(res.results[1]!.contents.length, 0);
    assert.equal(res.results[1]!.file!.size, BigInt(CHUNK + 1));
  });

  test("never crosses tenants", async () => {
    const res = await files.readMany({ tenantId: other, paths: ["/r/f0"] });
    assert.equal(res.results[0]!.error!.code, "not_found");
  });

  test("bad input fails the whole call; every path needs read", async () => {
    await rejects(files.readMany({ tenantId: tenant, paths: [] }), Code.InvalidArgument, /1\.\.1000/);
    await rejects(
      files.readMany({ tenantId: tenant, paths: ["/r/f0", "r/rel"] }),
      Code.InvalidArgument,
      /path/,
    );
    await rejects(
      files.readMany({ tenantId: tenant, paths: ["/r/f0"], maxSize: -1n }),
      Code.InvalidArgument,
      /max_size/,
    );
    await rejects(
      files.readMany({ tenantId: tenant, paths: ["/r/f0"], maxSize: 1n << 40n }),
      Code.InvalidArgument,
      /max_size/,
    );
    const issued = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/r/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    const limited = ts.client(Files, issued.token!.jwt);
    assert.equal((await limited.readMany({ tenantId: tenant, paths: ["/r/f0"] })).results.length, 1);
    await rejects(
      limited.readMany({ tenantId: tenant, paths: ["/r/f0", "/w/f0"] }),
      Code.PermissionDenied,
      /lacks read on \/w\/f0/,
    );
  });
});
