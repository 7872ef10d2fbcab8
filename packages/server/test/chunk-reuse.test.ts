import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { chunkHash } from "@cacheroach/core";
import { Tenants, VHosts } from "@cacheroach/proto";
import { BinaryCopyParser, type CopyShape } from "../src/db/copy-binary.js";
import type { Db } from "../src/db/db.js";
import { type ChunkLease, ChunkPool, PooledChunk } from "../src/store/chunk-pool.js";
import { ChunkStore } from "../src/store/chunk-store.js";
import { startTestServer, type TestServer } from "../src/testing.js";

// Chunk buffers are reused once a chunk is out of the cache and unleased (store/chunk-pool.ts). The
// danger is a buffer rewritten while something still reads it; these tests hold leases, keep
// escaped buffers and stall responses while other reads churn the pool, and compare every byte.

const KiB = 1024;
const CHUNK = 64 * KiB;

describe("chunk pool rules", () => {
  test("a buffer is given back only when uncached, unleased and never escaped", () => {
    const pool = new ChunkPool(1 << 20);
    const c = new PooledChunk(pool.take(CHUNK));
    c.cached = true;
    const lease = pool.lease(c);
    pool.recycle(c);
    assert.equal(pool.bytesFree, 0, "cached and leased");
    c.cached = false;
    pool.recycle(c);
    assert.equal(pool.bytesFree, 0, "leased");
    lease.release();
    assert.equal(pool.bytesFree, CHUNK, "free once the last lease ends");
    lease.release(); // a second release changes nothing
    assert.equal(c.leases, 0);
    assert.equal(pool.bytesFree, CHUNK);
    assert.equal(pool.take(CHUNK), c.data, "the next chunk of that length gets it");
    assert.throws(() => pool.lease(c), /recycled/);

    const e = new PooledChunk(pool.take(CHUNK));
    e.escaped = true;
    pool.recycle(e);
    assert.equal(pool.bytesFree, 0, "an escaped buffer is never reused");
  });

  test("odd lengths are not pooled and the free list is bounded", () => {
    const pool = new ChunkPool(2 * CHUNK);
    pool.give(Buffer.allocUnsafeSlow(CHUNK + 1));
    assert.equal(pool.bytesFree, 0);
    for (let i = 0; i < 3; i++) pool.give(Buffer.allocUnsafeSlow(CHUNK));
    assert.equal(pool.bytesFree, 2 * CHUNK);
  });
});

