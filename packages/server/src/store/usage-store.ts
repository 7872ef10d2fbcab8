import type { Db, Queryable } from "../db/db.js";

/**
 * Rows of `tenant_usage` per tenant: a statement that changes a tenant's physical usage updates
 * one of them, picked at random, so concurrent writers of one tenant rarely wait on one row lock.
 * The usage is the sum over a tenant's rows (at most this many, plus shard 0 of the backfill).
 */
export const USAGE_SHARDS = 8;

/** A shard for one statement: random in 0..USAGE_SHARDS-1. */
export function usageShard(): number {
  return Math.floor(Math.random() * USAGE_SHARDS);
}

/** What a tenant stores physically: its chunks, and their bytes. */
export interface PhysicalUsage {
  readonly chunks: number;
  readonly bytes: number;
}

/** What a tenant holds logically: its live files (heads not deleted), and the sum of their sizes. */
export interface LogicalUsage {
  readonly files: number;
  readonly bytes: number;
}

/** Heads one statement of {@link UsageStore.logical} reads at most. */
const LOGICAL_PAGE = 10_000;

/**
 * Per-tenant usage. Physical usage is exact: every statement that stores chunks adds what it
 * really inserted to `tenant_usage` in the same statement (ChunkStore), and every statement that
 * deletes chunks subtracts what it deleted (GcStore). Logical usage is computed on demand.
 */
export class UsageStore {
  constructor(private readonly db: Db) {}

  /** A tenant's physical usage (the sum over its shards; zeros for a tenant with none). */
  async physical(tenantId: string, q: Queryable = this.db): Promise<PhysicalUsage> {
    const r = await q.query<{ chunks: string; bytes: string }>(
      `SELECT coalesce(sum(chunks), 0)::INT8 AS chunks, coalesce(sum(bytes), 0)::INT8 AS bytes
       FROM tenant_usage WHERE tenant_id = $1`,
      [tenantId],
    );
    const row = r.rows[0];
    return { chunks: Number(row?.chunks ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * A tenant's live files and the sum of their sizes: a range scan of its heads in keyset pages
   * of {@link LOGICAL_PAGE} (one statement each, so no statement scans the whole tenant; a page
   * boundary is a path, so files written during the count are counted or not, never twice).
   * Costs about one page read per 10 000 paths (deleted heads included).
   */
  async logical(tenantId: string): Promise<LogicalUsage> {
    let files = 0;
    let bytes = 0;
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      const r = await this.db.query<{ heads: string; files: string; bytes: string; last: Buffer | null }>(
        // The page's last path by ORDER BY, not max(): PostgreSQL before 17 has no max(bytea).
        `WITH p AS (SELECT path, size, dtime FROM files WHERE tenant_id = $1 AND path > $2 ORDER BY path LIMIT $3)
         SELECT count(*) AS heads,
           coalesce(sum(CASE WHEN dtime IS NULL THEN 1 ELSE 0 END), 0)::INT8 AS files,
           coalesce(sum(CASE WHEN dtime IS NULL THEN size ELSE 0 END), 0)::INT8 AS bytes,
           (SELECT path FROM p ORDER BY path DESC LIMIT 1) AS last
         FROM p`,
        [tenantId, after, LOGICAL_PAGE],
      );
      const row = r.rows[0];
      if (!row || row.last === null) break;
      files += Number(row.files);
      bytes += Number(row.bytes);
      if (Number(row.heads) < LOGICAL_PAGE) break;
      after = row.last;
    }
    return { files, bytes };
  }
}
