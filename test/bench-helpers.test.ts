/**
 * The benchmark's own protocol and page code (bench/ has no suite of its own; `npm run bench` is
 * never part of `npm test`): the hand-written binary COPY FROM framing of the raw ingest limit
 * must store exactly the rows it is given and leave the connection usable when it fails, and a
 * part run alone (BENCH_ROWS=gc|growth) must replace only its own section of docs/benchmarks.md.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { createTestDatabase, type TestDatabase } from "@cacheroach/server/testing";
import pg from "pg";
import { copyInBinary, uuidBytes } from "../bench/copy-in.js";
import { spliceSection } from "../bench/document.js";
import { curveShape } from "../bench/growth-report.js";

let db: TestDatabase;
let client: pg.Client;

before(async () => {
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(
    "CREATE TABLE t (tenant_id UUID NOT NULL, hash BYTEA NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (tenant_id, hash))",
  );
});

after(async () => {
  await client.end();
  await db.drop();
});

test("binary COPY FROM stores every row byte for byte, small and large fields alike", async () => {
  const tenant = "00000000-0000-4000-8000-0000000000aa";
  // 600 KiB rows: several socket drains; a 1-byte row: the smallest field.
  const rows = Array.from({ length: 40 }, (_, i) => ({
    hash: randomBytes(32),
    data: i === 0 ? Buffer.from([7]) : randomBytes(600 << 10),
  }));
  const n = await copyInBinary(
    client,
    "COPY t (tenant_id, hash, data) FROM STDIN (FORMAT binary)",
    async (send) => {
      for (const r of rows) await send([uuidBytes(tenant), r.hash, r.data]);
    },
  );
  assert.equal(n, rows.length);
  const stored = await client.query<{ tenant_id: string; hash: Buffer; data: Buffer }>(
    "SELECT tenant_id, hash, data FROM t",
  );
  assert.equal(stored.rows.length, rows.length);
  const byHash = new Map(stored.rows.map((r) => [r.hash.toString("hex"), r]));
  for (const r of rows) {
    const s = byHash.get(r.hash.toString("hex"));
    assert.ok(s, "row stored");
    assert.equal(s.tenant_id, tenant);
    assert.ok(s.data.equals(r.data), "data unchanged");
  }
});

test("a failing producer aborts the COPY (nothing stored) and the connection stays usable", async () => {
  await client.query("TRUNCATE t");
  await assert.rejects(
    copyInBinary(client, "COPY t (tenant_id, hash, data) FROM STDIN (FORMAT binary)", async (send) => {
      await send([uuidBytes("00000000-0000-4000-8000-0000000000bb"), randomBytes(32), randomBytes(10)]);
      throw new Error("producer failed");
    }),
    /producer failed/,
  );
  assert.equal((await client.query("SELECT count(*)::int AS n FROM t")).rows[0].n, 0);
});

test("a row the table rejects fails the COPY with the database's error", async () => {
  await assert.rejects(
    copyInBinary(client, "COPY t (tenant_id, hash, data) FROM STDIN (FORMAT binary)", async (send) => {
      const hash = randomBytes(32);
      const tenant = uuidBytes("00000000-0000-4000-8000-0000000000cc");
      await send([tenant, hash, Buffer.from("a")]);
      await send([tenant, hash, Buffer.from("b")]); // duplicate key
    }),
    /duplicate key/,
  );
  assert.equal((await client.query("SELECT 1 AS one")).rows[0].one, 1);
});

test("a part run alone replaces only its own section of the page", () => {
  const page =
    "# B\n\n## Results\n\nr\n\n## Garbage collection (rows 8–9)\n\nold gc\n\n## How each row is measured\n\nhow\n";
  const gc = spliceSection(
    page,
    "## Garbage collection (rows 8–9)",
    "## Garbage collection (rows 8–9)\n\nnew gc\n",
  );
  assert.equal(
    gc,
    "# B\n\n## Results\n\nr\n\n## Garbage collection (rows 8–9)\n\nnew gc\n\n## How each row is measured\n\nhow\n",
  );
  // A section the page lacks goes before the row descriptions; splicing it again replaces it.
  const growth = "## Growth (rows 10–12)\n\ncurves\n";
  const once = spliceSection(gc, "## Growth (rows 10–12)", growth);
  assert.ok(once.includes("new gc\n\n## Growth (rows 10–12)\n\ncurves\n\n## How each row is measured"));
  assert.equal(spliceSection(once, "## Growth (rows 10–12)", growth), once);
});

test("the growth curve is called flat, log n-like or growing by its factors per ×10", () => {
  assert.match(curveShape([10, 11, 12]), /^flat/);
  assert.match(curveShape([10, 15, 25]), /^log n-like/);
  assert.match(curveShape([10, 60, 500]), /^growing with n/);
});
