/**
 * Uploading one local file with the Uploads protocol:
 *   size 0          → Begin{empty}
 *   size ≤ 1 MiB    → Begin{contents} (one call)
 *   otherwise       → Begin → Transfer* → Commit{expected_content_hash}
 * Large files are streamed from disk one transfer block at a time (the next block is read while the
 * current one is in flight), hashed locally as they go, and every Transfer/Commit is retried with
 * the same state on transient failures (the protocol is idempotent). With `dedup`, large files
 * use Begin → (FindMissing → PutChunks → Append)* → Commit instead, sending only new chunks.
 */
import { open } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FileMeta, PreconditionSchema, Uploads } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { mapLimit, mapOrdered, TaskWindow } from "./concurrency.js";
import { IntegrityError, UserError } from "./errors.js";
import { type FileIdentity, type HashCache, identityOf, nowNs } from "./hash-cache.js";
import { type HashedBlock, type HashPool, PARALLEL_HASH_MIN_BYTES, sharedHashPool } from "./hash-pool.js";
import type { Progress } from "./progress.js";
import { type RetryOptions, withRetry } from "./retry.js";
import { ContentHasher, chunkHash, contentHash, hex, RopeHasher } from "./rope-hash.js";

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
  /** Override of {@link ONE_SHOT_LIMIT} (tests). */
  oneShotLimit?: number;
}

const onlyUnavailable = (err: unknown) => ConnectError.from(err).code === Code.Unavailable;

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

