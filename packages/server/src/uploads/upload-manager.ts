import { chunkHash } from "@cacheroach/core";
import { LRUCache } from "lru-cache";
import type { Db } from "../db/db.js";
import { isForeignKeyViolation } from "../db/sqlstate.js";
import { StoreError } from "../errors.js";
import type { ChunkStore, ChunkWrite } from "../store/chunk-store.js";
import type { FileRecord, WritePrecondition } from "../store/file-meta.js";
import { type FileStore, type NewVersion, preconditionError } from "../store/file-store.js";
import type { RopeStore } from "../store/rope-store.js";
import type { UploadState, UploadStateCodec } from "./upload-state.js";

/** Limits and sizes of the upload protocol. */
export interface UploadLimits {
  /** Chunk size new uploads are cut at. */
  readonly chunkSize: number;
  /** Largest Transfer payload (and one-shot content); a multiple of chunkSize. */
  readonly maxTransferSize: number;
  /** How long an upload state stays valid after Begin. */
  readonly uploadTtlSeconds: number;
}

/** File attributes applied at commit. */
export interface CommitOptions {
  readonly meta: Record<string, string>;
  readonly contentType: string;
  readonly precondition: WritePrecondition | undefined;
  /** Fail with ERR_HASH_MISMATCH unless the content hash equals this. */
  readonly expectedHash?: Buffer | undefined;
}

/** One whole file of {@link UploadManager.writeMany}. */
export interface SmallWrite extends CommitOptions {
  readonly path: string;
  readonly data: Buffer;
}

/** Most files one {@link UploadManager.writeMany} call takes. */
export const MAX_BATCH_FILES = 1000;

/** Who starts an upload (recorded for audit and garbage collection). */
export interface Uploader {
  readonly principalId: string | undefined;
  readonly sessionId: string | undefined;
}

/**
 * The Begin → Transfer* → Commit workflow over the stores. In-progress uploads accumulate their
 * chunk list in `upload_chunks`, apart from committed ropes; Commit turns it into an immutable
 * rope and a new file version. Transfer and Commit are idempotent: repeating a call with the same
 * state gives the same result.
 */
export class UploadManager {
  private readonly knownTenants = new LRUCache<string, boolean>({ max: 10_000, ttl: 5_000 });

  constructor(
    private readonly db: Db,
    private readonly chunks: ChunkStore,
    private readonly ropes: RopeStore,
    private readonly files: FileStore,
    readonly codec: UploadStateCodec,
    readonly limits: UploadLimits,
  ) {}

  /** Starts an upload (after checking the precondition early); returns the signed state. */
  async begin(
    tenantId: string,
    path: string,
    who: Uploader,
    pre: WritePrecondition | undefined,
  ): Promise<{ state: Buffer; decoded: UploadState }> {
    await this.requireTenant(tenantId);
    await this.files.check(tenantId, path, pre);
    const deadline = Math.floor(Date.now() / 1000) + this.limits.uploadTtlSeconds;
    const r = await this.db.query<{ id: string }>(
      `INSERT INTO uploads (id, tenant_id, path, principal_id, session_id, expires_at)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, to_timestamp($5)) RETURNING id`,
      [tenantId, path, who.principalId ?? null, who.sessionId ?? null, deadline],
    );
    const decoded: UploadState = {
      uploadId: r.rows[0]!.id,
      tenantId,
      path,
      offset: 0,
      deadline,
      chunkSize: this.limits.chunkSize,
      final: false,
    };
    return { state: this.codec.encode(decoded), decoded };
  }

  /** Writes a whole small content (possibly empty) as a new version in one call. */
  async writeSmall(tenantId: string, path: string, data: Buffer, opts: CommitOptions): Promise<FileRecord> {
    if (data.length > this.limits.maxTransferSize) {
      throw new StoreError(
        "ERR_TOO_LARGE",
        `one-shot content is ${data.length} bytes; the limit is ${this.limits.maxTransferSize} (use Transfer)`,
      );
    }
    const [result] = await this.writeMany(tenantId, [{ ...opts, path, data }]);
    if (result instanceof StoreError) throw result;
    return result!;
  }

  /**
   * Writes a new version whose content the tenant already stores, named by its content (rope)
   * hash, so no bytes travel (a client re-uploading a file it hashed before). The caller has
   * checked that the session may read a file holding that content (auth/content-access.ts); only
   * this tenant's content can be named, anything else is {@link unknownContent}, and the client
   * uploads the bytes instead.
   */
  async writeExisting(
    tenantId: string,
    path: string,
    contentHash: Buffer,
    opts: CommitOptions,
  ): Promise<FileRecord> {
    if (contentHash.length !== 32) throw new StoreError("ERR_BAD_REQUEST", "content_hash must be 32 bytes");
    const rope = await this.ropes.get(tenantId, contentHash);
    if (!rope) throw unknownContent(contentHash);
    return this.files.put(tenantId, path, {
      rope,
      contentType: opts.contentType,
      meta: opts.meta,
      precondition: opts.precondition,
    });
  }

