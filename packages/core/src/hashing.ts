import { Blake3Hasher, blake3 } from "@napi-rs/blake-hash";

/** Default chunk size: 512 KiB. */
export const DEFAULT_CHUNK_SIZE = 512 * 1024;

/** Length of every hash (chunk and rope): BLAKE3-256. */
export const HASH_LENGTH = 32;

/**
 * Domain-separation context of rope hashes (BLAKE3 derive-key mode), so a rope hash can never
 * collide with a chunk hash of the same bytes.
 */
export const ROPE_HASH_CONTEXT = "cacheroach 2026-11 rope v1";

/** BLAKE3-256 of one chunk's bytes: the chunk's key. */
export function chunkHash(data: Uint8Array): Buffer {
  return blake3(data as Buffer);
}

/**
 * Computes a rope (content) hash: the BLAKE3 Merkle root of an ordered chunk list. For each
 * chunk in order it absorbs the 32-byte chunk hash and the chunk length as a big-endian uint32.
 * The server computes it from chunk hashes alone; a client can verify a download chunk by chunk.
 */
export class RopeHasher {
  private readonly hasher = Blake3Hasher.newDeriveKey(ROPE_HASH_CONTEXT);
  private readonly entry = Buffer.alloc(HASH_LENGTH + 4);
  private bytes = 0;
  private chunks = 0;

  /** Adds the next chunk (its hash and length). */
  add(hash: Uint8Array, length: number): this {
    if (hash.length !== HASH_LENGTH) throw new RangeError("chunk hash must be 32 bytes");
    this.entry.set(hash, 0);
    this.entry.writeUInt32BE(length, HASH_LENGTH);
    this.hasher.update(this.entry);
    this.bytes += length;
    this.chunks++;
    return this;
  }

  /** Total content length so far. */
  get size(): number {
    return this.bytes;
  }

  /** Number of chunks so far. */
  get count(): number {
    return this.chunks;
  }

  /** The rope hash of the chunks added so far. */
  digest(): Buffer {
    return this.hasher.digestBuffer();
  }
}

/**
 * Streaming content hasher: feed the content in pieces of any size, in order; it cuts them into
 * `chunkSize` chunks and folds their hashes into the rope hash. Buffers at most one chunk.
 */
export class ContentHasher {
  private readonly rope = new RopeHasher();
  private readonly pending: Buffer;
  private pendingLength = 0;
  private total = 0;

  constructor(readonly chunkSize: number) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0)
      throw new RangeError(`invalid chunk size ${chunkSize}`);
    this.pending = Buffer.allocUnsafe(chunkSize);
  }

  /** Bytes fed so far. */
  get length(): number {
    return this.total;
  }

  /** Feeds the next bytes of the content. */
  update(data: Uint8Array): this {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.total += buf.length;
    let off = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(this.chunkSize - this.pendingLength, buf.length);
      buf.copy(this.pending, this.pendingLength, 0, take);
      this.pendingLength += take;
      off = take;
      if (this.pendingLength === this.chunkSize) {
        this.rope.add(chunkHash(this.pending), this.chunkSize);
        this.pendingLength = 0;
      }
    }
    // Whole chunks straight from the input, without copying.
    while (buf.length - off >= this.chunkSize) {
      this.rope.add(chunkHash(buf.subarray(off, off + this.chunkSize)), this.chunkSize);
      off += this.chunkSize;
    }
    if (off < buf.length) {
      buf.copy(this.pending, 0, off);
      this.pendingLength = buf.length - off;
    }
    return this;
  }

  /** Finishes the content (hashing the short last chunk, if any) and returns the rope hash. */
  digest(): Buffer {
    if (this.pendingLength > 0) {
      this.rope.add(chunkHash(this.pending.subarray(0, this.pendingLength)), this.pendingLength);
      this.pendingLength = 0;
    }
    return this.rope.digest();
  }
}

/** Rope hash of a whole in-memory content cut at `chunkSize`, hashing it in place (no copy). */
export function contentHash(data: Uint8Array, chunkSize: number = DEFAULT_CHUNK_SIZE): Buffer {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`invalid chunk size ${chunkSize}`);
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const rope = new RopeHasher();
  for (let off = 0; off < buf.length; off += chunkSize) {
    const piece = buf.subarray(off, Math.min(off + chunkSize, buf.length));
    rope.add(chunkHash(piece), piece.length);
  }
  return rope.digest();
}

/** Lower-case hex of a hash. */
export function hex(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("hex");
}
