/**
 * Limit rows 1a and 1b: what PostgreSQL itself sustains for the large file's bytes, with no
 * cacheroach in between.
 *
 * Ingest (1a) writes the file's 512 KiB chunks as rows of a scratch table shaped like cacheroach's
 * `chunks` table (`tenant_id UUID, hash BYTEA, data BYTEA`, primary key `(tenant_id, hash)`, the same
 * `ON CONFLICT DO NOTHING`), on the same database, from the same page-cached file, hashing each chunk
 * with the same BLAKE3 as the server. Several shapes are tried — 1, 2 and 4 connections in parallel,
 * each grouping rows into BEGIN/COMMIT transactions, and one connection-per-row autocommit shape — and
 * the best one is the limit: it is the fastest this `pg` client + this PostgreSQL + this disk can
 * store the bytes durably, which is exactly the work of a cold upload minus cacheroach's own costs
 * (the upload protocol, rope rows, HTTP/RPC framing, the extra process hop). The table is truncated
 * and a CHECKPOINT is taken before each attempt (and before cacheroach's upload), so every attempt
 * starts with no dirty pages.
 *
 * Read (1b) selects every chunk back by primary key, one row per query, with 1, 2 and 4 connections,
 * in text (hex) mode (pg 8.23's `binary: true` corrupts bytea) — and the best is the limit for a cold download, which must fetch the
 * same rows the same way (plus hashing, framing and sending them).
 */
import { open } from "node:fs/promises";
import { chunkHash } from "@cacheroach/core";
import type pg from "pg";
import type { BenchDatabase } from "./database.js";
import { CHUNK, chunkCount, MiB, readChunk } from "./payload.js";

/** One attempted shape and its rate. */
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

/** Ingest shapes tried: [connections, rows per transaction (1 = autocommit)]. */
const INGEST_SHAPES: [number, number][] = [
  [1, 16],
  [2, 16],
  [4, 16],
  [4, 1],
];

/** Runs every ingest shape; leaves the table holding all the file's chunks for {@link rawRead}. */
export async function rawIngest(db: BenchDatabase, file: string, size: number): Promise<Limit> {
  const pool = db.pool(4);
  const fh = await open(file, "r");
  try {
    const attempts: Attempt[] = [];
    for (const [conns, batch] of INGEST_SHAPES) {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await pool.query(
        `CREATE TABLE ${TABLE} (tenant_id UUID NOT NULL, hash BYTEA NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (tenant_id, hash))`,
      );
      await db.checkpoint(pool);
      const n = chunkCount(size);
      let next = 0;
      const t0 = performance.now();
      const worker = async (c: pg.PoolClient) => {
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
      };
      await withClients(pool, conns, worker);
      const seconds = (performance.now() - t0) / 1000;
      attempts.push({
        label: `${conns} conn × ${batch === 1 ? "autocommit" : `${batch} rows/tx`}`,
        mibps: size / MiB / seconds,
      });
    }
    return { best: best(attempts), attempts };
  } finally {
    await fh.close();
    await pool.end();
  }
}

/** Reads every chunk back by primary key (text mode) with 1, 2 and 4 connections. */
export async function rawRead(db: BenchDatabase, file: string, size: number): Promise<Limit> {
  const pool = db.pool(4);
  const fh = await open(file, "r");
  try {
    const n = chunkCount(size);
    const hashes: Buffer[] = [];
    for (let i = 0; i < n; i++) hashes.push(chunkHash(await readChunk(fh, i, size)));
    const attempts: Attempt[] = [];
    for (const conns of [1, 2, 4]) {
      let next = 0;
      let bytes = 0;
      const t0 = performance.now();
      await withClients(pool, conns, async (c) => {
        while (next < n) {
          const i = next++;
          const r = await c.query<{ data: Buffer }>(
            `SELECT data FROM ${TABLE} WHERE tenant_id = $1 AND hash = $2`,
            [TENANT, hashes[i]],
          );
          const data = r.rows[0]?.data;
          if (!data || data.length !== Math.min(CHUNK, size - i * CHUNK))
            throw new Error(`raw read: chunk ${i} is wrong`);
          bytes += data.length;
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      attempts.push({ label: `${conns} conn`, mibps: bytes / MiB / seconds });
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
