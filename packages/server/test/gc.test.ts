import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chunkHash } from "@cacheroach/core";
import { Files, GarbageCollection, type TenantCollection, Tenants, Uploads, VHosts } from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { startServer } from "../src/server.js";
import { startTestServer, type TestServer, testTransport } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

/**
 * Garbage collection (lifecycle/gc.ts): what goes, what stays, the dry run, retention edge cases,
 * uploads, deleted tenants, and the races with writers (PutChunks, streamed Transfer, HTTP PUT)
 * and with a second collecting server. The margin is shortened so races happen quickly.
 */

const CHUNK = 64 * 1024;
const MARGIN_MS = 300;
let ts: TestServer;
let db: pg.Client;

async function one(sql: string, params: unknown[] = []): Promise<number> {
  const r = await db.query(sql, params);
  return Number(Object.values(r.rows[0] ?? { n: 0 })[0] ?? 0);
}

async function newTenant(label: string): Promise<string> {
  return (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label } })).tenant!.id;
}

async function collect(
  req: { tenantId?: string; olderThanMs?: number; dryRun?: boolean } = {},
  server: TestServer | { url: string } = ts,
): Promise<TenantCollection[]> {
  const client = (await import("@connectrpc/connect")).createClient(
    GarbageCollection,
    testTransport(server.url, ts.superToken),
  );
  const out: TenantCollection[] = [];
  for await (const t of client.collect({
    tenantId: req.tenantId ?? "",
    dryRun: req.dryRun ?? false,
    ...(req.olderThanMs === undefined
      ? {}
      : { olderThan: { seconds: BigInt(Math.floor(req.olderThanMs / 1000)), nanos: 0 } }),
  }))
    out.push(t);
  return out;
}

function reportOf(reports: TenantCollection[], tenantId: string): TenantCollection {
  const r = reports.find((t) => t.tenantId === tenantId);
  assert.ok(r, `a report for tenant ${tenantId}`);
  assert.equal(r.error, "", `no error for ${tenantId}`);
  return r;
}

/** Streamed upload: Begin, Transfers, Commit. */
async function put(tenantId: string, path: string, data: Buffer, between?: () => Promise<unknown>) {
  const uploads = ts.client(Uploads, ts.superToken);
  const b = await uploads.begin({ tenantId, path });
  let state = b.state;
  for (let off = 0; off < data.length; off += b.maxTransferSize) {
    state = (await uploads.transfer({ state, data: data.subarray(off, off + b.maxTransferSize) })).state;
  }
  await between?.();
  return (await uploads.commit({ state })).file!;
}

async function read(tenantId: string, path: string, version = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of ts.client(Files, ts.superToken).read({ tenantId, path, version: BigInt(version) }))
    parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

async function remove(tenantId: string, path: string) {
  await ts.client(Files, ts.superToken).delete({ tenantId, path });
}

/** Physical bytes and chunks stored for a tenant, counted, and as tenant_usage says. */
async function usage(tenantId: string) {
  const stored = await db.query(
    "SELECT count(*)::INT8 AS n, COALESCE(sum(length(data)), 0)::INT8 AS b FROM chunks WHERE tenant_id = $1",
    [tenantId],
  );
  const kept = await db.query(
    "SELECT COALESCE(sum(chunks), 0)::INT8 AS n, COALESCE(sum(bytes), 0)::INT8 AS b FROM tenant_usage WHERE tenant_id = $1",
    [tenantId],
  );
  return {
    chunks: Number(stored.rows[0].n),
    bytes: Number(stored.rows[0].b),
    usageChunks: Number(kept.rows[0].n),
    usageBytes: Number(kept.rows[0].b),
  };
}

