/**
 * Quotas and accounting: exact physical usage per tenant (tenant_usage), logical usage and the
 * dedup ratio through Tenants.Get/List, per-tenant policy through Tenants.Ensure, and the quota
 * and open-upload limits refusing cleanly (resource_exhausted / HTTP 507, nothing written).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chunkHash, contentHash } from "@cacheroach/core";
import { Files, Principals, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { Db } from "../src/db/db.js";
import { ERROR_CODE_HEADER } from "../src/errors.js";
import { ChunkStore } from "../src/store/chunk-store.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

const CHUNK = 64 * 1024;
const DEFAULT_QUOTA = 4 * 1024 * 1024;
let ts: TestServer;
let db: pg.Client;
let uploads: ReturnType<typeof ts.client<typeof Uploads>>;
let files: ReturnType<typeof ts.client<typeof Files>>;
let tenants: ReturnType<typeof ts.client<typeof Tenants>>;

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK, defaultQuotaBytes: DEFAULT_QUOTA, maxOpenUploads: 50 });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  uploads = ts.client(Uploads, ts.superToken);
  files = ts.client(Files, ts.superToken);
  tenants = ts.client(Tenants, ts.superToken);
});
after(async () => {
  await db?.end();
  await ts?.close();
});

async function newTenant(label: string, policy?: Record<string, bigint>): Promise<string> {
  return (await tenants.ensure({ tenant: { label, version: 0n, policy } })).tenant!.id;
}

/** What tenant_usage says, and what the chunks table really holds. */
async function usage(tenantId: string) {
  const u = await db.query(
    "SELECT coalesce(sum(chunks), 0)::INT8 AS c, coalesce(sum(bytes), 0)::INT8 AS b FROM tenant_usage WHERE tenant_id = $1",
    [tenantId],
  );
  const real = await db.query(
    "SELECT count(*)::INT8 AS c, coalesce(sum(length(data)), 0)::INT8 AS b FROM chunks WHERE tenant_id = $1",
    [tenantId],
  );
  return {
    recorded: { chunks: Number(u.rows[0].c), bytes: Number(u.rows[0].b) },
    real: { chunks: Number(real.rows[0].c), bytes: Number(real.rows[0].b) },
  };
}

async function exact(tenantId: string): Promise<{ chunks: number; bytes: number }> {
  const u = await usage(tenantId);
  assert.deepEqual(u.recorded, u.real, "tenant_usage matches the chunks stored");
  return u.real;
}

async function fileCount(tenantId: string): Promise<number> {
  const r = await db.query("SELECT count(*)::INT8 AS n FROM file_versions WHERE tenant_id = $1", [tenantId]);
  return Number(r.rows[0].n);
}

async function put(tenantId: string, path: string, data: Buffer) {
  const b = await uploads.begin({ tenantId, path });
  let state = b.state;
  for (let off = 0; off < data.length; off += b.maxTransferSize) {
    state = (await uploads.transfer({ state, data: data.subarray(off, off + b.maxTransferSize) })).state;
  }
  return (await uploads.commit({ state })).file!;
}

/** A token of the root principal (the super token's) for tenant `t`: plain HTTP writes there. */
async function tenantToken(t: string): Promise<string> {
  const issued = await ts.client(Tokens, ts.superToken).issue({
    template: {
      principalId: ts.rootPrincipalId,
      capabilities: { read: true, write: true },
      scope: { kind: { case: "onLocation", value: { tenantId: t, path: "/*" } } },
    },
  });
  return issued.token!.jwt;
}

/** The stable code of a failed RPC, checked to be resource_exhausted. */
async function exhausted(p: Promise<unknown>, pattern: RegExp): Promise<string | null> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(err.code, Code.ResourceExhausted, err.rawMessage);
    assert.match(err.rawMessage, pattern);
    return err.metadata.get(ERROR_CODE_HEADER);
  }
  throw new Error("expected the call to fail");
}

