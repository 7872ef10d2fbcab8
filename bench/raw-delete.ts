/**
 * Limit of row 8: how fast PostgreSQL deletes the rows a collection of the garbage tenant deletes,
 * with nothing else to do.
 *
 * The rows of the tenant that a collection deletes — its dead `file_versions` (deleted or
 * replaced), the `ropes` no remaining version references, their `rope_chunks`, and the `chunks`
 * those list (with their 4 KiB contents, stored out of line in TOAST like the real ones) — are copied into scratch tables made `LIKE … INCLUDING ALL` (the same
 * columns, primary keys and secondary indexes; no foreign keys), CHECKPOINTed, then deleted table by
 * table in the order a collection deletes them, 1000 rows per autocommit statement (a collection's
 * batch), each statement picking its rows by primary key:
 *
 *   DELETE FROM t WHERE tenant_id = $1 AND (key) IN (SELECT key FROM t WHERE tenant_id = $1 ORDER BY key LIMIT 1000)
 *
 * The time of the deletes only (not the copy) is the limit: the same rows and bytes, the same
 * database, disk and durability, minus everything a safe collection must also do (read each page
 * and ask whether every row is still referenced, condemn chunks and sweep them in a later
 * statement, re-check references and foreign keys while deleting, keep `tenant_usage` exact).
 */
import type { BenchDatabase } from "./database.js";

/** A version that stays (not deleted, not replaced by a later one): `v` of tenant $1. */
const STAYS = `v.dtime IS NULL AND NOT EXISTS (SELECT 1 FROM file_versions AS n
  WHERE n.tenant_id = $1 AND n.path = v.path AND n.version > v.version)`;

/**
 * Tables copied and deleted, in a collection's order: their primary key below the tenant, and
 * which of the tenant's rows ($1) a collection deletes (copied in this order, so the later ones
 * may select from the earlier copies).
 */
const TABLES = [
  { table: "file_versions", key: "path, version", garbage: `NOT (${STAYS})` },
  {
    table: "ropes",
    key: "hash",
    garbage: `NOT EXISTS (SELECT 1 FROM file_versions AS s WHERE s.tenant_id = $1 AND s.rope_hash = v.hash
      AND s.dtime IS NULL AND NOT EXISTS (SELECT 1 FROM file_versions AS n
        WHERE n.tenant_id = $1 AND n.path = s.path AND n.version > s.version))`,
  },
  {
    table: "rope_chunks",
    key: "rope_hash, off",
    garbage: "v.rope_hash IN (SELECT hash FROM bench_gc_ropes)",
  },
  { table: "chunks", key: "hash", garbage: "v.hash IN (SELECT chunk_hash FROM bench_gc_rope_chunks)" },
] as const;

/** A collection deletes versions, then ropes with their lists, then chunks. */
const DELETE_ORDER = [TABLES[0], TABLES[2], TABLES[1], TABLES[3]];

const BATCH = 1000;

/** What the raw deletes removed and how long they took. */
export interface RawDelete {
  /** Rows deleted per table. */
  rows: Record<(typeof TABLES)[number]["table"], number>;
  /** Bytes of chunk data deleted. */
  chunkBytes: number;
  /** Statements run. */
  statements: number;
  /** Seconds of the deletes (all tables). */
  seconds: number;
  /** Seconds the copy took (not part of the limit). */
  copySeconds: number;
}

const scratch = (table: string) => `bench_gc_${table}`;

/** Copies `tenant`'s rows to scratch tables, times their batched deletion, drops the tables. */
export async function rawDelete(db: BenchDatabase, tenant: string): Promise<RawDelete> {
  const pool = db.pool(1);
  try {
    // One connection: a runaway plan fails the row instead of hanging the benchmark.
    await pool.query("SET statement_timeout = '300s'");
    let t0 = performance.now();
    for (const { table, garbage } of TABLES) {
      await pool.query(`DROP TABLE IF EXISTS ${scratch(table)}`);
      await pool.query(`CREATE TABLE ${scratch(table)} (LIKE ${table} INCLUDING ALL)`);
      await pool.query(
        `INSERT INTO ${scratch(table)} SELECT * FROM ${table} AS v WHERE v.tenant_id = $1 AND ${garbage}`,
        [tenant],
      );
      await pool.query(`ANALYZE ${scratch(table)}`);
    }
    const bytes = await pool.query<{ b: string | null }>(
      `SELECT sum(length(data))::INT8 AS b FROM ${scratch("chunks")}`,
    );
    const copySeconds = (performance.now() - t0) / 1000;
    await db.checkpoint(pool);
    const rows = { file_versions: 0, rope_chunks: 0, ropes: 0, chunks: 0 };
    let statements = 0;
    t0 = performance.now();
    for (const { table, key } of DELETE_ORDER) {
      const t = scratch(table);
      for (;;) {
        const r = await pool.query(
          `DELETE FROM ${t} WHERE tenant_id = $1 AND (${key}) IN (SELECT ${key} FROM ${t} WHERE tenant_id = $1 ORDER BY ${key} LIMIT ${BATCH})`,
          [tenant],
        );
        statements++;
        const n = r.rowCount ?? 0;
        rows[table] += n;
        if (n < BATCH) break;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const { table } of TABLES) await pool.query(`DROP TABLE ${scratch(table)}`);
    await db.checkpoint(pool);
    return { rows, chunkBytes: Number(bytes.rows[0]?.b ?? 0), statements, seconds, copySeconds };
  } finally {
    await pool.end();
  }
}