/** Every live file of a tenant reads back whole (no rope lost a chunk, no header lost its list). */
async function allLiveFilesRead(tenantId: string) {
  const r = await db.query(
    "SELECT convert_from(path, 'UTF8') AS p, size FROM files WHERE tenant_id = $1 AND dtime IS NULL",
    [tenantId],
  );
  for (const row of r.rows) {
    const data = await read(tenantId, row.p);
    assert.equal(data.length, Number(row.size), `${row.p} reads whole`);
  }
  const broken = await one(
    `SELECT count(*) FROM ropes r WHERE r.tenant_id = $1
       AND r.chunk_count <> (SELECT count(*) FROM rope_chunks rc WHERE rc.tenant_id = r.tenant_id AND rc.rope_hash = r.hash)`,
    [tenantId],
  );
  assert.equal(broken, 0, "no rope header lacks part of its chunk list");
  const dangling = await one(
    `SELECT count(*) FROM rope_chunks rc WHERE rc.tenant_id = $1
       AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = rc.tenant_id AND c.hash = rc.chunk_hash)`,
    [tenantId],
  );
  assert.equal(dangling, 0, "every listed chunk is stored");
}

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK, gcMarginMs: MARGIN_MS, gcIntervalMs: 0 });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("what goes and what stays", () => {
  let tenant: string;
  const keep = randomBytes(3 * CHUNK + 5);
  const old = randomBytes(4 * CHUNK);
  const gone = randomBytes(2 * CHUNK + 1);
  before(async () => {
    tenant = await newTenant("gc basics");
    await put(tenant, "/a.bin", old);
    await put(tenant, "/a.bin", keep); // v1 superseded
    await put(tenant, "/b.bin", gone);
    await remove(tenant, "/b.bin"); // deleted
    await put(tenant, "/c.bin", keep); // same content as a's live version: shared
  });

  test("the dry run reports and changes nothing", async () => {
    const before = await usage(tenant);
    const versions = await one("SELECT count(*) FROM file_versions WHERE tenant_id = $1", [tenant]);
    const r = reportOf(await collect({ tenantId: tenant, olderThanMs: 0, dryRun: true }), tenant);
    assert.equal(r.dryRun, true);
    assert.equal(Number(r.versions), 2, "a v1 and b v1 would go");
    assert.deepEqual(await usage(tenant), before);
    assert.equal(await one("SELECT count(*) FROM file_versions WHERE tenant_id = $1", [tenant]), versions);
    assert.equal(
      await one("SELECT count(*) FROM chunks WHERE tenant_id = $1 AND condemned_at IS NOT NULL", [tenant]),
      0,
      "nothing condemned by a dry run",
    );
  });

  test("retention by default keeps recent dead versions", async () => {
    const r = reportOf(await collect({ tenantId: tenant }), tenant);
    assert.equal(Number(r.versions), 0, "dead for less than 7 days: kept");
    assert.equal(Number(r.chunks), 0);
    assert.deepEqual(await read(tenant, "/a.bin", 1), old, "the old version still reads");
  });

  test("--older-than 0 reclaims dead versions, their contents and chunks; live files stay whole", async () => {
    const before = await usage(tenant);
    const r = reportOf(await collect({ tenantId: tenant, olderThanMs: 0 }), tenant);
    assert.equal(Number(r.versions), 2);
    assert.equal(Number(r.ropes), 2, "the contents of a v1 and b");
    assert.equal(Number(r.chunks), 4 + 3, "old's 4 chunks and gone's 3");
    assert.equal(Number(r.bytes), old.length + gone.length);
    const now = await usage(tenant);
    assert.equal(now.bytes, before.bytes - old.length - gone.length);
    assert.equal(now.usageBytes, now.bytes, "tenant_usage follows what was deleted");
    assert.equal(now.usageChunks, now.chunks);
    assert.deepEqual(await read(tenant, "/a.bin"), keep);
    assert.deepEqual(await read(tenant, "/c.bin"), keep);
    await rejects(read(tenant, "/a.bin", 1), Code.NotFound, /version 1|not found|no /i);
    await allLiveFilesRead(tenant);
    // Versions are never reused after their rows are gone.
    const next = await put(tenant, "/b.bin", Buffer.from("again"));
    assert.equal(Number(next.version), 2, "after version 1, whose row is gone");
  });

  test("a second run finds nothing more", async () => {
    const r = reportOf(await collect({ tenantId: tenant, olderThanMs: 0 }), tenant);
    assert.deepEqual([r.versions, r.ropes, r.chunks, r.uploads].map(Number), [0, 0, 0, 0]);
  });
});