describe("accounting", () => {
  test("physical usage is exact after uploads of every kind, dedup, and in two tenants", async () => {
    const a = await newTenant("acct a");
    const b = await newTenant("acct b");
    assert.deepEqual(await exact(a), { chunks: 0, bytes: 0 });
    const big = randomBytes(10 * CHUNK + 123); // two transfers
    await put(a, "/big", big);
    assert.deepEqual(await exact(a), { chunks: 11, bytes: big.length });
    // Dedup: the same content again, as a transfer and one-shot, stores nothing.
    await put(a, "/big-again", big);
    const small = randomBytes(1000);
    await uploads.begin({ tenantId: a, path: "/s1", committed: { case: "contents", value: small } });
    await uploads.begin({ tenantId: a, path: "/s2", committed: { case: "contents", value: small } });
    assert.deepEqual(await exact(a), { chunks: 12, bytes: big.length + 1000 });
    // A batch whose files share content; and chunks sent by PutChunks (one new, one known).
    const shared = randomBytes(500);
    await uploads.putFiles({
      tenantId: a,
      files: [
        { path: "/batch/1", contents: shared },
        { path: "/batch/2", contents: shared },
        { path: "/batch/3", contents: randomBytes(700) },
      ],
    });
    const st = (await uploads.begin({ tenantId: a, path: "/pc" })).state;
    const fresh = randomBytes(CHUNK);
    const r = await uploads.putChunks({
      state: st,
      chunks: [
        { hash: chunkHash(fresh), data: fresh },
        { hash: chunkHash(big.subarray(0, CHUNK)), data: big.subarray(0, CHUNK) },
      ],
    });
    assert.equal(r.stored, 1);
    assert.deepEqual(await exact(a), { chunks: 15, bytes: big.length + 1000 + 500 + 700 + CHUNK });
    // The other tenant stores its own copy, counted apart.
    await put(b, "/big", big);
    assert.deepEqual(await exact(b), { chunks: 11, bytes: big.length });
    assert.deepEqual(await exact(a), { chunks: 15, bytes: big.length + 1000 + 500 + 700 + CHUNK });
    // Concurrent writers of one tenant spread over shards and still add up.
    await Promise.all(Array.from({ length: 12 }, (_, i) => put(b, `/c/${i}`, randomBytes(CHUNK + i))));
    // (The first holds one chunk, the others two.)
    assert.deepEqual(await exact(b), {
      chunks: 11 + 1 + 11 * 2,
      bytes: big.length + Array.from({ length: 12 }, (_, i) => CHUNK + i).reduce((x, y) => x + y),
    });
  });

  test("re-storing a chunk garbage collection condemned un-condemns it and is not counted again", async () => {
    const t = await newTenant("condemned");
    const st = (await uploads.begin({ tenantId: t, path: "/x" })).state;
    const big = randomBytes(CHUNK);
    const small = [randomBytes(100), randomBytes(200)];
    const send = async () => {
      await uploads.putChunks({ state: st, chunks: [{ hash: chunkHash(big), data: big }] });
      await uploads.putChunks({ state: st, chunks: small.map((data) => ({ hash: chunkHash(data), data })) });
    };
    await send();
    const stored = await exact(t);
    assert.deepEqual(stored, { chunks: 3, bytes: CHUNK + 300 });
    await db.query("UPDATE chunks SET condemned_at = now() WHERE tenant_id = $1", [t]);
    await send(); // the lone chunk and the batch both meet condemned rows
    const marks = await db.query(
      "SELECT count(*)::INT8 AS n FROM chunks WHERE tenant_id = $1 AND condemned_at IS NOT NULL",
      [t],
    );
    assert.equal(Number(marks.rows[0].n), 0, "un-condemned");
    assert.deepEqual(await exact(t), stored, "counted once");
  });

  for (const name of ["postgres", "cockroach"] as const) {
    test(`ChunkStore counts exactly with its ${name} statements (run on PostgreSQL)`, async () => {
      const t = await newTenant(`dialect ${name}`);
      const sql = new Db({
        url: ts.databaseUrl,
        maxConnections: 2,
        dialect: { name, asyncBulkCommit: false, binaryCopyReads: false },
      });
      try {
        const store = new ChunkStore(sql, { cacheBytes: 0, writeConcurrency: 2 });
        const data = [randomBytes(CHUNK), randomBytes(10), randomBytes(20), randomBytes(30)];
        const writes = data.map((d) => ({ hash: chunkHash(d), data: d }));
        assert.equal(await store.put(t, writes.slice(0, 2)), 2);
        await db.query("UPDATE chunks SET condemned_at = now() WHERE tenant_id = $1", [t]);
        assert.equal(await store.put(t, writes), 2, "two new; two un-condemned, not new");
        assert.equal(await store.put(t, [...writes, writes[1]!]), 0);
        assert.deepEqual(await exact(t), { chunks: 4, bytes: CHUNK + 60 });
        assert.equal(store.counters.bytesWritten, CHUNK + 60);
      } finally {
        await sql.close();
      }
    });
  }

  test("Get and List report logical and physical usage and the dedup ratio when asked", async () => {
    const t = await newTenant("usage report");
    const data = randomBytes(3 * CHUNK);
    await put(t, "/one", data);
    await put(t, "/two", data);
    await put(t, "/three", data);
    await put(t, "/gone", randomBytes(100));
    await files.delete({ tenantId: t, path: "/gone" });
    const plain = (await tenants.get({ id: t })).tenant!;
    assert.equal(plain.usage, undefined, "no usage unless asked");
    const u = (await tenants.get({ id: t, withUsage: true })).tenant!.usage!;
    assert.equal(u.files, 3n);
    assert.equal(u.logicalBytes, BigInt(3 * data.length));
    assert.equal(u.chunks, 4n);
    assert.equal(u.physicalBytes, BigInt(data.length + 100));
    assert.equal(u.dedupRatio, (3 * data.length) / (data.length + 100));
    const listed: { id: string; usage?: { physicalBytes: bigint } }[] = [];
    for await (const x of tenants.list({ withUsage: true })) listed.push(x);
    assert.equal(listed.find((x) => x.id === t)?.usage?.physicalBytes, BigInt(data.length + 100));
    for await (const x of tenants.list({})) assert.equal(x.usage, undefined);
    // An empty tenant: zeros, and a ratio of 0 rather than a division by zero.
    const e = (await tenants.get({ id: await newTenant("empty"), withUsage: true })).tenant!.usage!;
    assert.deepEqual([e.files, e.logicalBytes, e.physicalBytes, e.dedupRatio], [0n, 0n, 0n, 0]);
  });

  test("logical usage pages through more heads than one page holds", async () => {
    const t = await newTenant("many heads");
    await put(t, "/seed", Buffer.from("x"));
    // 10 050 heads written with SQL (all pointing at the seed's rope): more than one page.
    await db.query(
      `INSERT INTO files (tenant_id, path, version, rope_hash, size, chunk_size, ctime, mtime, dtime)
       SELECT $1, convert_to('/h/' || lpad(g::TEXT, 6, '0'), 'UTF8'), 1, f.rope_hash, 1, f.chunk_size, now(), now(),
         CASE WHEN g % 10 = 0 THEN now() END
       FROM generate_series(1, 10050) AS g, files f WHERE f.tenant_id = $1 AND f.path = convert_to('/seed', 'UTF8')`,
      [t],
    );
    const u = (await tenants.get({ id: t, withUsage: true })).tenant!.usage!;
    assert.equal(u.files, 1n + 10050n - 1005n);
    assert.equal(u.logicalBytes, 1n + 10050n - 1005n);
  });
});