describe("chunk store reuse", () => {
  // A stand-in database that answers the slice query for the chunks it holds, as PostgreSQL would.
  const chunks = new Map<string, Buffer>();
  const fakeDb = {
    binaryCopyReads: true,
    copyOut: async (sql: string, shape: CopyShape) => {
      await new Promise((r) => setImmediate(r)); // a real read yields to other work
      const hex = /decode\('([0-9a-f]+)', 'hex'\)/.exec(sql)![1]!;
      const data = chunks.get(hex);
      const p = new BinaryCopyParser(shape);
      const int4 = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeInt32BE(n);
        return b;
      };
      const parts: Buffer[] = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)];
      for (let k = 0; data && k * 128 * KiB < data.length; k++) {
        parts.push(Buffer.from([0, 3]));
        for (const f of [int4(k), int4(data.length), data.subarray(k * 128 * KiB, (k + 1) * 128 * KiB)])
          parts.push(int4(f.length), f);
      }
      parts.push(Buffer.from([0xff, 0xff]));
      p.push(Buffer.concat(parts));
      return p.rows;
    },
  } as unknown as Db;
  const tenant = randomUUID();
  const stored: Buffer[] = [];
  before(() => {
    for (let i = 0; i < 12; i++) {
      const data = randomBytes(i === 11 ? CHUNK + 5 : 2 * CHUNK); // one odd length, not pooled
      stored.push(data);
      chunks.set(chunkHash(data).toString("hex"), Buffer.from(data));
    }
  });
  const hashOf = (i: number) => chunkHash(stored[i]!);

  test("held leases and escaped buffers keep their bytes while evictions feed new reads", async () => {
    // The cache holds one chunk: every read evicts the one before.
    const store = new ChunkStore(fakeDb, { cacheBytes: 2 * CHUNK, writeConcurrency: 1 });
    const held: [number, ChunkLease][] = [];
    const kept: [number, Buffer][] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < stored.length; i++) {
        if (i % 5 === round % 5) kept.push([i, await store.get(tenant, hashOf(i))]);
        else {
          const lease = await store.lease(tenant, hashOf(i));
          assert.ok(lease.data.equals(stored[i]!), `chunk ${i} read back`);
          if (i % 3 === 0) held.push([i, lease]);
          else lease.release();
        }
        for (const [j, l] of held) assert.ok(l.data.equals(stored[j]!), `held lease on chunk ${j} intact`);
        for (const [j, b] of kept) assert.ok(b.equals(stored[j]!), `escaped chunk ${j} intact`);
      }
      for (const [, l] of held.splice(0)) l.release();
    }
    // Without reuse this proves nothing: most reads must have landed in a given-back buffer.
    assert.ok(store.pool.counters.reused > 20, `reused ${store.pool.counters.reused}`);
    assert.ok(store.pool.counters.allocated < 20, `allocated ${store.pool.counters.allocated}`);
  });

  test("concurrent leases of many chunks with no cache at all", async () => {
    const store = new ChunkStore(fakeDb, { cacheBytes: 0, writeConcurrency: 1 });
    for (let round = 0; round < 5; round++) {
      const leases = await Promise.all(stored.map((_, i) => store.lease(tenant, hashOf(i))));
      for (const [i, l] of leases.entries()) assert.ok(l.data.equals(stored[i]!));
      // Released in a scrambled order, each checked again just before.
      for (const i of [3, 0, 7, 11, 1, 5, 9, 2, 10, 4, 8, 6]) {
        assert.ok(leases[i]!.data.equals(stored[i]!));
        leases[i]!.release();
      }
    }
    assert.ok(store.pool.counters.reused > 0);
  });

  test("a chunk that does not match its hash never reaches a caller, and its buffer is reused", async () => {
    const store = new ChunkStore(fakeDb, { cacheBytes: 0, writeConcurrency: 1 });
    const bad = Buffer.from(stored[0]!);
    bad[100] = bad[100]! ^ 1;
    const liar = randomBytes(32);
    chunks.set(liar.toString("hex"), bad);
    await assert.rejects(store.lease(tenant, liar), /does not match its hash/);
    assert.equal(store.pool.bytesFree, bad.length);
    const l = await store.lease(tenant, hashOf(1));
    assert.ok(l.data.equals(stored[1]!));
    l.release();
  });
});