describe("retention edge cases", () => {
  let tenant: string;
  /** Writes versions 1..n of a path, each written `ageHours` apart ending now (mtimes set by SQL). */
  async function history(path: string, n: number, hoursApart: number) {
    for (let v = 1; v <= n; v++) await put(tenant, path, Buffer.from(`${path} version ${v}`));
    await db.query(
      `UPDATE file_versions SET mtime = now() - ($3 * ($4 - version)) * INTERVAL '1 hour'
       WHERE tenant_id = $1 AND path = convert_to($2, 'UTF8')`,
      [tenant, path, hoursApart, n],
    );
  }
  async function versions(path: string): Promise<number[]> {
    const r = await db.query(
      "SELECT version FROM file_versions WHERE tenant_id = $1 AND path = convert_to($2, 'UTF8') ORDER BY version",
      [tenant, path],
    );
    return r.rows.map((row) => Number(row.version));
  }
  before(async () => {
    tenant = await newTenant("gc retention");
  });

  test("keep-N keeps the newest N dead versions whatever their age", async () => {
    await history("/n.txt", 5, 1000);
    await db.query("UPDATE tenants SET retain_versions = 2, retain_seconds = 0 WHERE id = $1", [tenant]);
    reportOf(await collect({ tenantId: tenant }), tenant);
    assert.deepEqual(await versions("/n.txt"), [3, 4, 5], "v5 live, v3 and v4 the two newest dead");
  });

  test("keep-days keeps versions dead for less than the retention, counted from their replacement", async () => {
    // v1 replaced 30 h ago (v2 written then), v2 replaced 20 h ago, v3 replaced 10 h ago, v4 live.
    await history("/d.txt", 4, 10);
    await db.query("UPDATE tenants SET retain_versions = 0, retain_seconds = $2 WHERE id = $1", [
      tenant,
      15 * 3600,
    ]);
    reportOf(await collect({ tenantId: tenant }), tenant);
    // Dead since their replacement: v1 for 20 h (goes), v2 for 10 h and v3 for 0 h (kept).
    assert.deepEqual(await versions("/d.txt"), [2, 3, 4]);
  });

  test("a deleted file's versions are dead from its deletion", async () => {
    await history("/del.txt", 2, 100);
    // v1 written 150 h ago, replaced by v2 50 h ago; v2 deleted now.
    await db.query(
      "UPDATE file_versions SET mtime = mtime - INTERVAL '50 hours' WHERE tenant_id = $1 AND path = convert_to('/del.txt', 'UTF8')",
      [tenant],
    );
    await remove(tenant, "/del.txt");
    await db.query("UPDATE tenants SET retain_versions = 0, retain_seconds = $2 WHERE id = $1", [
      tenant,
      3600,
    ]);
    reportOf(await collect({ tenantId: tenant }), tenant);
    assert.deepEqual(await versions("/del.txt"), [2], "v1 replaced 50 h ago goes; v2 deleted just now stays");
    await db.query(
      "UPDATE file_versions SET dtime = now() - INTERVAL '2 hours' WHERE tenant_id = $1 AND path = convert_to('/del.txt', 'UTF8')",
      [tenant],
    );
    reportOf(await collect({ tenantId: tenant }), tenant);
    assert.deepEqual(await versions("/del.txt"), []);
    assert.equal(
      await one("SELECT count(*) FROM files WHERE tenant_id = $1 AND path = convert_to('/del.txt', 'UTF8')", [
        tenant,
      ]),
      1,
      "the head row stays so version numbers are never reused",
    );
  });

  test("both rules: kept while either keeps it", async () => {
    await history("/both.txt", 4, 100);
    await db.query("UPDATE tenants SET retain_versions = 1, retain_seconds = $2 WHERE id = $1", [
      tenant,
      150 * 3600,
    ]);
    reportOf(await collect({ tenantId: tenant }), tenant);
    // v1 dead 200 h: goes; v2 dead 100 h: kept by days; v3 dead 0 h: kept by both.
    assert.deepEqual(await versions("/both.txt"), [2, 3, 4]);
  });

  test("a live head is never collected, however old", async () => {
    await put(tenant, "/ancient.txt", Buffer.from("still here"));
    await db.query("UPDATE file_versions SET mtime = now() - INTERVAL '1000 days' WHERE tenant_id = $1", [
      tenant,
    ]);
    await collect({ tenantId: tenant, olderThanMs: 0 });
    assert.equal((await read(tenant, "/ancient.txt")).toString(), "still here");
  });
});