  /**
   * Writes whole small files as new versions with batched database work: their chunks, their
   * ropes, and one transaction for all versions. Files succeed or fail independently (a failed
   * precondition or expected hash fails only that file, returned as its StoreError); results are
   * in input order. Limits: {@link MAX_BATCH_FILES} distinct paths, max_transfer_size bytes.
   */
  async writeMany(tenantId: string, files: readonly SmallWrite[]): Promise<(FileRecord | StoreError)[]> {
    if (files.length === 0 || files.length > MAX_BATCH_FILES) {
      throw new StoreError("ERR_BAD_REQUEST", `a batch holds 1..${MAX_BATCH_FILES} files`);
    }
    const paths = new Set<string>();
    let total = 0;
    for (const f of files) {
      if (paths.has(f.path)) throw new StoreError("ERR_BAD_REQUEST", `${f.path} appears twice in one batch`);
      paths.add(f.path);
      total += f.data.length;
    }
    if (total > this.limits.maxTransferSize) {
      throw new StoreError(
        "ERR_TOO_LARGE",
        `the batch's contents are ${total} bytes; the limit is ${this.limits.maxTransferSize}`,
      );
    }
    await this.requireTenant(tenantId);
    const out: (FileRecord | StoreError | undefined)[] = new Array(files.length);
    // Fail preconditions early (checked again atomically below) so no chunks are written for them.
    if (files.some((f) => f.precondition)) {
      const heads = await this.files.heads(
        tenantId,
        files.map((f) => f.path),
      );
      files.forEach((f, i) => {
        if (f.precondition) out[i] = preconditionError(f.path, heads.get(f.path), f.precondition);
      });
    }
    const size = this.limits.chunkSize;
    const todo = files.flatMap((f, i) => (out[i] ? [] : [{ f, i, writes: cut(f.data, size) }]));
    if (todo.length === 0) return out as StoreError[];
    const unique = new Map<string, ChunkWrite>();
    for (const t of todo) for (const w of t.writes) unique.set(w.hash.toString("hex"), w);
    await this.chunks.put(tenantId, [...unique.values()]);
    const ropes = await this.ropes.commitLists(
      tenantId,
      todo.map((t) => t.writes.map((w, k) => ({ offset: k * size, hash: w.hash, length: w.data.length }))),
      size,
    );
    const versions: { i: number; path: string; version: NewVersion }[] = [];
    todo.forEach(({ f, i }, k) => {
      const rope = ropes[k]!;
      if (f.expectedHash && !f.expectedHash.equals(rope.hash)) {
        out[i] = hashMismatch(rope.hash, f.path);
        return;
      }
      versions.push({
        i,
        path: f.path,
        version: { rope, contentType: f.contentType, meta: f.meta, precondition: f.precondition },
      });
    });
    const written = await this.files.putMany(tenantId, versions);
    written.forEach((r, k) => {
      out[versions[k]!.i] = r;
    });
    return out as (FileRecord | StoreError)[];
  }

  /** Appends bytes; returns the advanced state. Retrying with the same state and data is a no-op. */
  async transfer(state: UploadState, data: Buffer): Promise<{ state: Buffer; decoded: UploadState }> {
    if (state.final) {
      throw new StoreError(
        "ERR_PRECONDITION_FAILED",
        "upload already received its last (short) transfer; commit it",
      );
    }
    if (data.length === 0) throw new StoreError("ERR_BAD_REQUEST", "transfer carries no data");
    if (data.length > this.limits.maxTransferSize) {
      throw new StoreError(
        "ERR_TOO_LARGE",
        `transfer of ${data.length} bytes exceeds max_transfer_size ${this.limits.maxTransferSize}`,
      );
    }
    await this.requireOpen(state);
    const writes = cut(data, state.chunkSize);
    await this.chunks.put(state.tenantId, writes);
    const params: unknown[] = [state.uploadId, state.tenantId];
    const rows = writes.map((w, i) => {
      params.push(state.offset + i * state.chunkSize, w.hash, w.data.length);
      const n = params.length;
      return `($1, $${n - 2}, $2, $${n - 1}, $${n})`;
    });
    const r = await this.db.bulk<{ off: string }>(
      `INSERT INTO upload_chunks (upload_id, off, tenant_id, chunk_hash, length) VALUES ${rows.join(",")}
       ON CONFLICT (upload_id, off) DO NOTHING RETURNING off`,
      params,
    );
    if ((r.rowCount ?? 0) < writes.length) {
      // A retry: the rows must hold exactly what this call carries.
      await this.requireSameRows(
        state,
        writes.map((w, i) => ({
          off: state.offset + i * state.chunkSize,
          hash: w.hash,
          length: w.data.length,
        })),
      );
    }
    const decoded: UploadState = {
      ...state,
      offset: state.offset + data.length,
      final: data.length % state.chunkSize !== 0,
    };
    return { state: this.codec.encode(decoded), decoded };
  }