describe("HTTP downloads with a tiny cache", () => {
  let ts: TestServer;
  let auth: Record<string, string>;
  const files = Array.from({ length: 4 }, (_, i) => randomBytes(9 * CHUNK + i * 1000));
  before(async () => {
    // Two chunks of cache for files of ten: every download evicts, and evicted buffers are reused.
    ts = await startTestServer({ chunkSize: CHUNK, cacheBytes: 2 * CHUNK, vhostRefreshMs: 100 });
    const tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "reuse" } })).tenant!
      .id;
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
    auth = { authorization: `Bearer ${ts.superToken}` };
    for (const [i, body] of files.entries()) {
      const r = await fetch(`${ts.url}/f${i}.bin`, { method: "PUT", body, headers: auth });
      assert.equal(r.status, 201);
    }
  });
  after(async () => {
    await ts?.close();
  });

  /** GET of `path` (with `range`); a slow reader pauses after its first bytes so writes back up. */
  function get(path: string, slow: boolean, range?: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const u = new URL(path, ts.url);
      const req = http.get(u, { headers: { ...auth, ...(range ? { range } : {}) } }, (res) => {
        const parts: Buffer[] = [];
        let paused = false;
        res.on("data", (d: Buffer) => {
          parts.push(d);
          if (slow && !paused) {
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), 300);
          }
        });
        res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
        res.on("error", reject);
      });
      req.on("error", reject);
    });
  }

  async function reuseCount(): Promise<number> {
    const text = await (await fetch(`${ts.server.metricsUrl}`)).text();
    return Number(/^cacheroach_chunk_buffers_reused_total (\d+)/m.exec(text)?.[1] ?? "0");
  }

  test("concurrent downloads of different files, some stalled, are byte-identical", async () => {
    const before = await reuseCount();
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        [...files.keys(), ...files.keys()].map((i, n) => get(`/f${i}.bin`, n % 3 === 0)),
      );
      for (const [n, a] of answers.entries()) {
        const i = n % files.length;
        assert.equal(a.status, 200);
        assert.ok(a.body.equals(files[i]!), `round ${round}, download ${n} of file ${i}`);
      }
    }
    assert.ok((await reuseCount()) > before, "the downloads reused buffers");
  });

  test("a stalled large download keeps its bytes while other downloads reuse buffers", async () => {
    // Larger than the socket buffers of a connection that has not read yet, so the server's writes
    // wait in Node with the bytes.
    const big = randomBytes(8 << 20);
    const put = await fetch(`${ts.url}/big.bin`, { method: "PUT", body: big, headers: auth });
    assert.equal(put.status, 201);
    const reused = await reuseCount();
    const body = await new Promise<Buffer>((resolve, reject) => {
      // A connection of its own: one reused from earlier downloads has a receive window grown large.
      const req = http.get(new URL("/big.bin", ts.url), { headers: auth, agent: false }, (res) => {
        const parts: Buffer[] = [];
        let stalled = false;
        res.on("data", (d: Buffer) => {
          parts.push(d);
          if (stalled) return;
          stalled = true;
          res.pause();
          // Let the server fill the socket and queue more, then churn the pool meanwhile.
          setTimeout(async () => {
            try {
              for (let round = 0; round < 2; round++) {
                const answers = await Promise.all(files.map((_, i) => get(`/f${i}.bin`, false)));
                for (const [i, a] of answers.entries()) assert.ok(a.body.equals(files[i]!));
              }
              res.resume();
            } catch (err) {
              reject(err);
            }
          }, 300);
        });
        res.on("end", () => resolve(Buffer.concat(parts)));
        res.on("error", reject);
      });
      req.on("error", reject);
    });
    assert.equal(body.length, big.length);
    assert.ok(body.equals(big), "the stalled download is byte-identical");
    assert.ok((await reuseCount()) > reused, "the other downloads reused buffers");
  });

  test("ranges and multipart ranges from reused buffers are exact", async () => {
    const f = files[2]!;
    const answers = await Promise.all([
      get("/f2.bin", true, `bytes=${CHUNK - 10}-${3 * CHUNK + 7}`),
      get("/f1.bin", false),
      get("/f2.bin", false, `bytes=5-20,${4 * CHUNK}-${6 * CHUNK + 1},${f.length - 3}-`),
      get("/f3.bin", true),
    ]);
    assert.equal(answers[0]!.status, 206);
    assert.ok(answers[0]!.body.equals(f.subarray(CHUNK - 10, 3 * CHUNK + 8)));
    assert.ok(answers[1]!.body.equals(files[1]!));
    assert.equal(answers[2]!.status, 206);
    const multipart = answers[2]!.body.toString("latin1");
    for (const [a, b] of [
      [5, 21],
      [4 * CHUNK, 6 * CHUNK + 2],
      [f.length - 3, f.length],
    ] as const) {
      assert.ok(multipart.includes(f.subarray(a, b).toString("latin1")), `part ${a}-${b}`);
    }
    assert.ok(answers[3]!.body.equals(files[3]!));
  });
});
