/**
 * The dedup path of a large upload: hash chunks locally, ask FindMissing which ones the tenant
 * lacks, send only those with PutChunks, then Append the references of all of them in order.
 *
 * The steps, top-down: {@link sendDeduplicated} cuts the file into rounds ({@link RoundBuilder},
 * sized by {@link RoundPlanner}; or {@link cachedRounds} when the hash cache knows the chunks)
 * and keeps a few in flight; {@link sendRound} sends one round; {@link OrderedAppender} appends
 * the rounds' references in the order they started.
 */
import type { FileHandle } from "node:fs/promises";
import type { TransferResponse, Uploads } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { type ChunkBodies, ChunkRouteMissing } from "./chunk-bodies.js";
import { mapLimit, TaskWindow } from "./concurrency.js";
import { isRetryable, UserError } from "./errors.js";
import { blockReader, hashedHere, hashedOnWorkers } from "./file-blocks.js";
import { type HashedBlock, PARALLEL_HASH_MIN_BYTES, sharedHashPool } from "./hash-pool.js";
import type { Progress } from "./progress.js";
import { type RetryOptions, withRetry } from "./retry.js";
import { RopeHasher } from "./rope-hash.js";

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
/**
 * Read blocks kept for reuse per upload (16 MiB each): as many as can be in use at once (3 being
 * hashed, one gathering, 3 rounds in flight, one waiting for room), so a cold upload allocates
 * no block after its first few (at 4, blocks were dropped and allocated again all along, and
 * fresh memory costs about 3 ms per MiB to touch on the benchmark VM).
 */
const SPARE_BLOCKS = 8;

/** What a send path reports: the state to commit, the bytes sent and the content hash computed locally. */
export interface Sent {
  state: Uint8Array;
  sent: number;
  expected: Buffer;
}

/** Throws unless the server acknowledged exactly the bytes sent so far. */
export function checkOffset(remotePath: string, acknowledged: bigint, sent: number): void {
  if (acknowledged !== BigInt(sent)) {
    throw new UserError(
      `${remotePath}: server acknowledged ${acknowledged} bytes after ${sent} were sent; upload abandoned`,
      1,
    );
  }
}

/** What the dedup path works with: an upload begun, and the local file it sends. */
export interface DedupUpload {
  uploads: Pick<Client<typeof Uploads>, "findMissing" | "putChunks" | "append">;
  /** The local file and its path in the tenant, for messages; `size` as listed. */
  job: { localPath: string; remotePath: string; size: number };
  fh: FileHandle;
  chunkSize: number;
  /** Most bytes per PutChunks call. */
  maxTransfer: number;
  retry?: RetryOptions;
  progress?: Progress;
  /** Hash files of {@link PARALLEL_HASH_MIN_BYTES} or more on worker threads (default true). */
  parallelHash?: boolean;
  /** The server takes packed chunks (BeginResponse.packed_chunks). */
  packed?: boolean;
  /**
   * Send new chunks as streamed HTTP bodies (chunk-bodies.ts) rather than PutChunks calls, while
   * the server takes them.
   */
  chunkBodies?: ChunkBodies;
  /** Verbose log. */
  log?: (line: string) => void;
}

/** One chunk of a dedup round; `data` is dropped in rounds larger than one block (re-read if sent). */
export interface RoundEntry {
  offset: number;
  hash: Buffer;
  length: number;
  data: Buffer | undefined;
}

/**
 * Sends the file of `up` by the dedup path, starting from the upload state `initial`. A round is
 * one 16 MiB block; while rounds find nothing missing (a re-upload) they double, up to 1024 chunks,
 * so a file the tenant already has costs a few round trips per GiB. Bigger rounds keep only hashes
 * in memory and read a chunk again if it turns out to be missing (the server re-hashes it, so a
 * file changed meanwhile fails instead of storing wrong data). The next round is read and hashed
 * while earlier ones are in flight.
 *
 * With `known` (chunk hashes from the hash cache) nothing is read up front: rounds are
 * {@link CACHED_ROUND_CHUNKS} references, one at a time, and only missing chunks are read.
 */
