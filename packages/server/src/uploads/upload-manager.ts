import { chunkHash } from "@cacheroach/core";
import { LRUCache } from "lru-cache";
import { CacheroachError } from "../errors.js";
import type { ChunkStore, ChunkWrite } from "../store/chunk-store.js";
import type { FileRecord, WritePrecondition } from "../store/file-meta.js";
import { type FileStore, type NewVersion, noFile, preconditionError } from "../store/file-store.js";
import type { RopeStore } from "../store/rope-store.js";
import type { TenantStore } from "../store/tenant-store.js";
import type { UploadChunk, Uploader, UploadStore } from "../store/upload-store.js";
import type { Quotas } from "./quotas.js";
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

/** Times a write is run again when garbage collection took what it had written before using it. */
const REWRITE_ATTEMPTS = 3;

/** Most files one {@link UploadManager.writeMany} call takes. */
export const MAX_BATCH_FILES = 1000;

export type { Uploader } from "../store/upload-store.js";

/**
 * The Begin → Transfer* → Commit workflow over the stores. In-progress uploads accumulate their
 * chunk list in `upload_chunks`, apart from committed ropes; Commit turns it into an immutable
 * rope and a new file version. Transfer and Commit are idempotent: repeating a call with the same
 * state gives the same result.
 */
export class UploadManager {
  private readonly knownTenants = new LRUCache<string, boolean>({ max: 10_000, ttl: 5_000 });