  /** Stores client-hashed chunks after verifying each hash; returns how many were new. */
  async putChunks(state: UploadState, chunks: readonly { hash: Buffer; data: Buffer }[]): Promise<number> {
    let total = 0;
    for (const c of chunks) {
      if (c.data.length === 0 || c.data.length > state.chunkSize) {
        throw new StoreError("ERR_BAD_REQUEST", `chunks must be 1..${state.chunkSize} bytes`);
      }
      total += c.data.length;
      if (!chunkHash(c.data).equals(c.hash)) {
        throw new StoreError(
          "ERR_BAD_REQUEST",
          `chunk hash ${c.hash.toString("hex").slice(0, 16)}… does not match its data; nothing was stored`,
        );
      }
    }
    if (total > this.limits.maxTransferSize) {
      throw new StoreError(
        "ERR_TOO_LARGE",
        `chunks total ${total} bytes; the limit per call is ${this.limits.maxTransferSize}`,
      );
    }
    await this.requireOpen(state);
    return this.chunks.put(state.tenantId, chunks);
  }

  /**
   * Appends references to chunks the tenant already stores, like a transfer without bytes. Each
   * reference's length is the stored chunk's: a claimed length that differs is refused (nothing of
   * the call is appended), so a file's size and content hash always cover bytes that exist.
   */
  async append(
    state: UploadState,
    refs: readonly { hash: Buffer; length: number }[],
  ): Promise<{ state: Buffer; decoded: UploadState }> {
    if (state.final) {
      throw new StoreError(
        "ERR_PRECONDITION_FAILED",
        "upload already received its last (short) chunk; commit it",
      );
    }
    if (refs.length === 0 || refs.length > 10_000)
      throw new StoreError("ERR_BAD_REQUEST", "append needs 1..10000 chunk references");
    refs.forEach((r, i) => {
      if (r.hash.length !== 32) throw new StoreError("ERR_BAD_REQUEST", "chunk hashes must be 32 bytes");
      const last = i === refs.length - 1;
      if (r.length < 1 || r.length > state.chunkSize || (!last && r.length !== state.chunkSize)) {
        throw new StoreError(
          "ERR_BAD_REQUEST",
          `every chunk but the last must be exactly ${state.chunkSize} bytes`,
        );
      }
    });
    await this.requireOpen(state);
    const offsets: string[] = [];
    let off = state.offset;
    for (const r of refs) {
      offsets.push(String(off));
      off += r.length;
    }
    let result: AppendResult;
    try {
      const r = await this.db.bulk<AppendResult>(APPEND_SQL, [
        state.uploadId,
        state.tenantId,
        offsets,
        refs.map((r) => r.hash),
        refs.map((r) => r.length),
      ]);
      result = r.rows[0]!;
    } catch (err) {
      // A referenced chunk collected between the statement's lookup and its insert.
      if (!isForeignKeyViolation(err)) throw err;
      result = { inserted: "0", missing: "1", wrong_off: null, wrong_length: null, stored_length: null };
    }
    if (Number(result.missing) > 0) {
      throw new StoreError(
        "ERR_PRECONDITION_FAILED",
        `${result.missing} referenced chunk(s) are not stored; send them with PutChunks first`,
      );
    }
    if (result.wrong_off !== null) {
      throw new StoreError(
        "ERR_BAD_REQUEST",
        `chunk at offset ${result.wrong_off} is ${result.stored_length} bytes, not the ${result.wrong_length} the request says; nothing was appended`,
      );
    }
    if (Number(result.inserted) < refs.length) {
      // A retry: the rows must hold exactly what this call names.
      await this.requireSameRows(
        state,
        refs.map((r, i) => ({ off: Number(offsets[i]), hash: r.hash, length: r.length })),
      );
    }
    const last = refs[refs.length - 1]!;
    const decoded: UploadState = { ...state, offset: off, final: last.length !== state.chunkSize };
    return { state: this.codec.encode(decoded), decoded };
  }

