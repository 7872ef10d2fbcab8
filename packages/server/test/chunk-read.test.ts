import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chunkHash, RopeHasher } from "@cacheroach/core";
import { BinaryCopyParser, type CopyRow, type CopyShape } from "../src/db/copy-binary.js";
import { Db, type Dialect } from "../src/db/db.js";
import { CacheroachError } from "../src/errors.js";
import { ChunkStore } from "../src/store/chunk-store.js";
import { type Rope, RopeStore } from "../src/store/rope-store.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

/** PostgreSQL reads through binary COPY, synchronous bulk writes. */
const BINARY_COPY: Dialect = { name: "postgres", asyncBulkCommit: false, binaryCopyReads: true };

// Chunk reads: the PostgreSQL fast path (binary COPY) must return exactly the stored bytes, and the
// portable query must keep working where the fast path is off (CockroachDB).

const KiB = 1024;
const CHUNK = 512 * KiB;

/** A binary COPY stream as PostgreSQL writes it, for rows of nullable fields. */
function copyStream(rows: CopyRow[], extension = Buffer.alloc(0)): Buffer {
  const parts: Buffer[] = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1")];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  parts.push(u32(0), u32(extension.length), extension);
  for (const row of rows) {
    const n = Buffer.alloc(2);
    n.writeInt16BE(row.length);
    parts.push(n);
    for (const f of row) parts.push(u32(f === null ? -1 : f.length), ...(f ? [f] : []));
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

/** Bytes that break text modes: NUL, backslash, quote, high bytes, bytes that look like escapes. */
function nastyChunk(size: number): Buffer {
  const b = randomBytes(size);
  const nasty = [0x00, 0x5c, 0x27, 0x22, 0x0a, 0x0d, 0x78, 0x80, 0xc3, 0xfe, 0xff];
  for (let i = 0; i < size; i += 7) b[i] = nasty[(i / 7) % nasty.length]!;
  if (size > 4) b.write("\\x00", 1, "latin1");
  return b;
}

describe("binary COPY parser", () => {
  const rows: CopyRow[] = [
    [Buffer.from([0x00, 0x5c, 0xff]), null],
    [Buffer.alloc(0), Buffer.from("PGCOPY\n\xff\r\n\0", "latin1")],
    [null, nastyChunk(300)],
  ];

  test("parses rows, NULLs and empty fields whole or split at every byte", () => {
    const stream = copyStream(rows, Buffer.from("ext!"));
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new BinaryCopyParser({ fields: 2, maxBytes: 1 << 20 });
      p.push(stream.subarray(0, cut));
      p.push(stream.subarray(cut));
      assert.ok(p.done, `cut ${cut}`);
      assert.deepEqual(p.rows, rows, `cut ${cut}`);
    }
    const p = new BinaryCopyParser({ fields: 2, maxBytes: 1 << 20 });
    for (let i = 0; i < stream.length; i++) p.push(stream.subarray(i, i + 1));
    assert.ok(p.done);
    assert.deepEqual(p.rows, rows);
  });

  test("copies fields out of the buffers it is fed (pg reuses them)", () => {
    const stream = copyStream([[Buffer.from("abc")]]);
    const fed = Buffer.from(stream);
    const p = new BinaryCopyParser({ fields: 1, maxBytes: 100 });
    p.push(fed);
    fed.fill(0);
    assert.equal(p.rows[0]![0]!.toString(), "abc");
  });

  test("writes fields into the buffers a target hands out, split at every byte", () => {
    const stream = copyStream([
      [Buffer.from([0]), Buffer.from("hello")],
      [Buffer.from([5]), Buffer.from(" world")],
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const out = Buffer.alloc(11);
      const p = new BinaryCopyParser({
        fields: 2,
        maxBytes: 100,
        target: (row, length) =>
          row.length === 1 ? out.subarray(row[0]![0]!, row[0]![0]! + length) : undefined,
      });
      p.push(stream.subarray(0, cut));
      p.push(stream.subarray(cut));
      assert.ok(p.done);
      assert.equal(out.toString(), "hello world", `cut ${cut}`);
      assert.equal(p.rows[1]![1]!.buffer, out.buffer);
    }
    const wrong = new BinaryCopyParser({ fields: 2, maxBytes: 100, target: () => Buffer.alloc(1) });
    assert.throws(() => wrong.push(stream), /wrong size/);
  });

  test("reports an unfinished stream as not done", () => {
    const stream = copyStream(rows);
    const p = new BinaryCopyParser({ fields: 2, maxBytes: 1 << 20 });
    p.push(stream.subarray(0, stream.length - 1));
    assert.equal(p.done, false);
  });

  test("rejects malformed streams", () => {
    const bad = (stream: Buffer, fields: number, re: RegExp, maxBytes = 1 << 20) =>
      assert.throws(() => new BinaryCopyParser({ fields, maxBytes }).push(stream), re);
    const good = copyStream(rows);
    const sig = Buffer.from(good);
    sig[0] = 0x51;
    bad(sig, 2, /signature/);
    const flags = Buffer.from(good);
    flags.writeUInt32BE(1 << 16, 11); // OIDs included
    bad(flags, 2, /flags/);
    bad(good, 3, /fields/);
    bad(Buffer.concat([good, Buffer.from([0])]), 2, /after the trailer/);
    bad(good, 2, /exceeds/, 100);
    const negative = copyStream([[Buffer.from("x")]]);
    negative.writeInt32BE(-2, 21);
    bad(negative, 1, /field length/);
  });
});

describe("chunk assembly from COPY slices", () => {
  // A stand-in database answering the slice query with crafted rows (k, total length, bytes).
  const fakeDb = (rows: [number, number, Buffer][]) =>
    ({
      binaryCopyReads: true,
      copyOut: async (_sql: string, shape: CopyShape) => {
        const int4 = (n: number) => {
          const b = Buffer.alloc(4);
          b.writeInt32BE(n);
          return b;
        };
        const p = new BinaryCopyParser(shape);
        p.push(copyStream(rows.map(([k, total, data]) => [int4(k), int4(total), data])));
        return p.rows;
      },
    }) as unknown as Db;
  const tenant = randomUUID();
  const data = nastyChunk(300 * KiB);
  const slice = (k: number) => data.subarray(k * 128 * KiB, (k + 1) * 128 * KiB);
  const get = (rows: [number, number, Buffer][], hash = chunkHash(data)) =>
    new ChunkStore(fakeDb(rows), { cacheBytes: 0, writeConcurrency: 1 }).get(tenant, hash);

  test("slices in any order make the chunk", async () => {
    const got = await get([
      [2, data.length, slice(2)],
      [0, data.length, slice(0)],
      [1, data.length, slice(1)],
    ]);
    assert.ok(got.equals(data));
  });

  test("a missing, repeated, misplaced or mis-sized slice is an error, never wrong bytes", async () => {
    await assert.rejects(
      get([
        [0, data.length, slice(0)],
        [1, data.length, slice(1)],
      ]),
      /slices/,
    );
    await assert.rejects(
      get([
        [0, data.length, slice(0)],
        [1, data.length, slice(1)],
        [1, data.length, slice(1)],
      ]),
      /slices/,
    );
    await assert.rejects(get([[3, data.length, slice(2)]]), /bad slice/);
    await assert.rejects(get([[0, data.length, slice(0).subarray(1)]]), /bad slice/);
    await assert.rejects(get([[-1, data.length, slice(0)]]), /bad slice/);
    await assert.rejects(
      get([
        [0, data.length, slice(0)],
        [0, 128 * KiB, slice(0)],
        [2, data.length, slice(2)],
      ]),
      /disagree/,
    );
  });

  test("well-formed slices of bytes that do not match the hash are DATA_LOSS, never the bytes", async () => {
    const rows: [number, number, Buffer][] = [0, 1, 2].map((k) => [k, data.length, slice(k)]);
    await assert.rejects(
      get(rows, randomBytes(32)),
      (e: unknown) =>
        e instanceof CacheroachError &&
        e.code === "ERR_DATA_LOSS" &&
        /does not match its hash/.test(e.message),
    );
  });

  test("no rows is a missing chunk", async () => {
    await assert.rejects(
      get([]),
      (e: unknown) => e instanceof CacheroachError && e.code === "ERR_UNAVAILABLE",
    );
  });
});

describe("chunk reads against PostgreSQL", () => {
  let tdb: TestDatabase;
  let fast: Db;
  let portable: Db;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  // Full chunks, a short last chunk, a one-byte chunk, sizes at a COPY slice boundary (128 KiB);
  // plus one chunk only tenant B has.
  const sizes = [CHUNK, CHUNK, CHUNK - 1, 123_457, 1, 128 * KiB, 128 * KiB + 1, 256 * KiB - 1];
  const chunks = sizes.map((n) => nastyChunk(n));
  const hashes = chunks.map((c) => chunkHash(c));
  const onlyB = nastyChunk(CHUNK);
  const onlyBHash = chunkHash(onlyB);
  let copies = 0;

  before(async () => {
    tdb = await createTestDatabase();
    fast = new Db({ url: tdb.url, maxConnections: 4, dialect: BINARY_COPY });
    portable = new Db({ url: tdb.url, maxConnections: 4 });
    const copyOut = fast.copyOut.bind(fast);
    fast.copyOut = (...args) => {
      copies++;
      return copyOut(...args);
    };
    await portable.migrate();
    for (const t of [tenantA, tenantB]) {
      await fast.query("INSERT INTO tenants (id, label, version) VALUES ($1, 'chunk reads', 1)", [t]);
    }
    const writer = new ChunkStore(portable, { cacheBytes: 0, writeConcurrency: 4 });
    await writer.put(
      tenantA,
      chunks.map((data, i) => ({ hash: hashes[i]!, data })),
    );
    await writer.put(tenantB, [{ hash: onlyBHash, data: onlyB }]);
  });
  after(async () => {
    await fast?.close();
    await portable?.close();
    await tdb?.drop();
  });

  test("binary COPY reads are off unless the dialect enables them", () => {
    assert.equal(portable.binaryCopyReads, false);
    assert.equal(fast.binaryCopyReads, true);
  });

  for (const mode of ["binary COPY", "portable query"] as const) {
    test(`${mode}: byte-identical chunks, missing chunks and tenant isolation`, async () => {
      const db = mode === "binary COPY" ? fast : portable;
      const store = new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 1 });
      const before = copies;
      // In parallel, as the read-ahead does, so connections are shared and reused.
      const got = await Promise.all([...hashes, ...hashes].map((h) => store.get(tenantA, h)));
      for (const [i, g] of got.entries()) assert.ok(g.equals(chunks[i % chunks.length]!), `chunk ${i}`);
      assert.equal(copies - before, mode === "binary COPY" ? 2 * hashes.length : 0);

      const missing = (p: Promise<unknown>) =>
        assert.rejects(p, (e: unknown) => e instanceof CacheroachError && e.code === "ERR_UNAVAILABLE");
      await missing(store.get(tenantA, randomBytes(32)));
      await missing(store.get(tenantA, onlyBHash)); // another tenant's chunk
      await missing(store.get(randomUUID(), hashes[0]!));
      assert.ok((await store.get(tenantB, onlyBHash)).equals(onlyB));
      // The connections are still in a clean state for ordinary queries.
      const r = await db.query<{ n: string }>("SELECT count(*) AS n FROM chunks WHERE tenant_id = $1", [
        tenantA,
      ]);
      assert.equal(Number(r.rows[0]!.n), chunks.length);
    });
  }

  test("a tenant id that is not a canonical UUID takes the portable query", async () => {
    const store = new ChunkStore(fast, { cacheBytes: 0, writeConcurrency: 1 });
    const before = copies;
    const braced = `{${tenantA.toUpperCase()}}`; // PostgreSQL accepts it; it is not embedded as SQL
    assert.ok((await store.get(braced, hashes[3]!)).equals(chunks[3]!));
    assert.equal(copies, before);
    await assert.rejects(store.get("x' OR true) TO STDOUT --", hashes[0]!), /uuid/);
  });

  test("the cache serves repeated reads and stays tenant-qualified", async () => {
    const store = new ChunkStore(fast, { cacheBytes: 4 * CHUNK, writeConcurrency: 1 });
    const before = copies;
    assert.ok((await store.get(tenantA, hashes[4]!)).equals(chunks[4]!));
    assert.ok((await store.get(tenantA, hashes[4]!)).equals(chunks[4]!));
    assert.equal(copies - before, 1);
    await assert.rejects(store.get(tenantB, hashes[4]!), /missing/);
  });

  test("server errors reject and leave the pool usable", async () => {
    await assert.rejects(
      fast.copyOut("COPY (SELECT nope FROM chunks) TO STDOUT (FORMAT binary)", { fields: 1, maxBytes: 1 }), // crdb-lint: ok PostgreSQL-only test
      /nope/,
    );
    await assert.rejects(fast.copyOut("SELECT 1", { fields: 1, maxBytes: 1 }), /instead of COPY data/);
    const rows = await fast.copyOut(
      "COPY (SELECT 'a'::bytea, NULL::bytea, ''::bytea) TO STDOUT (FORMAT binary)", // crdb-lint: ok PostgreSQL-only test
      { fields: 3, maxBytes: 10 },
    );
    assert.deepEqual(rows, [[Buffer.from("a"), null, Buffer.alloc(0)]]);
    await assert.rejects(
      fast.copyOut("COPY (SELECT 'a'::bytea) TO STDOUT (FORMAT binary)", { fields: 2, maxBytes: 10 }), // crdb-lint: ok PostgreSQL-only test
      /1 fields, expected 2/,
    );
    for (let i = 0; i < 3; i++) assert.equal((await fast.query("SELECT 1 AS x")).rows[0]!.x, 1);
  });

  for (const mode of ["binary COPY", "portable query"] as const) {
    test(`${mode}: a rope reads back whole and in ranges`, async () => {
      const db = mode === "binary COPY" ? fast : portable;
      const ropeChunks = [chunks[0]!, chunks[1]!, chunks[3]!]; // two full chunks and a short last one
      const h = new RopeHasher();
      let off = 0;
      const rope: Rope = await (async () => {
        for (const c of ropeChunks) h.add(chunkHash(c), c.length);
        const r: Rope = { hash: h.digest(), size: h.size, chunkCount: h.count, chunkSize: CHUNK };
        for (const c of ropeChunks) {
          await db.query(
            `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING`,
            [tenantA, r.hash, off, chunkHash(c), c.length],
          );
          off += c.length;
        }
        await db.query(
          `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING`,
          [tenantA, r.hash, r.size, r.chunkCount, r.chunkSize],
        );
        return r;
      })();
      const whole = Buffer.concat(ropeChunks);
      const ropes = new RopeStore(db, new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 1 }), 4);
      const read = async (from: number, length: number) => {
        const parts: Buffer[] = [];
        for await (const b of ropes.read(tenantA, rope, from, length)) parts.push(Buffer.from(b));
        return Buffer.concat(parts);
      };
      assert.ok((await read(0, rope.size)).equals(whole));
      for (const [from, length] of [
        [0, 1],
        [CHUNK - 1, 2],
        [CHUNK + 5, CHUNK],
        [rope.size - 10, 100],
        [17, rope.size],
      ] as const) {
        assert.ok(
          (await read(from, length)).equals(whole.subarray(from, from + length)),
          `${from}+${length}`,
        );
      }
      assert.equal((await read(rope.size, 10)).length, 0);
      // Another tenant has neither the chunk list nor the chunks.
      await assert.rejects(
        ropes.read(tenantB, rope, 0, 1).next(),
        (e: unknown) => e instanceof CacheroachError && e.code === "ERR_DATA_LOSS",
      );
    });
  }
});