export async function sendDeduplicated(
  up: DedupUpload,
  initial: Uint8Array,
  known: Buffer[] | undefined,
): Promise<Sent & { hashes: Buffer[] }> {
  const appender = new OrderedAppender(up, initial);
  const inOrder = (entries: RoundEntry[]) =>
    appender.run((append) => sendRound(entries, up, appender.state, append));
  if (known) {
    for (const entries of cachedRounds(known, up.chunkSize, up.job.size)) await inOrder(entries);
    return { ...appender.result(), hashes: known };
  }

  // While rounds find chunks to send (new content), up to ROUNDS_IN_FLIGHT of them are sent at
  // once, so several PutChunks keep the database busy. While they find none (a re-upload), one is
  // in flight and each is sized by the previous one's answer, so rounds can double.
  const planner = new RoundPlanner();
  const inFlight = new TaskWindow();
  const blockSize = up.chunkSize * DEDUP_BATCH_CHUNKS;
  const spare = new SpareBlocks(blockSize);
  const builder = new RoundBuilder(up.chunkSize, spare);
  const launch = async () => {
    await inFlight.room(planner.window);
    const { entries, blocks } = builder.take();
    // A failed round stays in the window: the next room() or the final drain() reports it.
    inFlight.start(async () => {
      planner.answered(await inOrder(entries));
      spare.recycle(blocks);
    });
  };
  const read = blockReader(up.fh, blockSize, spare.free);
  const hashed =
    up.job.size >= PARALLEL_HASH_MIN_BYTES && up.parallelHash !== false
      ? hashedOnWorkers(read, sharedHashPool(), up.chunkSize)
      : hashedHere(read, up.chunkSize);
  const hashes: Buffer[] = [];
  for await (const block of hashed) {
    hashes.push(...block.hashes);
    builder.add(block);
    if (builder.length >= planner.size) {
      await inFlight.room(planner.window); // the answer to the previous round may let this one grow
      if (builder.length >= planner.size) await launch();
    }
  }
  if (builder.length > 0) await launch();
  await inFlight.drain();
  return { ...appender.result(), hashes };
}

/** The rounds of a file whose chunk hashes are known: references only, no data read yet. */
export function* cachedRounds(known: Buffer[], chunkSize: number, size: number): Generator<RoundEntry[]> {
  for (let i = 0; i < known.length; i += CACHED_ROUND_CHUNKS) {
    yield known.slice(i, i + CACHED_ROUND_CHUNKS).map((hash, j) => {
      const offset = (i + j) * chunkSize;
      return { offset, hash, length: Math.min(chunkSize, size - offset), data: undefined };
    });
  }
}

/**
 * Sizes the rounds by the answers so far: a round that found nothing missing doubles the next
 * (up to {@link DEDUP_MAX_ROUND_CHUNKS}) with one round in flight; one that found chunks to send
 * goes back to one block, with {@link ROUNDS_IN_FLIGHT} rounds in flight.
 */
export class RoundPlanner {
  /** Chunks in the next round. */
  size = DEDUP_BATCH_CHUNKS;
  /** Rounds in flight at once. */
  window = 1;

  /** Takes the answer of a finished round: how many of its chunks the tenant lacked. */
  answered(missing: number): void {
    if (missing === 0) {
      this.size = Math.min(this.size * 2, DEDUP_MAX_ROUND_CHUNKS);
      this.window = 1;
    } else {
      this.size = DEDUP_BATCH_CHUNKS;
      this.window = ROUNDS_IN_FLIGHT;
    }
  }
}

/**
 * Read blocks kept for reuse once nothing refers to their bytes any more (allocating 16 MiB per
 * block made garbage collection a third of a 1 GiB re-upload's time).
 */
export class SpareBlocks {
  /** Blocks free for the reader. */
  readonly free: Buffer[] = [];

  constructor(private readonly blockSize: number) {}

  /** Takes back blocks of the reader's size (at most {@link SPARE_BLOCKS} are kept). */
  recycle(blocks: Buffer[]): void {
    for (const b of blocks) {
      if (b.buffer.byteLength === this.blockSize && this.free.length < SPARE_BLOCKS)
        this.free.push(Buffer.from(b.buffer, 0, this.blockSize));
    }
  }
}

/**
 * Gathers hashed blocks into the entries of the next round. A round of one block keeps its bytes
 * (they are sent from memory if missing); a larger one drops them and gives its blocks back to be
 * read into again, so memory stays bounded however large rounds grow.
 */
export class RoundBuilder {
  private entries: RoundEntry[] = [];
  private blocks: Buffer[] = [];
  private offset = 0;

  constructor(
    private readonly chunkSize: number,
    private readonly spare: SpareBlocks,
  ) {}

  /** Chunks gathered so far. */
  get length(): number {
    return this.entries.length;
  }

  /** Adds the chunks of the next block of the file. */
  add({ block, hashes }: HashedBlock): void {
    for (const [i, hash] of hashes.entries()) {
      const at = i * this.chunkSize;
      const data = block.subarray(at, Math.min(at + this.chunkSize, block.length));
      this.entries.push({ offset: this.offset, hash, length: data.length, data });
      this.offset += data.length;
    }
    this.blocks.push(block);
    if (this.entries.length > DEDUP_BATCH_CHUNKS) {
      for (const e of this.entries) e.data = undefined; // re-read what must be sent
      this.spare.recycle(this.blocks);
      this.blocks = [];
    }
  }

