/**
 * BLAKE3 chunk hashing on worker threads, so hashing a large file overlaps reading it from disk or
 * receiving it from the network instead of taking turns with them on the main thread (BLAKE3 runs
 * at about 1.4 GiB/s per core here; a 1 GiB file is 0.7 s of hashing). Blocks are transferred to
 * a worker and back, never copied. Only worth it for large files: starting a worker costs tens of
 * milliseconds, so callers use it above {@link PARALLEL_HASH_MIN_BYTES}.
 */
import { Worker } from "node:worker_threads";
import { type HashReply, type HashRequest, READY } from "./hash-thread.js";
import { chunkHash, HASH_LENGTH, RopeHasher } from "./rope-hash.js";
import { WorkerCalls } from "./worker-calls.js";

/** Files at least this large are hashed on worker threads. */
export const PARALLEL_HASH_MIN_BYTES = 32 << 20;

/** Bytes a {@link ParallelContentHasher} hands to a worker at a time (chunk-aligned, at least). */
const STAGE_BYTES = 4 << 20;

/** A block and the hashes of its chunks, in order. */
export interface HashedBlock {
  block: Buffer;
  hashes: Buffer[];
}

// The worker entry sits next to this module in dist/. (Run from the TypeScript sources, e.g. under
// tsx, the worker cannot load and blocks are hashed on the calling thread.)
const THREAD_URL = new URL("./hash-thread.js", import.meta.url);

/**
 * A few worker threads hashing blocks; answers come back in any order, matched by id. Blocks are
 * sent only once every worker has loaded; if one cannot start, every block is hashed on the
 * calling thread instead (same result, one core).
 */
export class HashPool {
  private readonly workers: Worker[];
  private readonly calls: WorkerCalls<HashReply>[];
  private seq = 0;
  private failed: Error | undefined;
  private closed = false;
  /** True once every worker said it is ready, false if one failed first. */
  private readonly usable: Promise<boolean>;

  constructor(threads = 2) {
    const readiness: Promise<boolean>[] = [];
    this.workers = [];
    this.calls = [];
    for (let i = 0; i < threads; i++) {
      // Referenced until it is ready, so a process waiting on it stays alive.
      const w = new Worker(THREAD_URL);
      let announce: (ok: boolean) => void = () => {};
      readiness.push(
        new Promise<boolean>((resolve) => {
          announce = resolve;
        }),
      );
      const calls = new WorkerCalls<HashReply>(w, {
        name: "hash worker",
        onOther: (message) => {
          if (message !== READY) return;
          announce(true);
          calls.idle();
        },
      });
      // The worker's own calls have failed (WorkerCalls); the pool stops using the others too.
      const stop = () => {
        announce(false);
        if (calls.failed) this.fail(calls.failed);
      };
      w.on("error", stop);
      w.on("exit", stop);
      this.workers.push(w);
      this.calls.push(calls);
    }
    this.usable = Promise.all(readiness).then((all) => all.every(Boolean));
  }

  /** Whether blocks go to worker threads (false: every worker failed to start; hashed inline). */
  threaded(): Promise<boolean> {
    return this.usable;
  }

  /** One worker failing stops the pool: what any of them owes fails, and blocks are hashed inline. */
  private fail(err: Error): void {
    this.failed ??= err;
    for (const c of this.calls) c.fail(err);
  }

  /**
   * Hashes `block` cut every `chunkSize` bytes. The block's memory moves to a worker and back:
   * the caller must not touch `block` until the promise settles and must use the returned one.
   * A block that shares its memory with other buffers (small pooled ones) is hashed right here.
   */
  async hash(block: Buffer, chunkSize: number): Promise<HashedBlock> {
    if (this.closed) throw new Error("hash pool closed");
    const own =
      block.byteOffset === 0 &&
      block.buffer.byteLength >= Buffer.poolSize &&
      block.buffer instanceof ArrayBuffer;
    if (!own || !(await this.usable) || this.failed) return { block, hashes: hashInline(block, chunkSize) };
    const calls = this.calls[this.seq++ % this.calls.length]!;
    const req: Omit<HashRequest, "id"> = {
      buf: block.buffer as ArrayBuffer,
      length: block.length,
      chunkSize,
    };
    const reply = await calls.call(req, [req.buf]);
    const hashes: Buffer[] = [];
    const all = Buffer.from(reply.hashes);
    for (let off = 0; off < all.length; off += HASH_LENGTH) hashes.push(all.subarray(off, off + HASH_LENGTH));
    return { block: Buffer.from(reply.buf, 0, req.length), hashes };
  }