  /** Commits an upload as a new file version; a repeated commit returns the same version. */
  async commit(state: UploadState, opts: CommitOptions): Promise<FileRecord> {
    const done = await this.committedVersion(state);
    if (done !== undefined) return this.files.stat(state.tenantId, state.path, done);
    const rope = await this.ropes.commitUpload(state.tenantId, state.uploadId, state.offset, state.chunkSize);
    if (opts.expectedHash && !opts.expectedHash.equals(rope.hash)) throw hashMismatch(rope.hash);
    let raced = false;
    let file: FileRecord;
    try {
      file = await this.files.put(
        state.tenantId,
        state.path,
        { rope, contentType: opts.contentType, meta: opts.meta, precondition: opts.precondition },
        async (q, f) => {
          const u = await q.query(
            "UPDATE uploads SET committed_version = $2, committed_at = now() WHERE id = $1 AND committed_version IS NULL",
            [state.uploadId, f.version],
          );
          if (u.rowCount === 0) {
            raced = true;
            throw new StoreError("ERR_VERSION_SKEW", "upload committed concurrently");
          }
        },
      );
    } catch (err) {
      if (!raced) throw err;
      const v = await this.committedVersion(state);
      return this.files.stat(state.tenantId, state.path, v!);
    }
    // The rope now owns the chunk list; the upload's copy is no longer needed.
    await this.db.query("DELETE FROM upload_chunks WHERE upload_id = $1", [state.uploadId]).catch(() => {});
    return file;
  }

  /** Refuses a retried Transfer/Append unless the upload's rows at its offsets are exactly `rows`. */
  private async requireSameRows(
    state: UploadState,
    rows: readonly { off: number; hash: Buffer; length: number }[],
  ): Promise<void> {
    const end = rows.reduce((n, r) => Math.max(n, r.off + r.length), state.offset);
    const existing = await this.db.query<{ off: string; chunk_hash: Buffer; length: number }>(
      "SELECT off, chunk_hash, length FROM upload_chunks WHERE upload_id = $1 AND off >= $2 AND off < $3",
      [state.uploadId, state.offset, end],
    );
    const byOff = new Map(existing.rows.map((e) => [Number(e.off), e]));
    for (const r of rows) {
      const e = byOff.get(r.off);
      if (!e?.chunk_hash.equals(r.hash) || e.length !== r.length) {
        throw new StoreError(
          "ERR_PRECONDITION_FAILED",
          `offset ${r.off} of this upload already holds different data; begin a new upload`,
        );
      }
    }
  }

  private async committedVersion(state: UploadState): Promise<number | undefined> {
    const r = await this.db.query<{ committed_version: string | null; tenant_id: string }>(
      "SELECT committed_version, tenant_id FROM uploads WHERE id = $1",
      [state.uploadId],
    );
    const row = r.rows[0];
    if (!row || row.tenant_id !== state.tenantId) {
      throw new StoreError(
        "ERR_BAD_UPLOAD_STATE",
        "upload not found (expired and collected, or never begun)",
      );
    }
    return row.committed_version === null ? undefined : Number(row.committed_version);
  }

  private async requireTenant(tenantId: string) {
    // Known tenants are remembered briefly; a tenant deleted meanwhile surfaces as a foreign-key
    // violation, which the boundaries report as NotFound too.
    if (this.knownTenants.get(tenantId)) return;
    const r = await this.db.query("SELECT 1 FROM tenants WHERE id = $1", [tenantId]);
    if (r.rowCount === 0) throw new StoreError("ERR_NOT_FOUND", `tenant ${tenantId} does not exist`);
    this.knownTenants.set(tenantId, true);
  }

  private async requireOpen(state: UploadState) {
    if ((await this.committedVersion(state)) !== undefined) {
      throw new StoreError("ERR_PRECONDITION_FAILED", "upload is already committed; begin a new one");
    }
  }
}

/** What {@link APPEND_SQL} reports (INT8 counts arrive as strings). */
interface AppendResult {
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
const APPEND_SQL = `
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

/**
 * The answer to linking content by a hash that no file the session may read holds: the same
 * whether the tenant stores that content or not, so it reveals nothing about what exists.
 */
export function unknownContent(hash: Buffer): StoreError {
  return new StoreError(
    "ERR_NOT_FOUND",
    `no file this session may read holds content ${hash.toString("hex")}; upload the bytes instead`,
  );
}

/** Cuts data into chunks of `size` bytes (the last may be short) and hashes each. */
export function cut(data: Buffer, size: number): ChunkWrite[] {
  const out: ChunkWrite[] = [];
  for (let off = 0; off < data.length; off += size) {
    const piece = data.subarray(off, Math.min(off + size, data.length));
    out.push({ hash: chunkHash(piece), data: piece });
  }
  return out;
}

function hashMismatch(actual: Buffer, path?: string): StoreError {
  return new StoreError(
    "ERR_HASH_MISMATCH",
    `${path ? `${path}: ` : ""}content hash is ${actual.toString("hex")}, not the expected one; nothing was written`,
  );
}
