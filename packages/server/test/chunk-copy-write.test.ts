import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chunkHash } from "@cacheroach/core";
import { Db, type Dialect } from "../src/db/db.js";
import { ChunkStore, type ChunkWrite } from "../src/store/chunk-store.js";
import { UsageStore } from "../src/store/usage-store.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

// Large chunks written by binary COPY (PostgreSQL) must keep the INSERT path's contract: stored
// bytes exact, a stored chunk never counted twice, a condemned chunk saved, the usage exact, and a
// chunk stored concurrently by someone else (COPY has no ON CONFLICT) handled by falling back.

const KiB = 1024;
const COPY_WRITES: Dialect = {
  name: "postgres",
  asyncBulkCommit: true,
  binaryCopyReads: true,
  binaryCopyWrites: true,
};

function chunk(size: number): ChunkWrite {
  const data = randomBytes(size);
  // Bytes that would break a text COPY.
  data.write("\\.\n\t\\N\0", 0, "latin1");
  return { hash: chunkHash(data), data };
}

describe("chunk writes by binary COPY", () => {
  let tdb: TestDatabase;
  let db: Db;
  let copies = 0;
  const usage = () => new UsageStore(db);

  before(async () => {
    tdb = await createTestDatabase();
    db = new Db({ url: tdb.url, maxConnections: 8, dialect: COPY_WRITES });
    await db.migrate();
    const copyIn = db.copyIn.bind(db);
    db.copyIn = (...args) => {
      copies++;
      return copyIn(...args);
    };
  });
  after(async () => {
    await db?.close();
    await tdb?.drop();
  });

  async function tenant(): Promise<string> {
    const id = randomUUID();
    await db.query("INSERT INTO tenants (id, label, version) VALUES ($1, 'copy writes', 1)", [id]);
    return id;
  }

  async function stored(tenantId: string): Promise<Map<string, { data: Buffer; condemned: boolean }>> {
    const r = await db.query<{ hash: Buffer; data: Buffer; condemned: boolean }>(
      "SELECT hash, data, condemned_at IS NOT NULL AS condemned FROM chunks WHERE tenant_id = $1",
      [tenantId],
    );
    return new Map(r.rows.map((row) => [row.hash.toString("hex"), row]));
  }

  test("new large chunks go by COPY, byte-exact, with exact usage; stored ones are not recounted", async () => {
    const t = await tenant();
    const store = new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 4 });
    const chunks = [chunk(512 * KiB), chunk(512 * KiB), chunk(300 * KiB), chunk(512 * KiB), chunk(257 * KiB)];
    const before = copies;
    assert.equal(await store.put(t, chunks.slice(0, 3)), 3);
    assert.ok(copies > before, "the large chunks went by COPY");
    // Two stored, three new (one repeated in the call).
    assert.equal(await store.put(t, [...chunks, chunks[4]!]), 2);
    const rows = await stored(t);
    assert.equal(rows.size, 5);
    for (const c of chunks) assert.ok(rows.get(c.hash.toString("hex"))?.data.equals(c.data));
    const bytes = chunks.reduce((n, c) => n + c.data.length, 0);
    assert.deepEqual(await usage().physical(t), { chunks: 5, bytes });
    assert.equal(store.counters.chunksWritten, 5);
    assert.equal(store.counters.bytesWritten, bytes);
  });

  test("a condemned chunk sent again is saved (un-condemned), not counted again", async () => {
    const t = await tenant();
    const store = new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 4 });
    const [a, b, c] = [chunk(512 * KiB), chunk(512 * KiB), chunk(512 * KiB)];
    await store.put(t, [a!, b!]);
    await db.query("UPDATE chunks SET condemned_at = now() WHERE tenant_id = $1", [t]);
    assert.equal(await store.put(t, [a!, b!, c!]), 1);
    const rows = await stored(t);
    assert.equal(rows.size, 3);
    for (const row of rows.values()) assert.equal(row.condemned, false);
    assert.deepEqual(await usage().physical(t), { chunks: 3, bytes: 3 * 512 * KiB });
  });

  test("a chunk stored by someone else between the lookup and the COPY: INSERT instead, usage exact", async () => {
    const t = await tenant();
    const chunks = [chunk(512 * KiB), chunk(512 * KiB), chunk(512 * KiB), chunk(512 * KiB)];
    // Another writer stores chunk 0 (and counts it) right before this store's COPYs run.
    const otherDb = new Db({ url: tdb.url, maxConnections: 2 });
    const other = new ChunkStore(otherDb, {
      cacheBytes: 0,
      writeConcurrency: 1,
    });
    const racing = new Db({ url: tdb.url, maxConnections: 4, dialect: COPY_WRITES });
    const copyIn = racing.copyIn.bind(racing);
    let raced = false;
    let failed = 0;
    racing.copyIn = async (...args) => {
      if (!raced) {
        raced = true;
        await other.put(t, [chunks[0]!]);
      }
      try {
        return await copyIn(...args);
      } catch (err) {
        failed++;
        throw err;
      }
    };
    try {
      const store = new ChunkStore(racing, { cacheBytes: 0, writeConcurrency: 1 });
      assert.equal(await store.put(t, chunks), 3);
      assert.equal(failed, 1, "the COPY met the other writer's row");
    } finally {
      await racing.close();
      await otherDb.close();
    }
    const rows = await stored(t);
    assert.equal(rows.size, 4);
    for (const c of chunks) assert.ok(rows.get(c.hash.toString("hex"))?.data.equals(c.data));
    assert.deepEqual(await usage().physical(t), { chunks: 4, bytes: 4 * 512 * KiB });
  });

  test("concurrent writers of the same chunks store and count each once", async () => {
    const t = await tenant();
    const store = new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 4 });
    const chunks = Array.from({ length: 8 }, () => chunk(400 * KiB));
    const counts = await Promise.all([1, 2, 3, 4].map(() => store.put(t, chunks)));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      8,
    );
    assert.equal((await stored(t)).size, 8);
    assert.deepEqual(await usage().physical(t), { chunks: 8, bytes: 8 * 400 * KiB });
  });

  test("the connection is usable after a failed COPY", async () => {
    const t = await tenant();
    const one = new Db({ url: tdb.url, maxConnections: 2, dialect: COPY_WRITES });
    try {
      const store = new ChunkStore(one, { cacheBytes: 0, writeConcurrency: 1 });
      const c = chunk(512 * KiB);
      // A tenant that does not exist: the COPY fails (foreign key) and nothing is stored.
      await assert.rejects(store.put(randomUUID(), [c, chunk(512 * KiB)]));
      assert.equal(await store.put(t, [c, chunk(512 * KiB)]), 2);
    } finally {
      await one.close();
    }
  });
});