  /** The round gathered so far, and the blocks its entries still refer to (free once it is sent). */
  take(): { entries: RoundEntry[]; blocks: Buffer[] } {
    const round = { entries: this.entries, blocks: this.blocks };
    this.entries = [];
    this.blocks = [];
    return round;
  }
}

/** Appends a round's chunk references; `resend` sends them all first if the server asks for it. */
export type AppendInOrder = (entries: RoundEntry[], resend: () => Promise<void>) => Promise<void>;

/**
 * Sends one round: FindMissing with `state` (any state of the upload is valid for it), PutChunks of
 * the chunks the tenant lacks, then the append of all references through `append`. Returns how
 * many chunks were missing.
 */
export async function sendRound(
  entries: RoundEntry[],
  up: DedupUpload,
  state: Uint8Array,
  append: AppendInOrder,
): Promise<number> {
  const retry = up.retry ?? {};
  const missing = await withRetry(
    () => up.uploads.findMissing({ state, hashes: entries.map((e) => e.hash) }),
    retry,
  );
  const lacking = new Set(missing.missing.map((h) => Buffer.from(h).toString("hex")));
  await putChunks(
    entries.filter((e) => lacking.has(e.hash.toString("hex"))),
    up,
    state,
  );
  await append(entries, () => putChunks(entries, up, state));
  return lacking.size;
}

/**
 * Sends the data of `entries`: as chunk bodies ({@link postChunks}) when the server takes them,
 * else with PutChunks: groups of at most `maxTransfer` bytes per call, {@link PUT_CONCURRENCY}
 * calls in flight (the server stores each call's chunks on its own database connection, so
 * ingest runs in parallel).
 */
async function putChunks(entries: RoundEntry[], up: DedupUpload, state: Uint8Array): Promise<void> {
  if (entries.length === 0) return;
  if (up.chunkBodies?.supported) {
    try {
      await postChunks(entries, up, up.chunkBodies, state);
      return;
    } catch (err) {
      if (!(err instanceof ChunkRouteMissing)) throw err;
      up.log?.(`${err.message}: the server takes no chunk bodies; sending with PutChunks`);
    }
  }
  const groups = groupsOf(entries, up.maxTransfer);
  await mapLimit(groups, PUT_CONCURRENCY, async (group) => {
    // Consecutive chunks of the file (all of a cold upload's) go packed: one bytes field, a view
    // of the read block where it holds them, which the encoder does not copy per chunk as it
    // does the data of each nested Chunk message.
    const req =
      up.packed && consecutive(group, up.chunkSize)
        ? { state, packedHashes: group.map((e) => e.hash), packedData: await packedData(group, up) }
        : {
            state,
            chunks: await Promise.all(
              group.map(async (e) => ({ hash: e.hash, data: await chunkData(e, up) })),
            ),
          };
    await withRetry(() => up.uploads.putChunks(req), up.retry ?? {});
  });
}

/** Chunk bytes per body: one read block of a cold upload (the server takes 16 max_transfer_sizes). */
const BODY_TRANSFERS = 4;
/**
 * Bodies in flight per round: a cold round is one body; a larger round (a re-upload that finds
 * some chunks missing) reads its chunks again, so this bounds what it holds (32 MiB).
 */
const BODIES_IN_FLIGHT = 2;

/**
 * Sends `entries` as chunk bodies of at most {@link BODY_TRANSFERS} max_transfer_sizes each, the
 * chunks' bytes written from where they are (a cold upload's read block), each body retried
 * whole (storing a chunk twice is a no-op). A body ends after a short chunk (the server takes a
 * short chunk only last).
 */
async function postChunks(
  entries: RoundEntry[],
  up: DedupUpload,
  bodies: ChunkBodies,
  state: Uint8Array,
): Promise<void> {
  const groups = groupsOf(entries, up.maxTransfer * BODY_TRANSFERS, up.chunkSize);
  await mapLimit(groups, BODIES_IN_FLIGHT, async (group) => {
    const chunks = await Promise.all(
      group.map(async (e) => ({ hash: e.hash, data: await chunkData(e, up) })),
    );
    const answer = await withRetry(() => bodies.post(state, chunks), {
      ...up.retry,
      // The route's absence is not retried: the caller falls back.
      retryable: (err) => !(err instanceof ChunkRouteMissing) && (up.retry?.retryable ?? isRetryable)(err),
    });
    up.log?.(`chunk body: ${answer.chunks} chunks, ${answer.bytes} bytes, ${answer.stored} new`);
  });
}