describe("policy", () => {
  test("Ensure sets, keeps and clears a tenant's policy; answers show the policy in force", async () => {
    const t = await newTenant("policy", { quotaBytes: 10n << 30n, retainVersions: 5n });
    let got = (await tenants.get({ id: t })).tenant!;
    assert.equal(got.policy?.quotaBytes, 10n << 30n);
    assert.equal(got.policy?.retainVersions, 5n);
    assert.equal(got.policy?.retainSeconds, undefined, "unset: the server default");
    assert.equal(got.effectivePolicy?.retainSeconds, 7n * 86400n, "the default in force");
    assert.equal(got.effectivePolicy?.maxOpenUploads, 50n);
    // A label change without a policy leaves it as it is.
    got = (await tenants.ensure({ tenant: { id: t, label: "renamed", version: got.version } })).tenant!;
    assert.equal(got.policy?.quotaBytes, 10n << 30n);
    // A policy replaces the stored one whole.
    got = (
      await tenants.ensure({
        tenant: {
          id: t,
          label: "renamed",
          version: got.version,
          policy: { retainSeconds: 3600n, maxOpenUploads: 0n },
        },
      })
    ).tenant!;
    assert.equal(got.policy?.quotaBytes, undefined);
    assert.equal(got.effectivePolicy?.quotaBytes, BigInt(DEFAULT_QUOTA));
    assert.equal(got.policy?.retainSeconds, 3600n);
    assert.equal(got.policy?.maxOpenUploads, 0n, "0 is a value (unlimited), not the default");
    const row = await db.query(
      "SELECT retain_versions, retain_seconds, quota_bytes, max_open_uploads FROM tenants WHERE id = $1",
      [t],
    );
    assert.deepEqual(row.rows[0], {
      retain_versions: null,
      retain_seconds: "3600",
      quota_bytes: null,
      max_open_uploads: "0",
    });
  });

  test("bad policies are refused and change nothing; only super may set one", async () => {
    const t = await newTenant("policy bad", { quotaBytes: 1000n });
    const v = (await tenants.get({ id: t })).tenant!.version;
    await rejects(
      tenants.ensure({ tenant: { id: t, label: "x", version: v, policy: { quotaBytes: -1n } } }),
      Code.InvalidArgument,
      /policy\.quota_bytes must be 0\.\.\d+ \(got -1\)/,
    );
    await rejects(
      tenants.ensure({ tenant: { id: t, label: "x", version: v, policy: { retainSeconds: -5n } } }),
      Code.InvalidArgument,
      /policy\.retain_seconds/,
    );
    await rejects(
      tenants.ensure({ tenant: { label: "x", version: 0n, policy: { maxOpenUploads: 1n << 62n } } }),
      Code.InvalidArgument,
      /policy\.max_open_uploads/,
    );
    const after = (await tenants.get({ id: t })).tenant!;
    assert.deepEqual([after.version, after.label, after.policy?.quotaBytes], [v, "policy bad", 1000n]);
    // An unknown tenant: nothing to update.
    await rejects(
      tenants.ensure({
        tenant: { id: "00000000-0000-4000-8000-00000000dead", label: "x", version: 1n, policy: {} },
      }),
      Code.Aborted,
      /is not at version 1/,
    );
    // A login that is not super.
    const p = await ts.client(Principals, ts.superToken).ensure({
      principal: { claimsJson: JSON.stringify({ name: "not super" }) },
    });
    const login = await ts.client(Tokens, ts.superToken).issue({
      template: {
        principalId: p.principal!.id,
        capabilities: { read: true, write: true },
        scope: { kind: { case: "onLocation", value: { tenantId: t, path: "/*" } } },
      },
    });
    await rejects(
      ts.client(Tenants, login.token!.jwt).ensure({
        tenant: { id: t, label: "policy bad", version: v, policy: { quotaBytes: 0n } },
      }),
      Code.PermissionDenied,
      /super/,
    );
    // It may read the tenant, with its usage.
    const seen = (await ts.client(Tenants, login.token!.jwt).get({ id: t, withUsage: true })).tenant!;
    assert.equal(seen.policy?.quotaBytes, 1000n);
    assert.equal((await tenants.get({ id: t })).tenant!.policy?.quotaBytes, 1000n);
  });
});