async function oneShot(job: UploadJob, ctx: UploadContext, data: Buffer): Promise<FileMeta> {
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

/**
 * Reads a file sequentially in blocks of a fixed size (only the last may be short), into buffers
 * from `spare` when it has any (callers put back blocks they are done with: allocating 16 MiB per
 * block made garbage collection a third of a 1 GiB re-upload's time).
 */
function blockReader(
  fh: Awaited<ReturnType<typeof open>>,
  blockSize: number,
  spare: Buffer[] = [],
): () => Promise<Buffer> {
  let readPos = 0;
  let eof = false;
  return async () => {
    if (eof) return Buffer.alloc(0);
    const buf = spare.pop() ?? Buffer.allocUnsafe(blockSize);
    let n = 0;
    while (n < blockSize) {
      const { bytesRead } = await fh.read(buf, n, blockSize - n, readPos + n);
      if (bytesRead === 0) {
        eof = true;
        break;
      }
      n += bytesRead;
    }
    readPos += n;
    return buf.subarray(0, n);
  };
}

/** Iterates the blocks of a file, reading the next block while the caller works on the current one. */
async function* prefetched(read: () => Promise<Buffer>): AsyncGenerator<Buffer> {
  let next = read();
  next.catch(() => {}); // awaited below; this only avoids an unhandled rejection if the caller stops first
  for (;;) {
    const block = await next;
    if (block.length === 0) return;
    next = read();
    next.catch(() => {});
    yield block;
  }
}

/** Blocks of a file with their chunk hashes, hashed on this thread while the next block is read. */
async function* hashedHere(read: () => Promise<Buffer>, chunkSize: number): AsyncGenerator<HashedBlock> {
  for await (const block of prefetched(read)) {
    const hashes: Buffer[] = [];
    for (let off = 0; off < block.length; off += chunkSize) {
      hashes.push(chunkHash(block.subarray(off, Math.min(off + chunkSize, block.length))));
    }
    yield { block, hashes };
  }
}

/** Read blocks kept for reuse per upload (16 MiB each). */
const SPARE_BLOCKS = 4;

/** Blocks hashed on worker threads, up to this many at once, in order. */
const HASHING_DEPTH = 3;

/** The blocks `read` returns, until the empty one that marks the end of the file. */
async function* blocksOf(read: () => Promise<Buffer>): AsyncGenerator<Buffer> {
  for (let block = await read(); block.length > 0; block = await read()) yield block;
}

/** Blocks of a file with their chunk hashes, hashed by `pool` while the next blocks are read. */
function hashedOnWorkers(
  read: () => Promise<Buffer>,
  pool: HashPool,
  chunkSize: number,
): AsyncGenerator<HashedBlock> {
  return mapOrdered(blocksOf(read), HASHING_DEPTH, (block) => pool.hash(block, chunkSize));
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
      const r = await sendDeduplicated(job, ctx, fh, begin.state, chunkSize, maxTransfer, known);
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
  const res = await withRetry(
    () => ctx.uploads.commit({ state, precondition: ctx.precondition, expectedContentHash: expected }),
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

interface Sent {
  /** The state to commit. */
  state: Uint8Array;
  /** Bytes sent. */
  sent: number;
  /** The content hash computed locally. */
  expected: Buffer;
}

function checkOffset(job: UploadJob, acknowledged: bigint, sent: number): void {
  if (acknowledged !== BigInt(sent)) {
    throw new UserError(
      `${job.remotePath}: server acknowledged ${acknowledged} bytes after ${sent} were sent; upload abandoned`,
      1,
    );
  }
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
    checkOffset(job, res.offset, sent);
    state = res.state;
    ctx.progress?.add(block.length);
  }
  return { state, sent, expected: hasher.digest() };
}

/** Chunks hashed and checked with FindMissing per round of the dedup path (one read block). */
export const DEDUP_BATCH_CHUNKS = 32;
/** Largest round: rounds double while they find nothing to send (re-uploads), up to this. */
export const DEDUP_MAX_ROUND_CHUNKS = 1024;
/** References per round when the chunk hashes come from the hash cache (server limit: 10000). */
export const CACHED_ROUND_CHUNKS = 8192;
/** PutChunks calls in flight per round on the dedup path. */
const PUT_CONCURRENCY = 4;
/** Rounds (FindMissing + PutChunks) in flight at once per file; their Appends stay in order. */
export const ROUNDS_IN_FLIGHT = 3;

/** One chunk of a dedup round; `data` is dropped in rounds larger than one block (re-read if sent). */
interface RoundEntry {
  offset: number;
  hash: Buffer;
  length: number;
  data: Buffer | undefined;
}

/**
 * Dedup path: hash chunks locally, ask FindMissing which ones the tenant lacks, send only those
 * with PutChunks, then Append the references of all of them in order. A round is one 16 MiB
 * block; while rounds find nothing missing (a re-upload) they double, up to 1024 chunks, so a
 * file the tenant already has costs a few round trips per GiB. Bigger rounds keep only hashes in
 * memory and read a chunk again if it turns out to be missing (the server re-hashes it, so a
 * file changed meanwhile fails instead of storing wrong data). The next round is read and hashed
 * while the previous one is in flight.
 *
 * With `known` (chunk hashes from the hash cache) nothing is read up front: rounds are
 * {@link CACHED_ROUND_CHUNKS} references and only missing chunks are read.
 */
async function sendDeduplicated(
  job: UploadJob,
  ctx: UploadContext,
  fh: Awaited<ReturnType<typeof open>>,
  initial: Uint8Array,
  chunkSize: number,
  maxTransfer: number,
  known: Buffer[] | undefined,
): Promise<Sent & { hashes: Buffer[] }> {
  const retry = ctx.retry ?? {};
  const rope = new RopeHasher();
  const hashes: Buffer[] = [];
  let state = initial;
  let sent = 0;
  let roundSize = DEDUP_BATCH_CHUNKS;
  let window = 1;
  let round: RoundEntry[] = [];
  let pos = 0;

  const dataOf = async (e: RoundEntry): Promise<Buffer> => {
    if (e.data) return e.data;
    const buf = Buffer.allocUnsafe(e.length);
    let n = 0;
    while (n < e.length) {
      const { bytesRead } = await fh.read(buf, n, e.length - n, e.offset + n);
      if (bytesRead === 0) throw new UserError(`${job.localPath} shrank while it was being uploaded`, 1);
      n += bytesRead;
    }
    return buf;
  };

  // Rounds overlap: a round's FindMissing and PutChunks run while earlier rounds are still in
  // flight (any state of the upload is valid for them), and its Append waits for the previous
  // round's, so references are appended in order, each with the latest state.
  let appended: Promise<void> = Promise.resolve();
  const flush = (entries: RoundEntry[]): Promise<void> => {
    const previous = appended;
    const current = state;
    const put = async (which: RoundEntry[]) => {
      // Groups of at most maxTransfer bytes per call, PUT_CONCURRENCY calls in flight: the server
      // stores each call's chunks on its own database connection, so ingest runs in parallel.
      const groups: RoundEntry[][] = [];
      let bytes = maxTransfer;
      for (const e of which) {
        if (bytes + e.length > maxTransfer) {
          groups.push([]);
          bytes = 0;
        }
        groups[groups.length - 1]!.push(e);
        bytes += e.length;
      }
      await mapLimit(groups, PUT_CONCURRENCY, async (g) => {
        const chunks = await Promise.all(g.map(async (e) => ({ hash: e.hash, data: await dataOf(e) })));
        await withRetry(() => ctx.uploads.putChunks({ state: current, chunks }), retry);
      });
    };
    const done = (async () => {
      const missing = await withRetry(
        () => ctx.uploads.findMissing({ state: current, hashes: entries.map((e) => e.hash) }),
        retry,
      );
      const lacking = new Set(missing.missing.map((h) => Buffer.from(h).toString("hex")));
      await put(entries.filter((e) => lacking.has(e.hash.toString("hex"))));
      await previous;
      const refs = entries.map((e) => ({ hash: e.hash, length: e.length }));
      const append = () => withRetry(() => ctx.uploads.append({ state, chunks: refs }), retry);
      let res: Awaited<ReturnType<typeof append>>;
      try {
        res = await append();
      } catch (err) {
        // A chunk reported present may have been collected since: send them all, then append again.
        if (ConnectError.from(err).code !== Code.FailedPrecondition) throw err;
        await put(entries);
        res = await append();
      }
      let bytes = 0;
      for (const e of entries) {
        rope.add(e.hash, e.length);
        bytes += e.length;
      }
      sent += bytes;
      checkOffset(job, res.offset, sent);
      state = res.state;
      ctx.progress?.add(bytes);
      if (!known) {
        roundSize = lacking.size === 0 ? Math.min(roundSize * 2, DEDUP_MAX_ROUND_CHUNKS) : DEDUP_BATCH_CHUNKS;
        window = lacking.size === 0 ? 1 : ROUNDS_IN_FLIGHT;
      }
    })();
    appended = done;
    done.catch(() => {}); // awaited by the next round or by the caller
    return done;
  };

  if (known) {
    for (let i = 0; i < known.length; i += CACHED_ROUND_CHUNKS) {
      const entries = known.slice(i, i + CACHED_ROUND_CHUNKS).map((hash, j) => {
        const offset = (i + j) * chunkSize;
        return { offset, hash, length: Math.min(chunkSize, job.size - offset), data: undefined };
      });
      await flush(entries);
    }
    return { state, sent, expected: rope.digest(), hashes: known };
  }

  // While rounds find chunks to send (new content), up to ROUNDS_IN_FLIGHT of them are sent at
  // once, so several PutChunks keep the database busy. While they find none (a re-upload), one is
  // in flight and each is sized by the previous one's answer, so rounds can double. Either way the
  // next round is read and hashed meanwhile.
  const inFlight = new TaskWindow();
  // Read blocks are reused once nothing refers to their bytes any more.
  const blockSize = chunkSize * DEDUP_BATCH_CHUNKS;
  const spare: Buffer[] = [];
  const recycle = (blocks: Buffer[]) => {
    for (const b of blocks) {
      if (b.buffer.byteLength === blockSize && spare.length < SPARE_BLOCKS)
        spare.push(Buffer.from(b.buffer, 0, blockSize));
    }
  };
  let roundBlocks: Buffer[] = [];
  const launch = async (entries: RoundEntry[]) => {
    await inFlight.room(window);
    const held = roundBlocks;
    roundBlocks = [];
    // A failed round stays in the window: the next room() or the final await reports it.
    inFlight.start(async () => {
      await flush(entries);
      recycle(held);
    });
  };
  const read = blockReader(fh, blockSize, spare);
  const blocks =
    job.size >= PARALLEL_HASH_MIN_BYTES && ctx.parallelHash !== false
      ? hashedOnWorkers(read, sharedHashPool(), chunkSize)
      : hashedHere(read, chunkSize);
  for await (const { block, hashes: blockHashes } of blocks) {
    for (let i = 0; i < blockHashes.length; i++) {
      const off = i * chunkSize;
      const data = block.subarray(off, Math.min(off + chunkSize, block.length));
      const hash = blockHashes[i]!;
      hashes.push(hash);
      round.push({ offset: pos, hash, length: data.length, data });
      pos += data.length;
    }
    roundBlocks.push(block);
    if (round.length > DEDUP_BATCH_CHUNKS) {
      for (const e of round) e.data = undefined; // bounded memory: re-read what must be sent
      recycle(roundBlocks);
      roundBlocks = [];
    }
    if (round.length >= roundSize) {
      await inFlight.room(window); // the answer to the previous round may let this one grow
      if (round.length >= roundSize) {
        const entries = round;
        round = [];
        await launch(entries);
      }
    }
  }
  if (round.length > 0) await launch(round);
  await appended;
  return { state, sent, expected: rope.digest(), hashes };
}
