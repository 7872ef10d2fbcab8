/**
 * The received bytes of one download on their way to the sink: gathered in chunk-aligned blocks
 * (about 4 MiB), each block's chunks hashed (on worker threads for large files, the block's memory
 * moving there and back, see hash-pool.ts) and then written to the sink, in order, while the next
 * blocks fill. The socket can read straight into a block (`space()`/`filled()`), so a byte is
 * copied once, by the kernel, on its way from the connection to the sink.
 *
 * The sink receives a block only once it is hashed; what it holds is verified as a whole against
 * the content hash when the download ends (download.ts).
 */
import type { HashedBlock, HashPool } from "./hash-pool.js";
import { chunkHash, RopeHasher } from "./rope-hash.js";
import type { Sink } from "./sinks.js";

/** Bytes per block (rounded down to whole chunks, at least one chunk). */
const BLOCK_BYTES = 4 << 20;
/** Blocks being hashed or written before the feeder has to wait (memory: this many blocks). */
const MAX_IN_FLIGHT = 8;

export class BlockPipeline {
  private readonly blockSize: number;
  private stage: Buffer | undefined;
  private staged = 0;
  /** Leading bytes of the stage already in the sink (a continued partial download). */
  private stagedInSink = 0;
  private inFlight = 0;
  /** Hashes, writes and recycles dispatched blocks in order; rejected (for good) once one failed. */
  private chain: Promise<void> = Promise.resolve();
  /** The blocks in flight, oldest first (each settles once its block is written). */
  private readonly steps: Promise<void>[] = [];
  private failure: Error | undefined;
  private readonly rope = new RopeHasher();
  private readonly spare: Buffer[] = [];
  private stopped = false;
  private finished: Promise<Buffer> | undefined;

  /**
   * `size`: the content's length (no block is larger than needed); `pool`: worker threads for
   * the chunk hashes, or undefined to hash on this thread.
   */
  constructor(
    size: number,
    private readonly chunkSize: number,
    private readonly sink: Sink,
    private readonly pool: HashPool | undefined,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0)
      throw new RangeError(`invalid chunk size ${chunkSize}`);
    const whole = Math.max(1, Math.floor(BLOCK_BYTES / chunkSize)) * chunkSize;
    const needed = Math.max(1, Math.ceil(size / chunkSize)) * chunkSize;
    this.blockSize = Math.min(whole, needed);
  }

  /** Memory for the next bytes of the content (at most `max` bytes); report them with {@link filled}. */
  space(max: number): Buffer {
    this.stage ??= this.spare.pop() ?? Buffer.allocUnsafe(this.blockSize);
    const end = Math.min(this.blockSize, this.staged + max);
    return this.stage.subarray(this.staged, end);
  }

  /** `n` bytes were put at the start of the last {@link space}; `inSink`: the sink has them already. */
  filled(n: number, inSink = false): void {
    if (inSink) {
      if (this.stagedInSink !== this.staged) throw new Error("bytes already in the sink must come first");
      this.stagedInSink += n;
    }
    this.staged += n;
    if (this.staged === this.blockSize) this.dispatch();
  }

  /** Copies `data` in as the next bytes. */
  put(data: Uint8Array, inSink = false): void {
    for (let off = 0; off < data.length; ) {
      const s = this.space(data.length - off);
      s.set(data.subarray(off, off + s.length));
      off += s.length;
      this.filled(s.length, inSink);
    }
  }

  /** True when enough blocks are in flight that the feeder should wait for {@link ready}. */
  busy(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT;
  }

  /** Resolves once the feeder may go on (the oldest block is done); rejects if a block failed. */
  async ready(): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT && !this.failure) await this.steps[0];
    if (this.failure) throw this.failure;
  }

  /** Sends the staged bytes on (the content ends, or a block is full). */
  private dispatch(): void {
    const stage = this.stage;
    if (!stage || this.staged === 0) return;
    const block = stage.subarray(0, this.staged);
    const inSink = this.stagedInSink;
    const hashed: Promise<HashedBlock> = this.pool
      ? this.pool.hash(block, this.chunkSize)
      : Promise.resolve({ block, hashes: hashInline(block, this.chunkSize) });
    hashed.catch(() => {}); // reported through the chain
    this.inFlight++;
    const step = this.chain.then(async () => {
      const done = await hashed;
      let left = done.block.length;
      for (const h of done.hashes) {
        const n = Math.min(this.chunkSize, left);
        this.rope.add(h, n);
        left -= n;
      }
      if (!this.stopped && done.block.length > inSink) await this.sink.write(done.block.subarray(inSink));
      this.inFlight--;
      if (done.block.buffer.byteLength === this.blockSize && this.spare.length <= MAX_IN_FLIGHT) {
        this.spare.push(Buffer.from(done.block.buffer, 0, this.blockSize));
      }
      this.steps.shift();
    });
    step.catch((err: Error) => {
      this.failure ??= err; // reported by ready() and finish()
    });
    this.steps.push(step);
    this.chain = step;
    this.stage = undefined;
    this.staged = 0;
    this.stagedInSink = 0;
  }

  /** Sends what is staged, waits until every block is hashed and written; the content hash. */
  finish(): Promise<Buffer> {
    this.finished ??= (async () => {
      this.dispatch();
      await this.chain;
      return this.rope.digest();
    })();
    return this.finished;
  }

  /** Writes nothing more to the sink and waits for the blocks in flight (before the sink closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.chain.catch(() => {});
  }
}

function hashInline(block: Buffer, chunkSize: number): Buffer[] {
  const hashes: Buffer[] = [];
  for (let off = 0; off < block.length; off += chunkSize) {
    hashes.push(chunkHash(block.subarray(off, Math.min(off + chunkSize, block.length))));
  }
  return hashes;
}
