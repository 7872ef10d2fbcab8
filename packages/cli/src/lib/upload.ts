/**
 * Uploading one local file with the Uploads protocol:
 *   size 0          → Begin{empty}
 *   size ≤ 1 MiB    → Begin{contents} (one call)
 *   otherwise       → Begin → Transfer* → Commit{expected_content_hash}
 * Large files are streamed from disk one transfer block at a time (the next block is read while the
 * current one is in flight), hashed locally as they go, and every Transfer/Commit is retried with
 * the same state on transient failures (the protocol is idempotent). With `dedup`, large files
 * use Begin → (FindMissing → PutChunks → Append)* → Commit instead, sending only new chunks
 * (dedup-upload.ts).
 */
import { open } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FileMeta, PreconditionSchema, Uploads } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { ChunkBodies } from "./chunk-bodies.js";
import { checkOffset, type Sent, sendDeduplicated } from "./dedup-upload.js";
import { IntegrityError, UserError } from "./errors.js";
import { blockReader, prefetched } from "./file-blocks.js";
import { mtimeMeta } from "./file-times.js";
import { type FileIdentity, type HashCache, identityOf, nowNs } from "./hash-cache.js";
import type { PARALLEL_HASH_MIN_BYTES } from "./hash-pool.js";
import type { Progress } from "./progress.js";
import { type RetryOptions, withRetry } from "./retry.js";
import { ContentHasher, contentHash, hex, RopeHasher } from "./rope-hash.js";

/** Files up to this size are written with one Begin call. */
export const ONE_SHOT_LIMIT = 1 << 20;

/** Upper bound of one Transfer payload, whatever the server allows (bounds client memory). */
export const MAX_BLOCK = 16 << 20;

/** One file to upload. */
export interface UploadJob {
  /** Local file to read. */
  localPath: string;
  /** Destination path in the tenant. */
  remotePath: string;
  /** Size when the file was listed (used for the upload strategy and progress). */
  size: number;
  /** The file's modification time when listed (ms since the epoch), stored as the "mtime" metadata. */
  mtimeMs?: number;
  /**
   * The live remote file at the destination, when the upload should be skipped if the content is
   * the same: the file is still read and hashed (or its hashes taken from the hash cache), but no
   * version is written, and this is returned instead ({@link isUnchanged}).
   */
  remote?: FileMeta;
}

/** Whether `uploadFile` returned the job's remote file because the content was unchanged. */
export function isUnchanged(job: UploadJob, file: FileMeta): boolean {
  return job.remote !== undefined && file === job.remote;
}

/** The user metadata a job's version gets (its local modification time). */
export function jobMeta(job: UploadJob): Record<string, string> {
  return job.mtimeMs === undefined ? {} : mtimeMeta(job.mtimeMs);
}

/** Whether the content hash `hash`, computed with chunk size `chunkSize`, is the remote file's. */
export function sameAsRemote(remote: FileMeta | undefined, hash: Uint8Array, chunkSize: number): boolean {
  if (!remote) return false;
  return (
    (remote.chunkSize === chunkSize || remote.size === 0n) && Buffer.from(remote.contentHash).equals(hash)
  );
}

/** What an upload needs besides the job. */
export interface UploadContext {
  uploads: Client<typeof Uploads>;
  tenantId: string;
  precondition?: MessageInitShape<typeof PreconditionSchema>;
  progress?: Progress;
  retry?: RetryOptions;
  /**
   * Use the dedup-aware path for large files: hash locally, send only the chunks the tenant
   * lacks (FindMissing → PutChunks → Append).
   */
  dedup?: boolean;
  /**
   * Chunk hashes of files uploaded before (dedup path only): an unchanged file is not read again,
   * only the chunks the tenant lacks are. See hash-cache.ts for when an entry is trusted.
   */
  hashCache?: HashCache;
  /** Hash files of {@link PARALLEL_HASH_MIN_BYTES} or more on worker threads (default true). */
  parallelHash?: boolean;
  /** Verbose log (one line per notable decision, e.g. a hash-cache hit). */
  log?: (line: string) => void;
  /**
   * Send the dedup path's new chunks as streamed HTTP bodies (chunk-bodies.ts) rather than
   * PutChunks calls, while the server takes them.
   */
  chunkBodies?: ChunkBodies;
  /** Override of {@link ONE_SHOT_LIMIT} (tests). */
  oneShotLimit?: number;
}

export const onlyUnavailable = (err: unknown) => ConnectError.from(err).code === Code.Unavailable;

