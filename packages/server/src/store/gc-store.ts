import { byteaArray } from "../db/arrays.js";
import type { Db } from "../db/db.js";
import { isForeignKeyViolation } from "../db/sqlstate.js";

/**
 * The SQL of garbage collection (lifecycle/gc.ts holds the rules and the argument). Every method
 * works on one bounded batch and re-checks, in the statement that deletes, the condition that made
 * a row garbage: what a concurrent writer references in the meantime is never deleted (the foreign
 * keys enforce it too; a batch that loses that race is rolled back and reported as skipped).
 */

/** A tenant as garbage collection sees it. */
export interface GcTenant {
  readonly id: string;
  readonly label: string;
  /** Per-tenant retention overrides (undefined: the server's default). */
  readonly retainVersions: number | undefined;
  readonly retainSeconds: number | undefined;
  /** Set once the tenant is deleted: its data is purged. */
  readonly deleted: boolean;
}

/** A file version that retention no longer keeps. */
export interface DeadVersion {
  readonly path: Buffer;
  readonly version: number;
}

/** A chunk as the collector classifies it. */
export interface ChunkState {
  readonly hash: Buffer;
  readonly bytes: number;
  readonly referenced: boolean;
  /** When collection condemned it (Unix ms), or undefined. */
  readonly condemnedAt: number | undefined;
}

/** A rope header with its chunk count (the rows deleting it removes). */
export interface RopeState {
  readonly hash: Buffer;
  readonly chunkCount: number;
  readonly referenced: boolean;
}

/** Rows and bytes a batch removed. */
export interface Removed {
  readonly rows: number;
  readonly bytes: number;
}

/** Tables of a purged tenant, children before parents (foreign keys). */
const PURGE_ORDER = [
  { table: "files", key: "path" },
  { table: "file_versions", key: "path, version" },
  { table: "ropes", key: "hash" },
  { table: "rope_chunks", key: "rope_hash, off" },
  { table: "upload_chunks", key: "upload_id, off" },
  { table: "uploads", key: "id" },
  { table: "chunks", key: "hash" },
] as const;

export type PurgeTable = (typeof PURGE_ORDER)[number]["table"];
export const PURGE_TABLES: readonly PurgeTable[] = PURGE_ORDER.map((t) => t.table);

/** `DELETE … LIMIT` for each purged table, portable (PostgreSQL has no DELETE … LIMIT). */
const PURGE: Record<PurgeTable, string> = Object.fromEntries(
  PURGE_ORDER.map(({ table, key }) => [
    table,
    `DELETE FROM ${table} WHERE tenant_id = $1 AND (${key}) IN (SELECT ${key} FROM ${table} WHERE tenant_id = $1 LIMIT $2)`,
  ]),
) as Record<PurgeTable, string>;

/**
 * Dead versions among the versions of tenant $1 at paths in ($2, $3]: a version is dead since the
 * next version's write (superseded) or, for the last one, since its deletion; of each path's dead
 * versions, the newest $5 are kept, and the others go once dead since before $4. Window functions
 * over one bounded page of paths.
 */
const DEAD_VERSIONS = `
  SELECT path, version FROM (
    SELECT path, version, dead_at,
      row_number() OVER (PARTITION BY path ORDER BY version DESC) AS dead_rank
    FROM (
      SELECT path, version,
        COALESCE(lead(mtime) OVER (PARTITION BY path ORDER BY version), dtime) AS dead_at
      FROM file_versions WHERE tenant_id = $1 AND path > $2 AND path <= $3
    ) AS v
    WHERE dead_at IS NOT NULL
  ) AS d
  WHERE dead_at < $4 AND dead_rank > $5
  ORDER BY path, version`;

/**
 * Deletes versions ($2 paths, $3 versions) of tenant $1, each only if it is dead (deleted, or
 * superseded by a later version): never a live head, whatever a concurrent writer did.
 */
const DELETE_VERSIONS = `DELETE FROM file_versions AS fv
  WHERE fv.tenant_id = $1 AND (fv.path, fv.version) IN (SELECT * FROM unnest($2::BYTEA[], $3::INT8[]))
    AND (fv.dtime IS NOT NULL OR EXISTS (SELECT 1 FROM file_versions AS n
      WHERE n.tenant_id = $1 AND n.path = fv.path AND n.version > fv.version))
  RETURNING fv.size`;