describe("uploads", () => {
  let tenant: string;
  before(async () => {
    tenant = await newTenant("gc uploads");
  });

  test("expired uploads go with their chunk lists and the chunks only they held", async () => {
    const uploads = ts.client(Uploads, ts.superToken);
    const data = randomBytes(3 * CHUNK);
    const b = await uploads.begin({ tenantId: tenant, path: "/abandoned.bin" });
    const t = await uploads.transfer({ state: b.state, data });
    const idBefore = await one("SELECT count(*) FROM uploads WHERE tenant_id = $1", [tenant]);
    assert.equal(idBefore, 1);
    // Not expired, active: nothing happens even with --older-than 0.
    let r = reportOf(await collect({ tenantId: tenant, olderThanMs: 0 }), tenant);
    assert.equal(Number(r.uploads), 0);
    assert.equal(await usage(tenant).then((u) => u.chunks), 3);
    await db.query("UPDATE uploads SET expires_at = now() - INTERVAL '1 hour' WHERE tenant_id = $1", [
      tenant,
    ]);
    r = reportOf(await collect({ tenantId: tenant }), tenant);
    assert.equal(Number(r.uploads), 1);
    assert.equal(Number(r.chunks), 3);
    assert.equal((await usage(tenant)).chunks, 0);
    await rejects(uploads.commit({ state: t.state }), Code.InvalidArgument, /upload not found/);
  });

  test("--older-than collects idle uploads but never one active in the last 5 s", async () => {
    const uploads = ts.client(Uploads, ts.superToken);
    const idle = await uploads.begin({ tenantId: tenant, path: "/idle.bin" });
    await uploads.transfer({ state: idle.state, data: randomBytes(CHUNK) });
    const busy = await uploads.begin({ tenantId: tenant, path: "/busy.bin" });
    const busyT = await uploads.transfer({ state: busy.state, data: randomBytes(CHUNK) });
    await db.query(
      "UPDATE uploads SET active_at = now() - INTERVAL '2 minutes' WHERE tenant_id = $1 AND path = '/idle.bin'",
      [tenant],
    );
    const r = reportOf(await collect({ tenantId: tenant, olderThanMs: 0 }), tenant);
    assert.equal(Number(r.uploads), 1, "only the idle one");
    const done = await uploads.commit({ state: busyT.state });
    assert.equal(Number(done.file!.size), CHUNK);
  });

  test("abandoned uploads and aborted HTTP PUTs are reclaimed whole by one run", async () => {
    const t2 = await newTenant("gc abandoned");
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "abandoned.test", tenantId: t2 } });
    const uploads = ts.client(Uploads, ts.superToken);
    for (let i = 0; i < 5; i++) {
      const b = await uploads.begin({ tenantId: t2, path: `/left-${i}.bin` });
      await uploads.transfer({ state: b.state, data: randomBytes(3 * CHUNK) });
    }
    const u = new URL(ts.url);
    for (let i = 0; i < 3; i++) {
      // Headers promise 9 MiB; 1.5 MiB arrive, then the connection drops.
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(Number(u.port), u.hostname, () => {
          sock.write(
            `PUT /aborted-${i}.bin HTTP/1.1\r\nhost: abandoned.test\r\nauthorization: Bearer ${ts.superToken}\r\ncontent-length: ${9 << 20}\r\n\r\n`,
          );
          sock.write(randomBytes(3 << 19), () =>
            setTimeout(() => {
              sock.destroy();
              resolve();
            }, 300),
          );
        });
        sock.on("error", reject);
      });
    }
    await sleep(300);
    assert.ok((await usage(t2)).chunks >= 5 * 3 + 3 * 8, "the abandoned data is stored");
    // Idle for longer than the 5 s an upload still sending is given.
    await db.query("UPDATE uploads SET active_at = active_at - INTERVAL '10 seconds' WHERE tenant_id = $1", [
      t2,
    ]);
    const r = reportOf(await collect({ tenantId: t2, olderThanMs: 0 }), t2);
    assert.equal(Number(r.uploads), 8);
    assert.equal(Number(r.pendingChunks), 0);
    assert.equal((await usage(t2)).chunks, 0, "every chunk they held is gone");
    assert.equal(await one("SELECT count(*) FROM upload_chunks WHERE tenant_id = $1", [t2]), 0);
  });

  test("a step records activity", async () => {
    const uploads = ts.client(Uploads, ts.superToken);
    const b = await uploads.begin({ tenantId: tenant, path: "/touched.bin" });
    await db.query("UPDATE uploads SET active_at = now() - INTERVAL '1 hour' WHERE tenant_id = $1", [tenant]);
    await uploads.findMissing({ state: b.state, hashes: [chunkHash(Buffer.from("x"))] });
    const age = await one(
      "SELECT extract(epoch FROM now() - active_at)::INT8 FROM uploads WHERE tenant_id = $1 AND path = '/touched.bin'",
      [tenant],
    );
    assert.ok(age < 60, `active_at moved to now (${age} s ago)`);
  });
});