/** Uploads one file and returns the written version's metadata. */
export async function uploadFile(job: UploadJob, ctx: UploadContext): Promise<FileMeta> {
  const limit = ctx.oneShotLimit ?? ONE_SHOT_LIMIT;
  const fh = await open(job.localPath, "r");
  try {
    if (job.size <= limit) {
      // Small: read it whole (at most `limit` + 1 bytes, to notice growth).
      const buf = Buffer.allocUnsafe(limit + 1);
      let n = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
        if (n === buf.length) break;
      }
      if (n <= limit) return await oneShot(job, ctx, buf.subarray(0, n));
      // The file grew past the limit since it was listed: fall through to the streaming path.
    }
    if (ctx.dedup && ctx.hashCache) {
      const file = await byContentHash(job, ctx, fh, ctx.hashCache);
      if (file) return file;
    }
    return await streamed(job, ctx, fh);
  } finally {
    await fh.close();
  }
}

export async function oneShot(job: UploadJob, ctx: UploadContext, data: Buffer): Promise<FileMeta> {
  const remote = job.remote;
  if (
    remote &&
    sameAsRemote(remote, contentHash(data, remote.chunkSize > 0 ? remote.chunkSize : 1), remote.chunkSize)
  ) {
    ctx.progress?.add(data.length);
    return remote;
  }
  const committed =
    data.length === 0 ? { case: "empty" as const, value: true } : { case: "contents" as const, value: data };
  // A one-shot Begin writes a version, so it is retried only when the server was not reached.
  const res = await withRetry(
    () =>
      ctx.uploads.begin({
        tenantId: ctx.tenantId,
        path: job.remotePath,
        committed,
        precondition: ctx.precondition,
        meta: jobMeta(job),
      }),
    { ...ctx.retry, retryable: onlyUnavailable },
  );
  const file = res.file;
  if (!file) throw new UserError(`server returned no file for one-shot upload of ${job.remotePath}`, 1);
  if (file.chunkSize > 0 || data.length === 0) {
    const local = contentHash(data, file.chunkSize > 0 ? file.chunkSize : 1);
    if (!local.equals(Buffer.from(file.contentHash))) {
      throw new IntegrityError(
        `${job.remotePath}: server stored content hash ${hex(file.contentHash)}, expected ${hex(local)}`,
      );
    }
  }
  ctx.progress?.add(data.length);
  return file;
}

/**
 * The fastest re-upload: an unchanged file whose chunk hashes are in the hash cache is written by
 * naming its content hash (Begin{content_hash}), and no bytes or chunk lists travel. Undefined when
 * there is no trusted entry or the tenant does not store that content (the caller uploads).
 */
async function byContentHash(
  job: UploadJob,
  ctx: UploadContext,
  fh: Awaited<ReturnType<typeof open>>,
  cache: HashCache,
): Promise<FileMeta | undefined> {
  const id = identityOf(await fh.stat({ bigint: true }));
  const entry = await cache.lookupEntry(id);
  if (!entry || id.size !== BigInt(job.size)) return undefined;
  const rope = new RopeHasher();
  entry.hashes.forEach((h, i) => {
    rope.add(h, Math.min(entry.chunkSize, job.size - i * entry.chunkSize));
  });
  const expected = rope.digest();
  if (sameAsRemote(job.remote, expected, entry.chunkSize)) {
    ctx.log?.(`${job.localPath}: unchanged since hashed, and ${job.remotePath} holds the same content`);
    ctx.progress?.add(job.size);
    return job.remote;
  }
  let res: Awaited<ReturnType<typeof ctx.uploads.begin>>;
  try {
    // Writes a version, so retried only when the server was not reached.
    res = await withRetry(
      () =>
        ctx.uploads.begin({
          tenantId: ctx.tenantId,
          path: job.remotePath,
          committed: { case: "contentHash", value: expected },
          precondition: ctx.precondition,
          meta: jobMeta(job),
        }),
      { ...ctx.retry, retryable: onlyUnavailable },
    );
  } catch (err) {
    if (ConnectError.from(err).code !== Code.NotFound) throw err;
    ctx.log?.(`${job.localPath}: the tenant does not store content ${hex(expected)} yet; uploading it`);
    return undefined;
  }
  const file = res.file;
  if (!file || !expected.equals(Buffer.from(file.contentHash))) {
    throw new IntegrityError(
      `${job.remotePath}: server wrote content hash ${file ? hex(file.contentHash) : "(none)"}, expected ${hex(expected)}`,
    );
  }
  ctx.log?.(`${job.localPath}: unchanged since hashed; wrote content ${hex(expected)} by its hash`);
  ctx.progress?.add(job.size);
  return file;
}