  /** Stops the workers (work still owed is refused). */
  close(): void {
    this.closed = true;
    this.fail(this.failed ?? new Error("hash pool closed"));
    // Not awaited: under a loader such as tsx a terminating worker's exit can come after the event
    // loop has nothing else to do, and waiting for it would leave the caller pending.
    for (const w of this.workers) void w.terminate().catch(() => {});
  }
}

let shared: HashPool | undefined;

/** The process's pool, started on first use (its idle workers never keep the process alive). */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}

function hashInline(block: Buffer, chunkSize: number): Buffer[] {
  const hashes: Buffer[] = [];
  for (let off = 0; off < block.length; off += chunkSize) {
    hashes.push(chunkHash(block.subarray(off, Math.min(off + chunkSize, block.length))));
  }
  return hashes;
}

/** Blocks a {@link ParallelContentHasher} has in flight before `ready()` makes its feeder wait. */
const MAX_BLOCKS_IN_FLIGHT = 8;

/**
 * The content (rope) hash of a stream fed in pieces of any size, like ContentHasher, but with the
 * chunk hashing done by a {@link HashPool}: pieces are gathered into chunk-aligned blocks of about
 * 4 MiB, each hashed on a worker while the next fills, and folded into the rope hash in order.
 * Memory: at most {@link MAX_BLOCKS_IN_FLIGHT} blocks, if the feeder awaits `ready()`.
 */
export class ParallelContentHasher {
  private readonly blockSize: number;
  private stage: Buffer;
  private staged = 0;
  private inFlight = 0;
  /** Folds finished blocks in order; rejects (and stays rejected) if hashing failed. */
  private folded: Promise<void> = Promise.resolve();
  private readonly rope = new RopeHasher();
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly pool: HashPool,
    readonly chunkSize: number,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0)
      throw new RangeError(`invalid chunk size ${chunkSize}`);
    this.blockSize = Math.max(1, Math.floor(STAGE_BYTES / chunkSize)) * chunkSize;
    this.stage = Buffer.allocUnsafe(this.blockSize);
  }

  /** Feeds the next bytes of the content (copied; `data` may be reused afterwards). */
  update(data: Uint8Array): this {
    let off = 0;
    while (off < data.length) {
      const take = Math.min(this.blockSize - this.staged, data.length - off);
      this.stage.set(data.subarray(off, off + take), this.staged);
      this.staged += take;
      off += take;
      if (this.staged === this.blockSize) this.send();
    }
    return this;
  }

  /** Resolves once few enough blocks are in flight to feed more (back-pressure). */
  async ready(): Promise<void> {
    while (this.inFlight >= MAX_BLOCKS_IN_FLIGHT) await this.folded;
  }

  private send(): void {
    const hashed = this.pool.hash(this.stage.subarray(0, this.staged), this.chunkSize);
    this.inFlight++;
    this.folded = this.folded.then(async () => {
      const done = await hashed;
      this.inFlight--;
      this.fold(done);
    });
    this.folded.catch(() => {}); // reported by digest() or ready()
    hashed.catch(() => {});
    this.stage = this.spare.pop() ?? Buffer.allocUnsafe(this.blockSize);
    this.staged = 0;
  }

  private fold(done: HashedBlock): void {
    let left = done.block.length;
    for (const h of done.hashes) {
      const n = Math.min(this.chunkSize, left);
      this.rope.add(h, n);
      left -= n;
    }
    if (done.block.buffer.byteLength === this.blockSize && this.spare.length < MAX_BLOCKS_IN_FLIGHT) {
      this.spare.push(Buffer.from(done.block.buffer, 0, this.blockSize));
    }
  }

  /** Finishes the content and returns its rope hash. */
  async digest(): Promise<Buffer> {
    if (this.staged > 0) this.send();
    await this.folded;
    return this.rope.digest();
  }
}