describe("races with writers", () => {
  let tenant: string;
  before(async () => {
    tenant = await newTenant("gc races");
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
  });

  /** Runs collections back to back until `until` settles; how many ran. */
  async function collectWhile(until: Promise<unknown>, server: { url: string } = ts): Promise<number> {
    let done = false;
    until.then(
      () => (done = true),
      () => (done = true),
    );
    let runs = 0;
    while (!done) {
      await collect({ tenantId: tenant, olderThanMs: 0 }, server);
      runs++;
    }
    return runs;
  }

  test("dedup path: chunks sent with PutChunks (or found present) and appended after a run began stay intact", async () => {
    for (let i = 0; i < 8; i++) {
      const data = randomBytes(randomInt(1, 5) * CHUNK + randomInt(0, CHUNK));
      const path = `/dedup-${i}.bin`;
      // Half the time the content was stored before and deleted: its chunks are unreferenced and
      // FindMissing may call them present until a run condemns them.
      if (i % 2 === 0) {
        await put(tenant, path, data);
        await remove(tenant, path);
      }
      const uploads = ts.client(Uploads, ts.superToken);
      const writer = (async () => {
        const b = await uploads.begin({ tenantId: tenant, path });
        const chunks: Buffer[] = [];
        for (let off = 0; off < data.length; off += CHUNK) chunks.push(data.subarray(off, off + CHUNK));
        const hashes = chunks.map((c) => chunkHash(c));
        await sleep(randomInt(0, 200));
        const missing = new Set(
          (await uploads.findMissing({ state: b.state, hashes })).missing.map((h) =>
            Buffer.from(h).toString("hex"),
          ),
        );
        await sleep(randomInt(0, 200));
        const send = chunks.filter((_, k) => missing.has(hashes[k]!.toString("hex")));
        if (send.length)
          await uploads.putChunks({
            state: b.state,
            chunks: send.map((c) => ({ hash: chunkHash(c), data: c })),
          });
        await sleep(randomInt(0, 400));
        const a = await uploads.append({
          state: b.state,
          chunks: chunks.map((c, k) => ({ hash: hashes[k]!, length: c.length })),
        });
        await sleep(randomInt(0, 200));
        return uploads.commit({ state: a.state });
      })();
      await collectWhile(writer);
      const file = (await writer).file!;
      assert.equal(Number(file.size), data.length);
      assert.deepEqual(await read(tenant, path), data, `${path} reads back intact`);
    }
    await allLiveFilesRead(tenant);
  });

  test("streamed Transfer: a commit after runs began stays intact", async () => {
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(randomInt(1, 12) * CHUNK + randomInt(0, 100));
      const path = `/stream-${i}.bin`;
      if (i % 2 === 1) {
        await put(tenant, path, data);
        await remove(tenant, path);
      }
      const writer = put(tenant, path, data, () => sleep(randomInt(0, 500)));
      await collectWhile(writer);
      await writer;
      assert.deepEqual(await read(tenant, path), data, `${path} reads back intact`);
    }
    await allLiveFilesRead(tenant);
  });

  test("HTTP PUT and one-shot writes: stay intact while runs go on", async () => {
    for (let i = 0; i < 6; i++) {
      const big = randomBytes(randomInt(2, 20) * CHUNK);
      const small = randomBytes(randomInt(1, 2000));
      const writer = Promise.all([
        fetch(`${ts.url}/http-${i}.bin`, {
          method: "PUT",
          body: big,
          headers: { authorization: `Bearer ${ts.superToken}` },
        }).then(async (r) => assert.equal(r.status, 201, await r.text())),
        ts.client(Uploads, ts.superToken).begin({
          tenantId: tenant,
          path: `/small-${i}.bin`,
          committed: { case: "contents", value: small },
        }),
      ]);
      await collectWhile(writer);
      await writer;
      assert.deepEqual(await read(tenant, `/http-${i}.bin`), big);
      assert.deepEqual(await read(tenant, `/small-${i}.bin`), small);
    }
    await allLiveFilesRead(tenant);
  });

  test("two servers collecting at once while a third writer overwrites and deletes", async () => {
    const second = await startServer({
      bind: "127.0.0.1:0",
      databaseUrl: ts.databaseUrl,
      signingKeys: [ts.signingKey],
      logLevel: "silent",
      maxConnections: 6,
      gracePeriodMs: 0,
      chunkSize: CHUNK,
      gcMarginMs: MARGIN_MS,
      gcIntervalMs: 0,
    });
    try {
      const expected = new Map<string, Buffer>();
      const writer = (async () => {
        for (let i = 0; i < 24; i++) {
          const path = `/two-${i % 6}.bin`;
          if (i % 5 === 4) {
            if (expected.has(path)) {
              await remove(tenant, path);
              expected.delete(path);
            }
            continue;
          }
          const data = randomBytes(randomInt(1, 6) * CHUNK);
          await put(tenant, path, data);
          expected.set(path, data);
        }
      })();
      await Promise.all([collectWhile(writer), collectWhile(writer, second), writer]);
      for (const [path, data] of expected) assert.deepEqual(await read(tenant, path), data, path);
      await allLiveFilesRead(tenant);
      const u = await usage(tenant);
      assert.equal(u.usageBytes, u.bytes, "usage stays exact under concurrent collections");
    } finally {
      await second.close();
    }
  });
});