/** Is rope `r` referenced by a version of tenant $1? */
const ROPE_REFERENCED = `EXISTS (SELECT 1 FROM file_versions AS fv WHERE fv.tenant_id = $1 AND fv.rope_hash = r.hash)`;

/** Is chunk `c` referenced by a rope or an upload of tenant $1? */
const CHUNK_REFERENCED = `(EXISTS (SELECT 1 FROM rope_chunks AS rc WHERE rc.tenant_id = $1 AND rc.chunk_hash = c.hash)
  OR EXISTS (SELECT 1 FROM upload_chunks AS uc WHERE uc.tenant_id = $1 AND uc.chunk_hash = c.hash))`;

/**
 * Unreferenced ropes among $2 of tenant $1, their headers deleted (locked first: a writer holding
 * one FOR SHARE, about to reference it, makes this wait and then fail on the foreign key).
 */
const DELETE_ROPES = `DELETE FROM ropes AS r
  WHERE r.tenant_id = $1 AND r.hash = ANY($2::BYTEA[]) AND NOT ${ROPE_REFERENCED}
  RETURNING r.hash`;

/** The chunk lists of ropes $2 of tenant $1 (in the transaction that deleted their headers). */
const DELETE_ROPE_LISTS = "DELETE FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = ANY($2::BYTEA[])";

/**
 * Physical usage of tenant $1 lowered by what the CTE `d` (rows with a byte count `n`) deleted,
 * returning that count and bytes. CockroachDB refuses a CTE with side effects that the query
 * does not use, hence the count of `u` in the answer.
 */
function lowerUsage(deleted: string): string {
  return `WITH d AS (${deleted}),
    s AS (SELECT count(*) AS k, COALESCE(sum(n), 0) AS b FROM d),
    u AS (INSERT INTO tenant_usage (tenant_id, shard, chunks, bytes)
      SELECT $1, 0, -s.k, -s.b FROM s WHERE s.k > 0
      ON CONFLICT (tenant_id, shard) DO UPDATE
        SET chunks = tenant_usage.chunks + excluded.chunks, bytes = tenant_usage.bytes + excluded.bytes
      RETURNING 1)
    SELECT s.k, s.b, (SELECT count(*) FROM u) AS touched FROM s`;
}

/** Deletes condemned chunks $2 of tenant $1 condemned before $3, still unreferenced. */
const SWEEP_CHUNKS = lowerUsage(`DELETE FROM chunks AS c
  WHERE c.tenant_id = $1 AND c.hash = ANY($2::BYTEA[]) AND c.condemned_at < $3 AND NOT ${CHUNK_REFERENCED}
  RETURNING length(c.data) AS n`);

export class GcStore {
  constructor(private readonly db: Db) {}

  /** Every tenant, deleted ones included (their data is purged). */
  async tenants(): Promise<GcTenant[]> {
    const r = await this.db.query<{
      id: string;
      label: string;
      retain_versions: string | null;
      retain_seconds: string | null;
      deleted: boolean;
    }>(
      `SELECT id, label, retain_versions, retain_seconds, deleted_at IS NOT NULL AS deleted
       FROM tenants ORDER BY id`,
    );
    return r.rows.map((row) => ({
      id: row.id,
      label: row.label,
      retainVersions: row.retain_versions === null ? undefined : Number(row.retain_versions),
      retainSeconds: row.retain_seconds === null ? undefined : Number(row.retain_seconds),
      deleted: row.deleted,
    }));
  }

  /** The database's clock (Unix ms): every cutoff is measured on it, never on this host's. */
  async now(): Promise<number> {
    const r = await this.db.query<{ ms: string }>("SELECT (extract(epoch FROM now()) * 1000)::INT8 AS ms");
    return Number(r.rows[0]!.ms);
  }

  /** The next `limit` paths of a tenant after `after` (its heads, in path order). */
  async pathsAfter(tenantId: string, after: Buffer, limit: number): Promise<Buffer[]> {
    const r = await this.db.query<{ path: Buffer }>(
      "SELECT path FROM files WHERE tenant_id = $1 AND path > $2 ORDER BY path LIMIT $3",
      [tenantId, after, limit],
    );
    return r.rows.map((row) => row.path);
  }

  /** Dead versions at paths in (after, last] no longer kept (see {@link DEAD_VERSIONS}). */
  async deadVersions(
    tenantId: string,
    after: Buffer,
    last: Buffer,
    deadBefore: number,
    keep: number,
  ): Promise<DeadVersion[]> {
    const r = await this.db.query<{ path: Buffer; version: string }>(DEAD_VERSIONS, [
      tenantId,
      after,
      last,
      new Date(deadBefore),
      keep,
    ]);
    return r.rows.map((row) => ({ path: row.path, version: Number(row.version) }));
  }