async function streamed(
  job: UploadJob,
  ctx: UploadContext,
  fh: Awaited<ReturnType<typeof open>>,
): Promise<FileMeta> {
  const retry = ctx.retry ?? {};
  const begin = await withRetry(
    () => ctx.uploads.begin({ tenantId: ctx.tenantId, path: job.remotePath, precondition: ctx.precondition }),
    retry,
  );
  const chunkSize = begin.chunkSize;
  const maxTransfer = Math.min(begin.maxTransferSize, MAX_BLOCK);
  if (chunkSize <= 0 || maxTransfer < chunkSize || begin.state.length === 0) {
    throw new UserError(
      `server answered Begin with an unusable upload (chunk_size ${chunkSize}, max_transfer_size ${begin.maxTransferSize})`,
      1,
    );
  }
  let cacheHit = false;
  let dedup: { before: FileIdentity; hashedAtNs: bigint; hashes: Buffer[] } | undefined;
  let outcome: Sent;
  if (ctx.dedup) {
    const hashedAtNs = nowNs();
    const before = identityOf(await fh.stat({ bigint: true }));
    const known = await ctx.hashCache?.lookup(before, chunkSize);
    cacheHit = known !== undefined;
    if (known)
      ctx.log?.(
        `${job.localPath}: unchanged since hashed, reusing ${known.length} chunk hashes from the hash cache`,
      );
    try {
      const r = await sendDeduplicated(
        { ...ctx, job, fh, chunkSize, maxTransfer, packed: begin.packedChunks },
        begin.state,
        known,
      );
      dedup = { before, hashedAtNs, hashes: r.hashes };
      outcome = r;
    } catch (err) {
      // The server re-hashes every chunk it is sent: a cached hash that does not match the file's
      // bytes means the entry was wrong, so drop it before reporting the failure.
      if (cacheHit) {
        await ctx.hashCache?.forget(before);
        ctx.log?.(`${job.localPath}: upload failed with cached chunk hashes; cache entry removed`);
      }
      throw err;
    }
  } else {
    outcome = await sendAll(job, ctx, fh, begin.state, chunkSize, maxTransfer);
  }
  const { state, sent, expected } = outcome;
  if (sent !== job.size) {
    throw new UserError(
      `${job.localPath} changed while it was being uploaded (${job.size} bytes listed, ${sent} read); nothing committed`,
      1,
      ["upload it again once it is no longer being written"],
    );
  }
  if (sameAsRemote(job.remote, expected, chunkSize)) {
    // Same content as the live version: write nothing (the upload expires and is collected).
    ctx.log?.(`${job.localPath}: ${job.remotePath} already holds this content; no new version`);
    if (dedup && !cacheHit && ctx.hashCache) {
      const after = identityOf(await fh.stat({ bigint: true }));
      await ctx.hashCache.record(dedup.before, after, dedup.hashedAtNs, chunkSize, dedup.hashes);
    }
    return job.remote!;
  }
  const res = await withRetry(
    () =>
      ctx.uploads.commit({
        state,
        precondition: ctx.precondition,
        expectedContentHash: expected,
        meta: jobMeta(job),
      }),
    retry,
  );
  const file = res.file;
  if (!file) throw new UserError(`server returned no file when committing ${job.remotePath}`, 1);
  if (!expected.equals(Buffer.from(file.contentHash))) {
    throw new IntegrityError(
      `${job.remotePath}: server committed content hash ${hex(file.contentHash)}, expected ${hex(expected)}`,
    );
  }
  if (dedup && !cacheHit && ctx.hashCache) {
    const after = identityOf(await fh.stat({ bigint: true }));
    await ctx.hashCache.record(dedup.before, after, dedup.hashedAtNs, chunkSize, dedup.hashes);
  }
  return file;
}

/** Transfer path: every byte is sent, in blocks that are multiples of the chunk size. */
async function sendAll(
  job: UploadJob,
  ctx: UploadContext,
  fh: Awaited<ReturnType<typeof open>>,
  initial: Uint8Array,
  chunkSize: number,
  maxTransfer: number,
): Promise<Sent> {
  const retry = ctx.retry ?? {};
  // Every transfer but the last must be a multiple of the chunk size.
  const blockSize = Math.floor(maxTransfer / chunkSize) * chunkSize;
  const hasher = new ContentHasher(chunkSize);
  let state = initial;
  let sent = 0;
  for await (const block of prefetched(blockReader(fh, blockSize))) {
    hasher.update(block);
    const current = state;
    const res = await withRetry(() => ctx.uploads.transfer({ state: current, data: block }), retry);
    sent += block.length;
    checkOffset(job.remotePath, res.offset, sent);
    state = res.state;
    ctx.progress?.add(block.length);
  }
  return { state, sent, expected: hasher.digest() };
}