describe("quota", () => {
  test("a write over the quota is refused over RPC and writes nothing; dedup at the quota is allowed", async () => {
    const t = await newTenant("quota rpc", { quotaBytes: BigInt(3 * CHUNK) });
    const data = randomBytes(3 * CHUNK); // exactly the quota
    const f = await put(t, "/full", data);
    const full = await exact(t);
    assert.equal(full.bytes, 3 * CHUNK);
    const versions = await fileCount(t);
    const one = randomBytes(10);
    // Transfer.
    const st = (await uploads.begin({ tenantId: t, path: "/more" })).state;
    assert.equal(
      await exhausted(
        uploads.transfer({ state: st, data: one }),
        /over its quota: it stores 192\.0 KiB \(196608 bytes\) of its 192\.0 KiB \(196608 bytes\) quota, and this write needs 10 bytes more; nothing was written/,
      ),
      "ERR_QUOTA_EXCEEDED",
    );
    // One-shot Begin, PutFiles, PutChunks.
    assert.equal(
      await exhausted(
        uploads.begin({ tenantId: t, path: "/one", committed: { case: "contents", value: one } }),
        /quota/,
      ),
      "ERR_QUOTA_EXCEEDED",
    );
    assert.equal(
      await exhausted(uploads.putFiles({ tenantId: t, files: [{ path: "/b1", contents: one }] }), /quota/),
      "ERR_QUOTA_EXCEEDED",
    );
    assert.equal(
      await exhausted(
        uploads.putChunks({ state: st, chunks: [{ hash: chunkHash(one), data: one }] }),
        /quota/,
      ),
      "ERR_QUOTA_EXCEEDED",
    );
    assert.deepEqual(await exact(t), full, "nothing was stored");
    assert.equal(await fileCount(t), versions, "no version was written");
    // Content the tenant stores already: by transfer, one-shot, content hash, PutChunks.
    await put(t, "/copy", data);
    const small = data.subarray(0, CHUNK);
    await uploads.begin({ tenantId: t, path: "/copy-one", committed: { case: "contents", value: small } });
    await uploads.begin({
      tenantId: t,
      path: "/by-hash",
      committed: { case: "contentHash", value: f.contentHash },
    });
    assert.equal(
      (await uploads.putChunks({ state: st, chunks: [{ hash: chunkHash(small), data: small }] })).stored,
      0,
    );
    await uploads.begin({ tenantId: t, path: "/empty", committed: { case: "empty", value: true } });
    assert.deepEqual(await exact(t), full);
    assert.equal(await fileCount(t), versions + 4);
    assert.deepEqual(contentHash(data, CHUNK), Buffer.from(f.contentHash));
  });

  test("a write that fits is allowed; the one that would cross the quota is not", async () => {
    const t = await newTenant("quota edge", { quotaBytes: BigInt(2 * CHUNK + 10) });
    await put(t, "/a", randomBytes(2 * CHUNK));
    await uploads.begin({ tenantId: t, path: "/b", committed: { case: "contents", value: randomBytes(10) } });
    assert.equal((await exact(t)).bytes, 2 * CHUNK + 10, "exactly at the quota");
    await exhausted(
      uploads.begin({ tenantId: t, path: "/c", committed: { case: "contents", value: randomBytes(1) } }),
      /needs 1 bytes more/,
    );
    // The server's default applies to a tenant without a quota of its own; 0 lifts it.
    const d = await newTenant("quota default");
    await exhausted(put(d, "/huge", randomBytes(DEFAULT_QUOTA + 1)), /4\.0 MiB \(4194304 bytes\) quota/);
    const v = (await tenants.get({ id: d })).tenant!.version;
    await tenants.ensure({
      tenant: { id: d, label: "quota default", version: v, policy: { quotaBytes: 0n } },
    });
    await put(d, "/huge", randomBytes(DEFAULT_QUOTA + 1));
  });

  test("an HTTP PUT over the quota answers 507 and writes nothing", async () => {
    const t = await newTenant("quota http", { quotaBytes: 1000n });
    const token = await tenantToken(t);
    const putHttp = (path: string, body: Buffer) =>
      fetch(`${ts.url}${path}`, { method: "PUT", body, headers: { authorization: `Bearer ${token}` } });
    const ok = await putHttp("/fits", randomBytes(900));
    assert.equal(ok.status, 201, await ok.text());
    const full = await exact(t);
    const versions = await fileCount(t);
    for (const size of [200, 9 * CHUNK]) {
      const res = await putHttp("/over", randomBytes(size));
      assert.equal(res.status, 507);
      assert.equal(res.headers.get(ERROR_CODE_HEADER), "ERR_QUOTA_EXCEEDED");
      assert.match(await res.text(), /over its quota: it stores 900 bytes of its 1000 bytes quota/);
    }
    assert.deepEqual(await exact(t), full);
    assert.equal(await fileCount(t), versions);
  });
});