describe("deleted tenants", () => {
  test("a deleted tenant is hidden at once and purged in batches by the next run", async () => {
    const tenant = await newTenant("gc doomed");
    for (let i = 0; i < 5; i++) await put(tenant, `/f${i}.bin`, randomBytes(2 * CHUNK));
    const b = await ts.client(Uploads, ts.superToken).begin({ tenantId: tenant, path: "/open.bin" });
    await ts.client(Uploads, ts.superToken).transfer({ state: b.state, data: randomBytes(CHUNK) });
    const tenants = ts.client(Tenants, ts.superToken);
    const t = (await tenants.get({ id: tenant })).tenant!;
    await tenants.ensure({ tenant: { id: tenant, version: t.version }, delete: true });
    await rejects(tenants.get({ id: tenant }), Code.NotFound, /no tenant/);
    const listed: string[] = [];
    for await (const x of tenants.list({})) listed.push(x.id);
    assert.ok(!listed.includes(tenant), "not listed");
    // The delete kicked a purge; run one too and wait until the row is gone.
    for (let i = 0; i < 20 && (await one("SELECT count(*) FROM tenants WHERE id = $1", [tenant])) > 0; i++) {
      await collect();
      await sleep(100);
    }
    assert.equal(await one("SELECT count(*) FROM tenants WHERE id = $1", [tenant]), 0);
    for (const table of [
      "files",
      "file_versions",
      "ropes",
      "rope_chunks",
      "upload_chunks",
      "uploads",
      "chunks",
    ])
      assert.equal(await one(`SELECT count(*) FROM ${table} WHERE tenant_id = $1`, [tenant]), 0, table);
  });
});