  constructor(
    private readonly uploads: UploadStore,
    private readonly tenants: TenantStore,
    private readonly chunks: ChunkStore,
    private readonly ropes: RopeStore,
    private readonly files: FileStore,
    readonly codec: UploadStateCodec,
    readonly limits: UploadLimits,
    /** Per-tenant quotas and open-upload limits; none: unlimited. */
    private readonly quotas?: Quotas,
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
    await this.quotas?.checkBegin(tenantId, who.principalId);
    const deadline = Math.floor(Date.now() / 1000) + this.limits.uploadTtlSeconds;
    const decoded: UploadState = {
      uploadId: await this.uploads.create(tenantId, path, who, deadline),
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
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `one-shot content is ${data.length} bytes; the limit is ${this.limits.maxTransferSize} (use Transfer)`,
      );
    }
    const [result] = await this.writeMany(tenantId, [{ ...opts, path, data }]);
    if (result instanceof CacheroachError) throw result;
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
    if (contentHash.length !== 32)
      throw new CacheroachError("ERR_BAD_REQUEST", "content_hash must be 32 bytes");
    const rope = await this.ropes.get(tenantId, contentHash);
    if (!rope) throw unknownContent(contentHash);
    try {
      return await this.files.put(tenantId, path, {
        rope,
        contentType: opts.contentType,
        meta: opts.meta,
        precondition: opts.precondition,
      });
    } catch (err) {
      // Collected since it was looked up (no live file held it any more): as if never stored.
      if (err instanceof CacheroachError && err.code === "ERR_CONTENT_COLLECTED")
        throw unknownContent(contentHash);
      throw err;
    }
  }

  /**
   * Writes whole small files as new versions with batched database work: their chunks, their
   * ropes, and one transaction for all versions. Files succeed or fail independently (a failed
   * precondition or expected hash fails only that file, returned as its CacheroachError); results are
   * in input order. Limits: {@link MAX_BATCH_FILES} distinct paths, max_transfer_size bytes.
   */
  async writeMany(tenantId: string, files: readonly SmallWrite[]): Promise<(FileRecord | CacheroachError)[]> {
    if (files.length === 0 || files.length > MAX_BATCH_FILES) {
      throw new CacheroachError("ERR_BAD_REQUEST", `a batch holds 1..${MAX_BATCH_FILES} files`);
    }
    const paths = new Set<string>();
    let total = 0;
    for (const f of files) {
      if (paths.has(f.path))
        throw new CacheroachError("ERR_BAD_REQUEST", `${f.path} appears twice in one batch`);
      paths.add(f.path);
      total += f.data.length;
    }
    if (total > this.limits.maxTransferSize) {
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `the batch's contents are ${total} bytes; the limit is ${this.limits.maxTransferSize}`,
      );
    }
    await this.requireTenant(tenantId);
    const out: (FileRecord | CacheroachError | undefined)[] = new Array(files.length);
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
    if (todo.length === 0) return out as CacheroachError[];
    const unique = new Map<string, ChunkWrite>();
    for (const t of todo) for (const w of t.writes) unique.set(w.hash.toString("hex"), w);
    await this.quotas?.checkWrite(tenantId, [...unique.values()]);
    const lists = todo.map((t) =>
      t.writes.map((w, k) => ({ offset: k * size, hash: w.hash, length: w.data.length })),
    );
    // Chunks, ropes and versions are written in that order, each referencing the one before only
    // once it is written; garbage collection may collect what is not yet referenced, which the
    // next step then finds missing: everything is written again (see docs/architecture.md).
    return this.rewriteIfCollected(async (attempt) => {
      await this.chunks.put(tenantId, [...unique.values()]);
      const ropes = await this.ropes.commitLists(tenantId, lists, size, attempt > 0);
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
      return out as (FileRecord | CacheroachError)[];
    });
  }

  /** Appends bytes; returns the advanced state. Retrying with the same state and data is a no-op. */
  async transfer(state: UploadState, data: Buffer): Promise<{ state: Buffer; decoded: UploadState }> {
    if (state.final) {
      throw new CacheroachError(
        "ERR_PRECONDITION_FAILED",
        "upload already received its last (short) transfer; commit it",
      );
    }
    if (data.length === 0) throw new CacheroachError("ERR_BAD_REQUEST", "transfer carries no data");
    if (data.length > this.limits.maxTransferSize) {
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `transfer of ${data.length} bytes exceeds max_transfer_size ${this.limits.maxTransferSize}`,
      );
    }
    await this.requireOpen(state);
    const writes = cut(data, state.chunkSize);
    await this.quotas?.checkWrite(state.tenantId, writes);
    await this.chunks.put(state.tenantId, writes);
    const rows = writes.map(
      (w, i): UploadChunk => ({
        off: state.offset + i * state.chunkSize,
        hash: w.hash,
        length: w.data.length,
      }),
    );
    if ((await this.uploads.addChunks(state.uploadId, state.tenantId, rows)) < rows.length) {
      await this.requireSameRows(state, rows); // a retry: the rows must hold exactly what this call carries
    }
    const decoded: UploadState = {
      ...state,
      offset: state.offset + data.length,
      final: data.length % state.chunkSize !== 0,
    };
    return { state: this.codec.encode(decoded), decoded };
  }

  /**
   * The subset of `hashes` the upload's tenant does not store (for the dedup path), in input
   * order, without duplicates. A chunk garbage collection has condemned counts as missing, so the
   * client sends it again (which saves it) instead of relying on it: see docs/architecture.md.
   */
  async findMissing(state: UploadState, hashes: readonly Buffer[]): Promise<Buffer[]> {
    await this.requireOpen(state);
    return this.chunks.missing(state.tenantId, hashes);
  }

  /** Stores client-hashed chunks after verifying each hash; returns how many were new. */
  async putChunks(state: UploadState, chunks: readonly { hash: Buffer; data: Buffer }[]): Promise<number> {
    let total = 0;
    for (const c of chunks) {
      this.verifyChunk(state, c.hash, c.data);
      total += c.data.length;
    }
    if (total > this.limits.maxTransferSize) {
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `chunks total ${total} bytes; the limit per call is ${this.limits.maxTransferSize}`,
      );
    }
    return this.storeVerified(state, chunks);
  }

  /**
   * Refuses a chunk a client sends that is empty, longer than the upload's chunk size, or whose
   * bytes do not hash to the hash it names (ERR_BAD_REQUEST).
   */
  verifyChunk(state: UploadState, hash: Buffer, data: Buffer): void {
    if (data.length === 0 || data.length > state.chunkSize) {
      throw new CacheroachError("ERR_BAD_REQUEST", `chunks must be 1..${state.chunkSize} bytes`);
    }
    if (!chunkHash(data).equals(hash)) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `chunk hash ${hash.toString("hex").slice(0, 16)}… does not match its data; nothing was stored`,
      );
    }
  }

  /**
   * Stores chunks each already checked by {@link verifyChunk} (the caller bounds their total), for
   * an upload that is still open, within the tenant's quota; returns how many were new.
   */
  async storeVerified(
    state: UploadState,
    chunks: readonly { hash: Buffer; data: Buffer }[],
  ): Promise<number> {
    await this.requireOpen(state);
    await this.quotas?.checkWrite(state.tenantId, chunks);
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
      throw new CacheroachError(
        "ERR_PRECONDITION_FAILED",
        "upload already received its last (short) chunk; commit it",
      );
    }
    if (refs.length === 0 || refs.length > 10_000)
      throw new CacheroachError("ERR_BAD_REQUEST", "append needs 1..10000 chunk references");
    refs.forEach((r, i) => {
      if (r.hash.length !== 32) throw new CacheroachError("ERR_BAD_REQUEST", "chunk hashes must be 32 bytes");
      const last = i === refs.length - 1;
      if (r.length < 1 || r.length > state.chunkSize || (!last && r.length !== state.chunkSize)) {
        throw new CacheroachError(
          "ERR_BAD_REQUEST",
          `every chunk but the last must be exactly ${state.chunkSize} bytes`,
        );
      }
    });
    await this.requireOpen(state);
    const rows: UploadChunk[] = [];
    let off = state.offset;
    for (const r of refs) {
      rows.push({ off, hash: r.hash, length: r.length });
      off += r.length;
    }
    const outcome = await this.uploads.appendRefs(state.uploadId, state.tenantId, rows);
    if (outcome.kind === "missing") {
      throw new CacheroachError(
        "ERR_PRECONDITION_FAILED",
        `${outcome.count} referenced chunk(s) are not stored; send them with PutChunks first`,
      );
    }
    if (outcome.kind === "wrongLength") {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `chunk at offset ${outcome.off} is ${outcome.stored} bytes, not the ${outcome.claimed} the request says; nothing was appended`,
      );
    }
    if (outcome.inserted < refs.length) {
      await this.requireSameRows(state, rows); // a retry: the rows must hold exactly what this call names
    }
    const last = refs[refs.length - 1]!;
    const decoded: UploadState = { ...state, offset: off, final: last.length !== state.chunkSize };
    return { state: this.codec.encode(decoded), decoded };
  }

  /** Commits an upload as a new file version; a repeated commit returns the same version. */
  async commit(state: UploadState, opts: CommitOptions): Promise<FileRecord> {
    const done = await this.committedVersion(state);
    if (done !== undefined) return this.committedFile(state, done);
    let raced = false;
    let file: FileRecord;
    try {
      // The upload's chunk list keeps its chunks from being collected, but the rope built from it
      // is unreferenced until the version is written: collected meanwhile, it is built again.
      file = await this.rewriteIfCollected(async (attempt) => {
        const rope = await this.ropes.commitUpload(
          state.tenantId,
          state.uploadId,
          state.offset,
          state.chunkSize,
          attempt > 0,
        );
        if (opts.expectedHash && !opts.expectedHash.equals(rope.hash)) throw hashMismatch(rope.hash);
        return this.files.put(
          state.tenantId,
          state.path,
          { rope, contentType: opts.contentType, meta: opts.meta, precondition: opts.precondition },
          async (q, f) => {
            if (!(await this.uploads.markCommitted(q, state.uploadId, f.version))) {
              raced = true;
              throw new CacheroachError("ERR_VERSION_SKEW", "upload committed concurrently");
            }
          },
        );
      });
    } catch (err) {
      if (!raced) throw err;
      return this.committedFile(state, (await this.committedVersion(state))!);
    }
    // The rope now owns the chunk list; the upload's copy is no longer needed.
    await this.uploads.dropChunks(state.uploadId).catch(() => {});
    return file;
  }

  /**
   * Runs a write again (attempt 1, 2, …: rewriting what it writes even where it exists) when what
   * it wrote was collected before it was referenced: ERR_CONTENT_COLLECTED, from the version's rope
   * check or from a rope's chunk list whose chunk was collected.
   */
  private async rewriteIfCollected<T>(write: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write(attempt);
      } catch (err) {
        const collected = err instanceof CacheroachError && err.code === "ERR_CONTENT_COLLECTED";
        if (!collected || attempt >= REWRITE_ATTEMPTS) throw err;
      }
    }
  }

  /** Refuses a retried Transfer/Append unless the upload's rows at its offsets are exactly `rows`. */
  private async requireSameRows(state: UploadState, rows: readonly UploadChunk[]): Promise<void> {
    const end = rows.reduce((n, r) => Math.max(n, r.off + r.length), state.offset);
    const existing = await this.uploads.chunksBetween(state.uploadId, state.offset, end);
    const byOff = new Map(existing.map((e) => [e.off, e]));
    for (const r of rows) {
      const e = byOff.get(r.off);
      if (!e?.hash.equals(r.hash) || e.length !== r.length) {
        throw new CacheroachError(
          "ERR_PRECONDITION_FAILED",
          `offset ${r.off} of this upload already holds different data; begin a new upload`,
        );
      }
    }
  }

  /** The version an upload's commit wrote; ERR_NOT_FOUND once it is deleted. */
  private async committedFile(state: UploadState, version: number): Promise<FileRecord> {
    const file = await this.files.get(state.tenantId, state.path, version);
    if (!file) throw noFile(state.path, version);
    return file;
  }

  private async committedVersion(state: UploadState): Promise<number | undefined> {
    const upload = await this.uploads.get(state.uploadId);
    if (upload?.tenantId !== state.tenantId) {
      throw new CacheroachError(
        "ERR_BAD_UPLOAD_STATE",
        "upload not found (expired and collected, or never begun)",
      );
    }
    return upload.committedVersion;
  }

  private async requireTenant(tenantId: string) {
    // Known tenants are remembered briefly; a tenant deleted meanwhile surfaces as a foreign-key
    // violation, which the boundaries report as NotFound too.
    if (this.knownTenants.get(tenantId)) return;
    if (!(await this.tenants.get(tenantId))) {
      throw new CacheroachError("ERR_NOT_FOUND", `tenant ${tenantId} does not exist`);
    }
    this.knownTenants.set(tenantId, true);
  }

  /** Refuses a committed or unknown upload; records the upload's activity (see UploadStore.getActive). */
  private async requireOpen(state: UploadState) {
    const upload = await this.uploads.getActive(state.uploadId);
    if (upload?.tenantId !== state.tenantId) {
      throw new CacheroachError(
        "ERR_BAD_UPLOAD_STATE",
        "upload not found (expired and collected, or never begun); begin the upload again",
      );
    }
    if (upload.committedVersion !== undefined) {
      throw new CacheroachError("ERR_PRECONDITION_FAILED", "upload is already committed; begin a new one");
    }
  }
}

/**
 * The answer to linking content by a hash that no file the session may read holds: the same
 * whether the tenant stores that content or not, so it reveals nothing about what exists.
 */
export function unknownContent(hash: Buffer): CacheroachError {
  return new CacheroachError(
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

function hashMismatch(actual: Buffer, path?: string): CacheroachError {
  return new CacheroachError(
    "ERR_HASH_MISMATCH",
    `${path ? `${path}: ` : ""}content hash is ${actual.toString("hex")}, not the expected one; nothing was written`,
  );
}