describe("open uploads", () => {
  test("Begin beyond the principal's limit of open uploads is refused until one is committed", async () => {
    const t = await newTenant("open uploads", { maxOpenUploads: 2n });
    const s1 = (await uploads.begin({ tenantId: t, path: "/u1" })).state;
    await uploads.begin({ tenantId: t, path: "/u2" });
    assert.equal(
      await exhausted(
        uploads.begin({ tenantId: t, path: "/u3" }),
        /has 2 open uploads in tenant .*, its limit; commit them or let them expire/,
      ),
      "ERR_TOO_MANY_UPLOADS",
    );
    // Writes that open no upload still work.
    await uploads.begin({
      tenantId: t,
      path: "/small",
      committed: { case: "contents", value: Buffer.from("x") },
    });
    // A streamed HTTP PUT opens one: 507.
    const res = await fetch(`${ts.url}/streamed`, {
      method: "PUT",
      body: randomBytes(9 * CHUNK),
      headers: { authorization: `Bearer ${await tenantToken(t)}` },
    });
    assert.equal(res.status, 507);
    assert.equal(res.headers.get(ERROR_CODE_HEADER), "ERR_TOO_MANY_UPLOADS");
    // Limits are per tenant: another tenant is not affected.
    await uploads.begin({ tenantId: await newTenant("open uploads 2"), path: "/u" });
    // Committing one frees a place.
    await uploads.commit({ state: (await uploads.transfer({ state: s1, data: Buffer.from("done") })).state });
    await uploads.begin({ tenantId: t, path: "/u3" });
    await exhausted(uploads.begin({ tenantId: t, path: "/u4" }), /its limit/);
  });
});

test("refusals are counted in cacheroach_quota_refusals_total", async () => {
  const body = await (await fetch(`${ts.url}/metrics`)).text();
  const value = (reason: string) =>
    Number(
      new RegExp(`^cacheroach_quota_refusals_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(body)?.[1],
    );
  assert.ok(value("quota") >= 8, body.match(/cacheroach_quota.*/g)?.join("\n"));
  assert.ok(value("open_uploads") >= 3);
});
