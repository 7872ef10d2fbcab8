/**
 * Limit rows 1a and 1b: what PostgreSQL itself sustains for the large file's bytes, with no
 * cacheroach in between.
 *
 * Ingest (1a) writes the file's 512 KiB chunks as rows of a scratch table shaped like cacheroach's
 * `chunks` table (`tenant_id UUID, hash BYTEA, data BYTEA`, primary key `(tenant_id, hash)`, `data`
 * stored EXTERNAL as the server sets it), on the same database, from the same page-cached file,
 * hashing each chunk with the same BLAKE3 as the server. Several methods are tried: `INSERT … ON
 * CONFLICT DO NOTHING` (what the server does) with 1, 2 and 4 connections grouping 16 rows per
 * transaction and with 4 connections in autocommit; and the database's own bulk path, `COPY … FROM
 * STDIN (FORMAT binary)` (framing written by bench/copy-in.ts), one COPY per connection, with 1, 2
 * and 4 connections (COPY has no ON CONFLICT: the table is empty, so nothing conflicts). The best
 * attempt is the limit — the fastest this `pg` client + this PostgreSQL + this disk store the bytes
 * durably, which is the work of a cold upload minus cacheroach's own costs (the upload protocol,
 * rope rows, HTTP/RPC framing, the extra process hop) — and the row names the method that won. The
 * table is recreated and a CHECKPOINT is taken before each attempt (and before cacheroach's
 * upload), so every attempt starts with no dirty pages.
 *
 * Read (1b) fetches every chunk back by primary key, one statement per chunk: as the server reads
 * on PostgreSQL (store/chunk-store.ts), a binary `COPY (SELECT k, length(data), substring(data …))
 * TO STDOUT (FORMAT binary)` in 128 KiB slices parsed by the server's own db/copy-binary.ts, with 1,
 * 2 and 4 connections; the same COPY of the whole 512 KiB value as one field, 4 connections; and a
 * plain SELECT in text (hex) mode (the server's portable path; pg 8.23's `binary: true` corrupts
 * bytea), 4 connections. The best is the limit for a cold download, which must fetch the same rows
 * (plus hashing, framing and sending them).
 */
import { open } from "node:fs/promises";
import { chunkHash } from "@cacheroach/core";
import type pg from "pg";
import { copyOutBinary } from "../packages/server/src/db/copy-binary.js";
import { copyInBinary, uuidBytes } from "./copy-in.js";
import type { BenchDatabase } from "./database.js";
import { CHUNK, chunkCount, MiB, readChunk } from "./payload.js";

/** One attempted method and its rate. */
export interface Attempt {
  label: string;
  mibps: number;
}

/** A limit: the best attempt and all of them. */
export interface Limit {
  best: Attempt;
  attempts: Attempt[];
}

const TABLE = "bench_raw_chunks";
/** Any UUID: the scratch table has no foreign key. */
const TENANT = "00000000-0000-4000-8000-00000000be9c";

/** Ingest methods tried: INSERT [connections, rows per transaction (1 = autocommit)], or COPY [connections]. */
const INGEST_SHAPES: ({ insert: number; batch: number } | { copy: number })[] = [
  { insert: 1, batch: 16 },
  { insert: 2, batch: 16 },
  { insert: 4, batch: 16 },
  { insert: 4, batch: 1 },
  { copy: 1 },
  { copy: 2 },
  { copy: 4 },
];