describe("refusals", () => {
  test("bad input and non-super callers change nothing", async () => {
    await rejects(collect({ tenantId: "not-a-uuid" }), Code.InvalidArgument, /tenant_id/);
    await rejects(
      collect({ tenantId: "5b3c2d4e-0000-4000-8000-000000000001" }),
      Code.NotFound,
      /does not exist/,
    );
    const client = (await import("@connectrpc/connect")).createClient(
      GarbageCollection,
      testTransport(ts.url),
    );
    await rejects(
      (async () => {
        for await (const _ of client.collect({})) {
          // drain
        }
      })(),
      Code.Unauthenticated,
      /./,
    );
  });
});

describe("schedule", () => {
  test("the server collects on its own every --gc-interval", async () => {
    const scheduled = await startTestServer({ chunkSize: CHUNK, gcMarginMs: 100, gcIntervalMs: 300 });
    const sdb = new pg.Client({ connectionString: scheduled.databaseUrl });
    await sdb.connect();
    try {
      const tenant = (
        await scheduled.client(Tenants, scheduled.superToken).ensure({ tenant: { label: "sched" } })
      ).tenant!.id;
      const uploads = scheduled.client(Uploads, scheduled.superToken);
      await uploads.begin({
        tenantId: tenant,
        path: "/x",
        committed: { case: "contents", value: randomBytes(5000) },
      });
      await scheduled.client(Files, scheduled.superToken).delete({ tenantId: tenant, path: "/x" });
      await sdb.query("UPDATE tenants SET retain_seconds = 0 WHERE id = $1", [tenant]);
      let left = 1;
      for (let i = 0; i < 100 && left > 0; i++) {
        await sleep(100);
        left = Number(
          (await sdb.query("SELECT count(*) AS n FROM chunks WHERE tenant_id = $1", [tenant])).rows[0].n,
        );
      }
      assert.equal(left, 0, "the scheduled run removed the deleted file's chunk");
      let metrics = "";
      for (let i = 0; i < 50 && !/cacheroach_gc_reclaimed_chunks_total [1-9]/.test(metrics); i++) {
        await sleep(100); // the run's totals are counted when it ends
        metrics = await (await fetch(`${scheduled.url}/metrics`)).text();
      }
      assert.match(metrics, /cacheroach_gc_runs_total [1-9]/);
      assert.match(metrics, /cacheroach_gc_reclaimed_chunks_total [1-9]/);
    } finally {
      await sdb.end();
      await scheduled.close();
    }
  });
});
