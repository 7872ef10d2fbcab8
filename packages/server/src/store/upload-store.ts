import { byteaArray } from "../db/arrays.js";
import type { Db, Queryable } from "../db/db.js";
import { isForeignKeyViolation } from "../db/sqlstate.js";

/** One row of an upload's chunk list. */
export interface UploadChunk {
  readonly off: number;
  readonly hash: Buffer;
  readonly length: number;
}

/** Who starts an upload (recorded for audit and garbage collection). */
export interface Uploader {
  readonly principalId: string | undefined;
  readonly sessionId: string | undefined;
}

/** Where an upload stands. */
export interface UploadRecord {
  readonly tenantId: string;
  /** The file version its commit wrote, or undefined while it is open. */
  readonly committedVersion: number | undefined;
}

/** What {@link UploadStore.appendRefs} did. */
export type AppendOutcome =
  /** Every reference was appended (or was there already): `inserted` rows are new. */
  | { readonly kind: "appended"; readonly inserted: number }
  /** Nothing was appended: `count` referenced chunks are not stored. */
  | { readonly kind: "missing"; readonly count: number }
  /** Nothing was appended: the reference at `off` claims `claimed` bytes; the chunk has `stored`. */
  | { readonly kind: "wrongLength"; readonly off: number; readonly claimed: number; readonly stored: number };

/**
 * Uploads in progress: their rows in `uploads` and their chunk lists in `upload_chunks`, kept apart
 * from committed ropes (RopeStore.commitUpload turns a list into a rope).
 */
export class UploadStore {
  constructor(private readonly db: Db) {}

  /** Records a new upload of `path` in a tenant, valid until `deadline` (Unix seconds); its id. */
  async create(tenantId: string, path: string, who: Uploader, deadline: number): Promise<string> {
    const r = await this.db.query<{ id: string }>(
      `INSERT INTO uploads (id, tenant_id, path, principal_id, session_id, expires_at)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, to_timestamp($5)) RETURNING id`,
      [tenantId, path, who.principalId ?? null, who.sessionId ?? null, deadline],
    );
    return r.rows[0]!.id;
  }

