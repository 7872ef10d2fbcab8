import { byteaArray } from "../db/arrays.js";
import type { Db } from "../db/db.js";

/**
 * The reads of an integrity scrub (lifecycle/scrub.ts): every statement is a bounded keyset page
 * or a primary-key / index lookup, never one statement over a whole tenant. Nothing here writes.
 */

/** A stored chunk's key and its stored length (`length(data)` reads a value's header, not its bytes). */
export interface StoredChunk {
  readonly hash: Buffer;
  readonly length: number;
}

/** A rope header as stored. */
export interface RopeHeader {
  readonly hash: Buffer;
  readonly size: number;
  readonly chunkCount: number;
  readonly chunkSize: number;
}

/** One row of a rope's chunk list, with the length of the chunk as stored (null: no such chunk). */
export interface ListedChunk {
  readonly offset: number;
  readonly hash: Buffer;
  readonly length: number;
  readonly stored: number | null;
}

/** A file version that holds a rope. */
export interface VersionRef {
  readonly path: string;
  readonly version: number;
  /** The path's current version, not deleted (what a plain GET serves). */
  readonly live: boolean;
}

/** The lowest UUID: the cursor before the first tenant. */
const FIRST_TENANT = "00000000-0000-0000-0000-000000000000";

export class ScrubStore {
  constructor(private readonly db: Db) {}

  /** True if the tenant exists and is not being deleted. */
  async tenantExists(tenantId: string): Promise<boolean> {
    const r = await this.db.query("SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL", [tenantId]);
    return r.rows.length > 0;
  }

  /** Up to `limit` tenants (not being deleted) with ids after `after`, in id order. */
  async tenantPage(after: string | undefined, limit: number): Promise<string[]> {
    const r = await this.db.query<{ id: string }>(
      "SELECT id FROM tenants WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2",
      [after ?? FIRST_TENANT, limit],
    );
    return r.rows.map((row) => row.id);
  }

  /** Up to `limit` chunks of the tenant with hashes after `after` (bytewise), keys and lengths only. */
  async chunkPage(tenantId: string, after: Buffer, limit: number): Promise<StoredChunk[]> {
    const r = await this.db.query<{ hash: Buffer; length: number }>(
      `SELECT hash, length(data) AS length FROM chunks
       WHERE tenant_id = $1 AND hash > $2 ORDER BY hash LIMIT $3`,
      [tenantId, after, limit],
    );
    return r.rows.map((row) => ({ hash: row.hash, length: Number(row.length) }));
  }

  /**
   * The bytes of the given chunks (one primary-key lookup each, as base64 text: see
   * ChunkStore.selectChunk), keyed by hex hash; a chunk deleted meanwhile is absent. Callers bound
   * the total.
   */
  async chunkData(tenantId: string, hashes: readonly Buffer[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    if (hashes.length === 0) return out;
    const r = await this.db.query<{ hash: Buffer; b64: string }>(
      `SELECT c.hash, encode(c.data, 'base64') AS b64 FROM unnest($2::BYTEA[]) AS v (hash)
       CROSS JOIN LATERAL (SELECT hash, data FROM chunks WHERE tenant_id = $1 AND hash = v.hash OFFSET 0) AS c`,
      [tenantId, byteaArray(hashes)],
    );
    for (const row of r.rows) out.set(row.hash.toString("hex"), Buffer.from(row.b64, "base64"));
    return out;
  }

  /** Up to `limit` rope headers of the tenant with hashes after `after`, in hash order. */
  async ropePage(tenantId: string, after: Buffer, limit: number): Promise<RopeHeader[]> {
    const r = await this.db.query<{ hash: Buffer; size: string; chunk_count: string; chunk_size: number }>(
      `SELECT hash, size, chunk_count, chunk_size FROM ropes
       WHERE tenant_id = $1 AND hash > $2 ORDER BY hash LIMIT $3`,
      [tenantId, after, limit],
    );
    return r.rows.map((row) => ({
      hash: row.hash,
      size: Number(row.size),
      chunkCount: Number(row.chunk_count),
      chunkSize: row.chunk_size,
    }));
  }

  /** True if the tenant still has the rope (garbage collection may have swept it meanwhile). */
  async ropeExists(tenantId: string, hash: Buffer): Promise<boolean> {
    const r = await this.db.query("SELECT 1 FROM ropes WHERE tenant_id = $1 AND hash = $2", [tenantId, hash]);
    return r.rows.length > 0;
  }

  /**
   * Up to `limit` rows of a rope's chunk list after offset `after`, in order, each with the stored
   * length of its chunk (one primary-key lookup per row; null when the chunk is not stored).
   */
  async listPage(tenantId: string, rope: Buffer, after: number, limit: number): Promise<ListedChunk[]> {
    const r = await this.db.query<{ off: string; chunk_hash: Buffer; length: number; stored: number | null }>(
      `SELECT rc.off, rc.chunk_hash, rc.length, c.stored FROM rope_chunks AS rc
       LEFT JOIN LATERAL (SELECT length(data) AS stored FROM chunks
         WHERE tenant_id = $1 AND hash = rc.chunk_hash OFFSET 0) AS c ON true
       WHERE rc.tenant_id = $1 AND rc.rope_hash = $2 AND rc.off > $3
       ORDER BY rc.off LIMIT $4`,
      [tenantId, rope, after, limit],
    );
    return r.rows.map((row) => ({
      offset: Number(row.off),
      hash: row.chunk_hash,
      length: row.length,
      stored: row.stored === null ? null : Number(row.stored),
    }));
  }

  /**
   * Up to `limit` (rope, offset) places where a chunk is listed (index rope_chunks_by_chunk), so a
   * damaged chunk can be traced to the ropes, and files, it breaks.
   */
  async chunkUses(
    tenantId: string,
    chunk: Buffer,
    limit: number,
  ): Promise<{ rope: Buffer; offset: number }[]> {
    const r = await this.db.query<{ rope_hash: Buffer; off: string }>(
      "SELECT rope_hash, off FROM rope_chunks WHERE tenant_id = $1 AND chunk_hash = $2 LIMIT $3",
      [tenantId, chunk, limit],
    );
    return r.rows.map((row) => ({ rope: row.rope_hash, offset: Number(row.off) }));
  }

  /**
   * Up to `limit` file versions holding the rope (index file_versions_by_rope), in no particular
   * order, each marked live when it is its path's current, undeleted version.
   */
  async versionsOf(tenantId: string, rope: Buffer, limit: number): Promise<VersionRef[]> {
    const r = await this.db.query<{ path: Buffer; version: string; live: boolean }>(
      `SELECT v.path, v.version,
         (v.dtime IS NULL AND f.dtime IS NULL AND f.version = v.version) IS TRUE AS live
       FROM file_versions AS v
       LEFT JOIN files AS f ON f.tenant_id = v.tenant_id AND f.path = v.path
       WHERE v.tenant_id = $1 AND v.rope_hash = $2 LIMIT $3`,
      [tenantId, rope, limit],
    );
    return r.rows.map((row) => ({
      path: row.path.toString("utf8"),
      version: Number(row.version),
      live: row.live,
    }));
  }
}