/** Runs every ingest method; leaves the table holding all the file's chunks for {@link rawRead}. */
export async function rawIngest(db: BenchDatabase, file: string, size: number): Promise<Limit> {
  const pool = db.pool(4);
  const fh = await open(file, "r");
  const tenant = uuidBytes(TENANT);
  try {
    const attempts: Attempt[] = [];
    for (const shape of INGEST_SHAPES) {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await pool.query(
        `CREATE TABLE ${TABLE} (tenant_id UUID NOT NULL, hash BYTEA NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (tenant_id, hash))`,
      );
      await pool.query(`ALTER TABLE ${TABLE} ALTER COLUMN data SET STORAGE EXTERNAL`);
      await db.checkpoint(pool);
      const n = chunkCount(size);
      let next = 0;
      const t0 = performance.now();
      if ("insert" in shape) {
        const { batch } = shape;
        await withClients(pool, shape.insert, async (c) => {
          while (next < n) {
            if (batch > 1) await c.query("BEGIN");
            for (let b = 0; b < batch && next < n; b++) {
              const data = await readChunk(fh, next++, size);
              await c.query(
                `INSERT INTO ${TABLE} (tenant_id, hash, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
                [TENANT, chunkHash(data), data],
              );
            }
            if (batch > 1) await c.query("COMMIT");
          }
        });
      } else {
        let stored = 0;
        await withClients(pool, shape.copy, async (c) => {
          const rows = await copyInBinary(
            c,
            `COPY ${TABLE} (tenant_id, hash, data) FROM STDIN (FORMAT binary)`,
            async (send) => {
              while (next < n) {
                const data = await readChunk(fh, next++, size);
                await send([tenant, chunkHash(data), data]);
              }
            },
          );
          stored += rows;
        });
        if (stored !== n) throw new Error(`raw COPY stored ${stored} chunks, expected ${n}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      attempts.push({
        label:
          "insert" in shape
            ? `INSERT, ${shape.insert} conn × ${shape.batch === 1 ? "autocommit" : `${shape.batch} rows/tx`}`
            : `binary COPY, ${shape.copy} conn`,
        mibps: size / MiB / seconds,
      });
    }
    return { best: best(attempts), attempts };
  } finally {
    await fh.close();
    await pool.end();
  }
}

/** Bytes per row of the sliced COPY read: the server's SLICE_BYTES (store/chunk-store.ts). */
const SLICE = 128 << 10;

/** Read methods tried: [method, connections]. */
const READ_SHAPES: ["copy-sliced" | "copy-whole" | "hex", number][] = [
  ["copy-sliced", 1],
  ["copy-sliced", 2],
  ["copy-sliced", 4],
  ["copy-whole", 4],
  ["hex", 4],
];

/** Reads every chunk back by primary key with each method of {@link READ_SHAPES}. */
export async function rawRead(db: BenchDatabase, file: string, size: number): Promise<Limit> {
  const pool = db.pool(4);
  const fh = await open(file, "r");
  try {
    const n = chunkCount(size);
    const hashes: Buffer[] = [];
    for (let i = 0; i < n; i++) hashes.push(chunkHash(await readChunk(fh, i, size)));
    const where = (i: number) =>
      `tenant_id = '${TENANT}' AND hash = decode('${hashes[i]!.toString("hex")}', 'hex')`;
    const readOne: Record<(typeof READ_SHAPES)[number][0], (c: pg.PoolClient, i: number) => Promise<Buffer>> =
      {
        // The server's statement: (slice number, total length, slice), each slice into one buffer.
        "copy-sliced": async (c, i) => {
          let out: Buffer | undefined;
          await copyOutBinary(
            c,
            `COPY (SELECT k, length(data), substring(data FROM k * ${SLICE} + 1 FOR ${SLICE})
           FROM ${TABLE}, generate_series(0, (length(data) - 1) / ${SLICE}) AS k WHERE ${where(i)}) TO STDOUT (FORMAT binary)`,
            {
              fields: 3,
              maxBytes: 2 * CHUNK,
              target: (row, length) => {
                if (row.length < 2) return undefined;
                const k = row[0]!.readInt32BE(0);
                out ??= Buffer.allocUnsafe(row[1]!.readInt32BE(0));
                return out.subarray(k * SLICE, k * SLICE + length);
              },
            },
          );
          return out ?? Buffer.alloc(0);
        },
        "copy-whole": async (c, i) => {
          const rows = await copyOutBinary(
            c,
            `COPY (SELECT data FROM ${TABLE} WHERE ${where(i)}) TO STDOUT (FORMAT binary)`,
            {
              fields: 1,
              maxBytes: 2 * CHUNK,
            },
          );
          return rows[0]?.[0] ?? Buffer.alloc(0);
        },
        hex: async (c, i) => {
          const r = await c.query<{ data: Buffer }>(
            `SELECT data FROM ${TABLE} WHERE tenant_id = $1 AND hash = $2`,
            [TENANT, hashes[i]],
          );
          return r.rows[0]?.data ?? Buffer.alloc(0);
        },
      };
    const label = {
      "copy-sliced": "binary COPY, 128 KiB slices",
      "copy-whole": "binary COPY, whole row",
      hex: "SELECT, text (hex)",
    };
    const attempts: Attempt[] = [];
    for (const [method, conns] of READ_SHAPES) {
      let next = 0;
      let bytes = 0;
      const t0 = performance.now();
      await withClients(pool, conns, async (c) => {
        while (next < n) {
          const i = next++;
          const data = await readOne[method](c, i);
          if (data.length !== Math.min(CHUNK, size - i * CHUNK))
            throw new Error(`raw read (${method}): chunk ${i} is wrong`);
          bytes += data.length;
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      attempts.push({ label: `${label[method]}, ${conns} conn`, mibps: bytes / MiB / seconds });
    }
    return { best: best(attempts), attempts };
  } finally {
    await fh.close();
    await pool.end();
  }
}

/** Drops the scratch table (frees its space before cacheroach's rows run). */
export async function dropRawChunks(db: BenchDatabase): Promise<void> {
  const pool = db.pool(1);
  try {
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await db.checkpoint(pool);
  } finally {
    await pool.end();
  }
}

/** Runs `worker` on `n` pooled connections at once. */
export async function withClients(
  pool: pg.Pool,
  n: number,
  worker: (c: pg.PoolClient) => Promise<void>,
): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  try {
    await Promise.all(clients.map(worker));
  } finally {
    for (const c of clients) c.release();
  }
}

function best(attempts: Attempt[]): Attempt {
  return attempts.reduce((a, b) => (b.mibps > a.mibps ? b : a));
}