  /**
   * Like {@link get}, and records activity: an upload's `active_at` moves to now when it is older
   * than {@link TOUCH_EVERY_SECONDS}, so an upload that is still sending is never collected as idle
   * (and a busy upload costs at most one extra write every few seconds).
   */
  async getActive(uploadId: string): Promise<UploadRecord | undefined> {
    const r = await this.db.query<{ committed_version: string | null; tenant_id: string }>(TOUCH, [uploadId]);
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      tenantId: row.tenant_id,
      committedVersion: row.committed_version === null ? undefined : Number(row.committed_version),
    };
  }

  /** Uploads begun, not committed and not expired (an index range scan over expires_at). */
  async countOpen(): Promise<number> {
    const r = await this.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM uploads WHERE expires_at > now() AND committed_version IS NULL",
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  /**
   * Uploads of one principal in a tenant that are open (not committed, not expired), counted up
   * to `limit` at most (a bounded range scan of the uploads_open index).
   */
  async countOpenBy(tenantId: string, principalId: string, limit: number): Promise<number> {
    const r = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM (
         SELECT 1 FROM uploads
         WHERE tenant_id = $1 AND principal_id = $2 AND committed_version IS NULL AND expires_at > now()
         LIMIT $3
       ) AS o`,
      [tenantId, principalId, limit],
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  /** An upload, or undefined when there is none of that id (expired and collected, or never begun). */
  async get(uploadId: string): Promise<UploadRecord | undefined> {
    const r = await this.db.query<{ committed_version: string | null; tenant_id: string }>(
      "SELECT committed_version, tenant_id FROM uploads WHERE id = $1",
      [uploadId],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      tenantId: row.tenant_id,
      committedVersion: row.committed_version === null ? undefined : Number(row.committed_version),
    };
  }

  /**
   * Adds rows to an upload's chunk list (their chunks are stored); rows at offsets already taken
   * are left as they are. Returns how many rows were new.
   */
  async addChunks(uploadId: string, tenantId: string, rows: readonly UploadChunk[]): Promise<number> {
    const r = await this.db.bulk(ADD_CHUNKS, [
      uploadId,
      tenantId,
      rows.map((c) => c.off),
      byteaArray(rows.map((c) => c.hash)),
      rows.map((c) => c.length),
    ]);
    return r.rowCount ?? 0;
  }

  /**
   * Appends references to chunks the tenant stores at `offsets`, each with the stored chunk's
   * length, but only if every chunk is stored with exactly the claimed length: otherwise nothing.
   */
  async appendRefs(uploadId: string, tenantId: string, refs: readonly UploadChunk[]): Promise<AppendOutcome> {
    let row: AppendRow;
    try {
      const r = await this.db.bulk<AppendRow>(APPEND_REFS, [
        uploadId,
        tenantId,
        refs.map((c) => c.off),
        byteaArray(refs.map((c) => c.hash)),
        refs.map((c) => c.length),
      ]);
      row = r.rows[0]!;
    } catch (err) {
      // A referenced chunk collected between the statement's lookup and its insert.
      if (!isForeignKeyViolation(err)) throw err;
      return { kind: "missing", count: 1 };
    }
    if (Number(row.missing) > 0) return { kind: "missing", count: Number(row.missing) };
    if (row.wrong_off !== null) {
      return {
        kind: "wrongLength",
        off: Number(row.wrong_off),
        claimed: row.wrong_length ?? 0,
        stored: row.stored_length ?? 0,
      };
    }
    return { kind: "appended", inserted: Number(row.inserted) };
  }

  /** The rows of an upload's chunk list at offsets in [from, to). */
  async chunksBetween(uploadId: string, from: number, to: number): Promise<UploadChunk[]> {
    const r = await this.db.query<{ off: string; chunk_hash: Buffer; length: number }>(
      "SELECT off, chunk_hash, length FROM upload_chunks WHERE upload_id = $1 AND off >= $2 AND off < $3 ORDER BY off",
      [uploadId, from, to],
    );
    return r.rows.map((row) => ({ off: Number(row.off), hash: row.chunk_hash, length: row.length }));
  }

  /**
   * Marks an open upload committed as file version `version` (in the transaction `q` that wrote
   * that version); false when it was committed already.
   */
  async markCommitted(q: Queryable, uploadId: string, version: number): Promise<boolean> {
    const r = await q.query(
      "UPDATE uploads SET committed_version = $2, committed_at = now() WHERE id = $1 AND committed_version IS NULL",
      [uploadId, version],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Drops an upload's chunk list (once a rope owns a copy of it). */
  async dropChunks(uploadId: string): Promise<void> {
    await this.db.query("DELETE FROM upload_chunks WHERE upload_id = $1", [uploadId]);
  }
}

/** Seconds an upload's recorded activity may lag behind its real activity. */
export const TOUCH_EVERY_SECONDS = 1;

/**
 * Upload $1's row, its activity time moved to now when it lags by more than
 * {@link TOUCH_EVERY_SECONDS}. The SELECT reads the row as it was before the update (one snapshot),
 * which changes nothing it returns; it refers to the update because CockroachDB refuses a CTE
 * with side effects that the query does not use.
 */
const TOUCH = `WITH t AS (
    UPDATE uploads SET active_at = now()
    WHERE id = $1 AND committed_version IS NULL AND active_at < now() - INTERVAL '${TOUCH_EVERY_SECONDS} seconds'
    RETURNING 1)
  SELECT committed_version, tenant_id FROM uploads WHERE id = $1 AND (SELECT count(*) FROM t) >= 0`;

/** Adds chunk-list rows to upload $1 of tenant $2: offsets $3, hashes $4, lengths $5. */
const ADD_CHUNKS = `INSERT INTO upload_chunks (upload_id, off, tenant_id, chunk_hash, length)
  SELECT $1, u.off, $2, u.hash, u.length FROM unnest($3::INT8[], $4::BYTEA[], $5::INT4[]) AS u (off, hash, length)
  ON CONFLICT (upload_id, off) DO NOTHING`;

/** What {@link APPEND_REFS} reports (INT8 counts arrive as strings). */
interface AppendRow {
  inserted: string;
  missing: string;
  /** The first reference whose claimed length differs from its stored chunk's, if any. */
  wrong_off: string | null;
  wrong_length: number | null;
  stored_length: number | null;
}

/**
 * Appends chunk references ($3 offsets, $4 hashes, $5 claimed lengths) to upload $1 of tenant $2
 * in one statement: each reference is looked up in `chunks`, and the rows are inserted, with the
 * stored chunk's length, only when every chunk exists and every claimed length is its real one.
 * `length(data)` reads the value's header, not its bytes (PostgreSQL keeps chunks uncompressed
 * out of line). The INSERT's count is used in the answer because CockroachDB refuses a CTE with
 * side effects that the query does not use.
 */
const APPEND_REFS = `
  WITH r AS (
    SELECT r.off, r.hash, r.len, c.stored
    FROM unnest($3::INT8[], $4::BYTEA[], $5::INT4[]) AS r (off, hash, len)
    LEFT JOIN LATERAL (SELECT length(data) AS stored FROM chunks WHERE tenant_id = $2 AND hash = r.hash OFFSET 0) AS c ON true
  ),
  bad AS (
    SELECT
      sum(CASE WHEN stored IS NULL THEN 1 ELSE 0 END) AS missing,
      min(CASE WHEN stored <> len THEN off END) AS wrong_off
    FROM r
  ),
  ins AS (
    INSERT INTO upload_chunks (upload_id, off, tenant_id, chunk_hash, length)
    SELECT $1, r.off, $2, r.hash, r.stored FROM r, bad
    WHERE bad.missing = 0 AND bad.wrong_off IS NULL
    ON CONFLICT (upload_id, off) DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM ins) AS inserted, bad.missing, bad.wrong_off,
    (SELECT len FROM r WHERE r.off = bad.wrong_off) AS wrong_length,
    (SELECT stored FROM r WHERE r.off = bad.wrong_off) AS stored_length
  FROM bad`;
