import { CacheroachError } from "../errors.js";
import type { BlockPool } from "./block-pool.js";

/**
 * Bytes of a frame's head in a chunk upload body (docs/architecture.md, "Chunk upload bodies"):
 * the chunk's BLAKE3-256 hash (32 bytes), then its length (uint32, big-endian). The chunk's bytes
 * follow.
 */
export const FRAME_HEAD_BYTES = 36;

/** A chunk of a body whose bytes were checked against the hash its frame names. */
export interface FramedChunk {
  readonly hash: Buffer;
  /** A view of the batch's block. */
  readonly data: Buffer;
}

/** Whole chunks gathered in one block of the pool, in body order. */
export interface ChunkBatch {
  readonly block: Buffer;
  readonly chunks: FramedChunk[];
}

/**
 * Cuts a chunk upload body, arriving in pieces of any size, into batches of verified chunks: each
 * chunk's bytes are copied once, from the piece into a block of `pool` (blocks are reused, see
 * block-pool.ts), and `verify` checks each chunk as soon as its last byte arrives, so a chunk
 * whose bytes do not match its hash fails the body before its batch is handed on. A batch is
 * sealed when the next chunk does not fit its block. Every chunk but the body's last must be
 * exactly `chunkSize` bytes (a file has one short chunk, its last), so a body of N bytes holds at
 * most N / chunkSize + 1 chunks however it is framed.
 */
export class ChunkFrameReader {
  private readonly head = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
  private headFill = 0;
  /** Bytes of the current chunk still to come (0: a head is next). */
  private want = 0;
  private hash: Buffer = Buffer.alloc(0);
  private start = 0;
  private block: Buffer | undefined;
  private fill = 0;
  private chunks: FramedChunk[] = [];
  private sealed: ChunkBatch[] = [];
  private short = false;
  /** Chunks and chunk bytes read so far. */
  count = 0;
  bytes = 0;

  constructor(
    private readonly chunkSize: number,
    private readonly pool: BlockPool,
    private readonly verify: (hash: Buffer, data: Buffer) => void,
  ) {
    if (pool.blockBytes < chunkSize) throw new Error("a block must hold a whole chunk");
  }

  /** Reads the next piece of the body; throws (ERR_BAD_REQUEST) at the first bad frame. */
  push(piece: Uint8Array): void {
    let off = 0;
    while (off < piece.length) {
      if (this.want === 0) {
        const k = Math.min(FRAME_HEAD_BYTES - this.headFill, piece.length - off);
        this.head.set(piece.subarray(off, off + k), this.headFill);
        this.headFill += k;
        off += k;
        if (this.headFill === FRAME_HEAD_BYTES) this.startChunk();
        continue;
      }
      const k = Math.min(this.want, piece.length - off);
      this.block!.set(piece.subarray(off, off + k), this.fill);
      this.fill += k;
      this.want -= k;
      off += k;
      if (this.want === 0) this.endChunk();
    }
  }

  /** Batches sealed since the last call (the caller stores them, then gives their blocks back). */
  takeSealed(): ChunkBatch[] {
    const out = this.sealed;
    this.sealed = [];
    return out;
  }

  /** The body ended: the last batches; throws if it ended inside a frame. */
  finish(): ChunkBatch[] {
    if (this.want > 0 || this.headFill > 0) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `the body ends inside a chunk frame (after ${this.count} whole chunks); nothing of that chunk was stored`,
      );
    }
    this.seal();
    return this.takeSealed();
  }

  /** Gives back every block not handed on (after a failure). */
  release(): void {
    for (const b of this.takeSealed()) this.pool.give(b.block);
    if (this.block) this.pool.give(this.block);
    this.block = undefined;
    this.chunks = [];
  }

  private startChunk(): void {
    this.headFill = 0;
    const length = this.head.readUInt32BE(32);
    if (length < 1 || length > this.chunkSize) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `chunk frame ${this.count + 1} declares ${length} bytes; chunks are 1..${this.chunkSize} bytes`,
      );
    }
    if (this.short) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `chunk frame ${this.count + 1} follows a chunk shorter than ${this.chunkSize} bytes; only the last chunk of a body may be short`,
      );
    }
    this.short = length < this.chunkSize;
    this.hash = Buffer.from(this.head.subarray(0, 32));
    if (this.block && this.fill + length > this.block.length) this.seal();
    this.block ??= this.pool.take();
    this.start = this.fill;
    this.want = length;
  }

  private endChunk(): void {
    const data = this.block!.subarray(this.start, this.fill);
    this.verify(this.hash, data);
    this.chunks.push({ hash: this.hash, data });
    this.count++;
    this.bytes += data.length;
  }

  private seal(): void {
    if (this.block && this.chunks.length > 0) this.sealed.push({ block: this.block, chunks: this.chunks });
    else if (this.block) this.pool.give(this.block);
    this.block = undefined;
    this.fill = 0;
    this.chunks = [];
  }
}