/** `entries` in groups of at most `maxBytes` bytes (each group ends after a chunk shorter than `chunkSize`). */
function groupsOf(entries: readonly RoundEntry[], maxBytes: number, chunkSize = 0): RoundEntry[][] {
  const groups: RoundEntry[][] = [];
  let bytes = maxBytes;
  for (const e of entries) {
    if (bytes + e.length > maxBytes) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1]!.push(e);
    bytes += e.length;
    if (e.length < chunkSize) bytes = maxBytes; // the next chunk starts a new group
  }
  return groups;
}

/** True if `group` is a run of the file's chunks, each but the last a whole chunk. */
function consecutive(group: readonly RoundEntry[], chunkSize: number): boolean {
  for (let i = 1; i < group.length; i++) {
    const prev = group[i - 1]!;
    if (prev.length !== chunkSize || group[i]!.offset !== prev.offset + prev.length) return false;
  }
  return group.length > 0;
}

/**
 * The bytes of a run of consecutive chunks: a view of the read block that holds them all in
 * order, or else read again in one piece.
 */
async function packedData(group: readonly RoundEntry[], up: DedupUpload): Promise<Buffer> {
  const first = group[0]!;
  const last = group[group.length - 1]!;
  const total = last.offset + last.length - first.offset;
  const d0 = first.data;
  if (d0) {
    let at = d0.byteOffset;
    const whole = group.every((e) => {
      const ok = e.data !== undefined && e.data.buffer === d0.buffer && e.data.byteOffset === at;
      at += e.length;
      return ok;
    });
    if (whole) return Buffer.from(d0.buffer, d0.byteOffset, total);
  }
  return chunkData({ offset: first.offset, hash: first.hash, length: total, data: undefined }, up);
}

/** The bytes of a chunk: kept from reading, or read again. */
async function chunkData(e: RoundEntry, up: DedupUpload): Promise<Buffer> {
  if (e.data) return e.data;
  const buf = Buffer.allocUnsafe(e.length);
  let n = 0;
  while (n < e.length) {
    const { bytesRead } = await up.fh.read(buf, n, e.length - n, e.offset + n);
    if (bytesRead === 0) throw new UserError(`${up.job.localPath} shrank while it was being uploaded`, 1);
    n += bytesRead;
  }
  return buf;
}

/**
 * Appends the chunk references of rounds in the order the rounds started, each with the upload
 * state the previous append returned, while the rounds' other calls overlap. Keeps the bytes
 * sent, checked against the server's offsets, and the content hash of what was appended.
 */
export class OrderedAppender {
  private current: Uint8Array;
  private sent = 0;
  private readonly rope = new RopeHasher();
  /** The round started last; the next one appends after it (and fails if it failed). */
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly up: Pick<DedupUpload, "uploads" | "job" | "retry" | "progress">,
    initial: Uint8Array,
  ) {
    this.current = initial;
  }

  /** The upload state after the last append. */
  get state(): Uint8Array {
    return this.current;
  }

  /**
   * Starts one round's `work` now. The `append` it is given appends once every round started
   * earlier has; if one of those failed, it fails with that error instead.
   */
  run<T>(work: (append: AppendInOrder) => Promise<T>): Promise<T> {
    const previous = this.last;
    const done = work(async (entries, resend) => {
      await previous;
      await this.appendNow(entries, resend);
    });
    this.last = done;
    done.catch(() => {}); // reported by the caller, and by the next round's append
    return done;
  }

  /** What was appended: the state to commit, the bytes and their content hash. */
  result(): Sent {
    return { state: this.current, sent: this.sent, expected: this.rope.digest() };
  }

  private async appendNow(entries: RoundEntry[], resend: () => Promise<void>): Promise<void> {
    const refs = entries.map((e) => ({ hash: e.hash, length: e.length }));
    const append = () =>
      withRetry(() => this.up.uploads.append({ state: this.current, chunks: refs }), this.up.retry ?? {});
    let res: TransferResponse;
    try {
      res = await append();
    } catch (err) {
      // A chunk reported present may have been collected since: send them all, then append again.
      if (ConnectError.from(err).code !== Code.FailedPrecondition) throw err;
      await resend();
      res = await append();
    }
    let bytes = 0;
    for (const e of entries) {
      this.rope.add(e.hash, e.length);
      bytes += e.length;
    }
    this.sent += bytes;
    checkOffset(this.up.job.remotePath, res.offset, this.sent);
    this.current = res.state;
    this.up.progress?.add(bytes);
  }
}