  /** Deletes dead versions (see {@link DELETE_VERSIONS}); the rows removed and their logical bytes. */
  async deleteVersions(tenantId: string, versions: readonly DeadVersion[]): Promise<Removed> {
    if (versions.length === 0) return { rows: 0, bytes: 0 };
    const r = await this.db.query<{ size: string }>(DELETE_VERSIONS, [
      tenantId,
      byteaArray(versions.map((v) => v.path)),
      versions.map((v) => v.version),
    ]);
    return { rows: r.rows.length, bytes: r.rows.reduce((n, row) => n + Number(row.size), 0) };
  }

  /**
   * Uploads of a tenant to expire: past their expiry (with a minute's slack for clocks), or not
   * committed and idle since before `idleBefore` (Unix ms; undefined: only expired ones).
   */
  async staleUploads(
    tenantId: string,
    idleBefore: number | undefined,
    after: string,
    limit: number,
  ): Promise<string[]> {
    const r = await this.db.query<{ id: string }>(
      `SELECT id FROM uploads WHERE tenant_id = $1 AND id > $3
         AND (expires_at < now() - INTERVAL '1 minute' OR (committed_version IS NULL AND active_at < $2))
       ORDER BY id LIMIT $4`,
      [tenantId, idleBefore === undefined ? null : new Date(idleBefore), after, limit],
    );
    return r.rows.map((row) => row.id);
  }

  /** Deletes up to `limit` chunk-list rows of an upload; how many. */
  async deleteUploadRows(uploadId: string, limit: number): Promise<number> {
    const r = await this.db.query(
      `DELETE FROM upload_chunks WHERE upload_id = $1
         AND off IN (SELECT off FROM upload_chunks WHERE upload_id = $1 ORDER BY off LIMIT $2)`,
      [uploadId, limit],
    );
    return r.rowCount ?? 0;
  }

  /** Deletes an upload row (and any chunk-list rows appended since its list was emptied). */
  async deleteUpload(uploadId: string): Promise<boolean> {
    const r = await this.db.query("DELETE FROM uploads WHERE id = $1", [uploadId]);
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * When the oldest upload of a tenant that is still open began (Unix ms), or undefined: a chunk
   * condemned after that moment may be relied on by that upload (see lifecycle/gc.ts).
   */
  async oldestOpenUpload(tenantId: string): Promise<number | undefined> {
    const r = await this.db.query<{ ms: string | null }>(
      `SELECT (extract(epoch FROM min(started_at)) * 1000)::INT8 AS ms FROM uploads
       WHERE tenant_id = $1 AND committed_version IS NULL`,
      [tenantId],
    );
    const ms = r.rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Number(ms);
  }

  /** The next page of a tenant's rope headers after `after`, each with whether a version references it. */
  async ropesAfter(tenantId: string, after: Buffer, limit: number): Promise<RopeState[]> {
    const r = await this.db.query<{ hash: Buffer; chunk_count: string; referenced: boolean }>(
      `SELECT r.hash, r.chunk_count, ${ROPE_REFERENCED} AS referenced
       FROM ropes AS r WHERE r.tenant_id = $1 AND r.hash > $2 ORDER BY r.hash LIMIT $3`,
      [tenantId, after, limit],
    );
    return r.rows.map((row) => ({
      hash: row.hash,
      chunkCount: Number(row.chunk_count),
      referenced: row.referenced,
    }));
  }

  /**
   * Deletes the unreferenced ropes among `hashes`, header and chunk list in one transaction (so no
   * header ever lacks its list). A writer that references one of them meanwhile wins: the batch
   * then changes nothing and is retried rope by rope by the caller (`lost` is true).
   */
  async deleteRopes(tenantId: string, hashes: readonly Buffer[]): Promise<{ ropes: number; lost: boolean }> {
    if (hashes.length === 0) return { ropes: 0, lost: false };
    try {
      return await this.db.tx(async (q) => {
        const r = await q.query<{ hash: Buffer }>(DELETE_ROPES, [tenantId, byteaArray(hashes)]);
        if (r.rows.length > 0) {
          await q.query(DELETE_ROPE_LISTS, [tenantId, byteaArray(r.rows.map((row) => row.hash))]);
        }
        return { ropes: r.rows.length, lost: false };
      });
    } catch (err) {
      if (isForeignKeyViolation(err)) return { ropes: 0, lost: true };
      throw err;
    }
  }

  /** The next page of a tenant's chunks after `after`, classified (see {@link ChunkState}). */
  async chunksAfter(tenantId: string, after: Buffer, limit: number): Promise<ChunkState[]> {
    const r = await this.db.query<{
      hash: Buffer;
      n: number;
      referenced: boolean;
      condemned_ms: string | null;
    }>(
      `SELECT c.hash, length(c.data) AS n, ${CHUNK_REFERENCED} AS referenced,
         (extract(epoch FROM c.condemned_at) * 1000)::INT8 AS condemned_ms
       FROM chunks AS c WHERE c.tenant_id = $1 AND c.hash > $2 ORDER BY c.hash LIMIT $3`,
      [tenantId, after, limit],
    );
    return r.rows.map((row) => ({
      hash: row.hash,
      bytes: row.n,
      referenced: row.referenced,
      condemnedAt: row.condemned_ms === null ? undefined : Number(row.condemned_ms),
    }));
  }

  /**
   * Condemns the chunks among `hashes` that are still unreferenced and not condemned, at the
   * database's now(). One short statement (bounded by a statement timeout) so the time it stamps
   * and the time it commits differ by less than `timeoutMs`; returns the hashes condemned.
   */
  async condemn(tenantId: string, hashes: readonly Buffer[], timeoutMs: number): Promise<Buffer[]> {
    if (hashes.length === 0) return [];
    return this.db.tx(async (q) => {
      await q.query(`SET LOCAL statement_timeout = '${Math.max(1, Math.floor(timeoutMs))}ms'`);
      const r = await q.query<{ hash: Buffer }>(
        `UPDATE chunks AS c SET condemned_at = now()
         WHERE c.tenant_id = $1 AND c.hash = ANY($2::BYTEA[]) AND c.condemned_at IS NULL AND NOT ${CHUNK_REFERENCED}
         RETURNING c.hash`,
        [tenantId, byteaArray(hashes)],
      );
      return r.rows.map((row) => row.hash);
    });
  }

  /** Clears the mark of condemned chunks among `hashes` that are referenced again. */
  async save(tenantId: string, hashes: readonly Buffer[]): Promise<number> {
    if (hashes.length === 0) return 0;
    const r = await this.db.query(
      `UPDATE chunks AS c SET condemned_at = NULL
       WHERE c.tenant_id = $1 AND c.hash = ANY($2::BYTEA[]) AND c.condemned_at IS NOT NULL AND ${CHUNK_REFERENCED}`,
      [tenantId, byteaArray(hashes)],
    );
    return r.rowCount ?? 0;
  }

  /**
   * Deletes chunks among `hashes` condemned before `condemnedBefore` (Unix ms) and still
   * unreferenced, lowering the tenant's usage in the same statement. A writer referencing one
   * meanwhile wins (`lost`: nothing of the batch was deleted).
   */
  async sweep(
    tenantId: string,
    hashes: readonly Buffer[],
    condemnedBefore: number,
  ): Promise<Removed & { lost: boolean }> {
    if (hashes.length === 0) return { rows: 0, bytes: 0, lost: false };
    try {
      const r = await this.db.query<{ k: string; b: string }>(SWEEP_CHUNKS, [
        tenantId,
        byteaArray(hashes),
        new Date(condemnedBefore),
      ]);
      return { rows: Number(r.rows[0]?.k ?? 0), bytes: Number(r.rows[0]?.b ?? 0), lost: false };
    } catch (err) {
      if (isForeignKeyViolation(err)) return { rows: 0, bytes: 0, lost: true };
      throw err;
    }
  }

  /** Deletes up to `limit` rows of a deleted tenant's `table`; how many (0: that table is empty). */
  async purge(tenantId: string, table: PurgeTable, limit: number): Promise<number> {
    const r = await this.db.query(PURGE[table], [tenantId, limit]);
    return r.rowCount ?? 0;
  }

  /** Removes a deleted tenant's row (and what still cascades from it: sessions, vhosts, usage). */
  async dropTenant(tenantId: string): Promise<boolean> {
    const r = await this.db.query("DELETE FROM tenants WHERE id = $1 AND deleted_at IS NOT NULL", [tenantId]);
    return (r.rowCount ?? 0) > 0;
  }
}
