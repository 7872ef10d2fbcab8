/**
 * Chunk buffers that are reused instead of freed. Memory the kernel hands out is expensive the
 * first time it is touched (page faults: about 3 ms per MiB on the benchmark VM, against 0.01 for a
 * buffer already in use), and a freed 512 KiB buffer goes back to the kernel, so a cold read that
 * allocated a fresh buffer per chunk paid that cost for every byte, plus the garbage collections
 * that external memory growth triggers. A chunk evicted from the cache gives its buffer to the next
 * chunk read instead.
 *
 * A buffer is reused only when nothing can still read it: it is out of the cache, it was never
 * handed out without a lease (see {@link PooledChunk.escaped}), and every lease on it has been
 * released. A lease is released only once its bytes are no longer needed (an HTTP response
 * releases in the socket write's callback), so a buffer is never rewritten under a response.
 */

/** Pooled buffers have a length that is a multiple of this (every whole chunk of a large file). */
const POOLED_MULTIPLE = 64 << 10;

/** A chunk's bytes in a buffer that may be reused once nothing reads them any more. */
export class PooledChunk {
  /** Leases not yet released. */
  leases = 0;
  /** Held by the cache. */
  cached = false;
  /**
   * Handed out without a lease (to a caller that may keep it, e.g. a protobuf message or a small
   * file's answer): never reused, left to the garbage collector.
   */
  escaped = false;
  /** Given back to the pool (holds another chunk's bytes from then on). */
  recycled = false;

  constructor(readonly data: Buffer) {}
}

/** A chunk's bytes, readable until {@link release} (which may be called more than once). */
export interface ChunkLease {
  readonly data: Buffer;
  release(): void;
}

/** What a pool did since it was made. */
export interface ChunkPoolCounters {
  /** Buffers taken from the free list. */
  reused: number;
  /** Buffers allocated because the free list had none of the length. */
  allocated: number;
}

/** Free chunk buffers by length, at most `maxFreeBytes` of them. */
export class ChunkPool {
  readonly counters: ChunkPoolCounters = { reused: 0, allocated: 0 };
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  constructor(private readonly maxFreeBytes: number) {}

  /** True if buffers of this length are pooled (others are left to the garbage collector). */
  static pools(length: number): boolean {
    return length > 0 && length % POOLED_MULTIPLE === 0;
  }

  /** A buffer of `length` bytes of unspecified content: a free one if there is one. */
  take(length: number): Buffer {
    const b = this.free.get(length)?.pop();
    if (b) {
      this.freeBytes -= length;
      this.counters.reused++;
      return b;
    }
    this.counters.allocated++;
    // Its own ArrayBuffer (never a slice of Node's shared pool), so it can be handed on whole.
    return Buffer.allocUnsafeSlow(length);
  }

  /** Bytes on the free list. */
  get bytesFree(): number {
    return this.freeBytes;
  }

  /**
   * Gives `chunk`'s buffer back if nothing can still read it (see the module comment); a no-op
   * otherwise, so it may be called whenever one of the conditions may have changed.
   */
  recycle(chunk: PooledChunk): void {
    if (chunk.cached || chunk.leases > 0 || chunk.escaped || chunk.recycled) return;
    chunk.recycled = true;
    this.give(chunk.data);
  }

  /** Puts a buffer nobody else holds on the free list (dropped if the list is full). */
  give(b: Buffer): void {
    if (!ChunkPool.pools(b.length) || this.freeBytes + b.length > this.maxFreeBytes) return;
    let list = this.free.get(b.length);
    if (!list) {
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.freeBytes += b.length;
  }

  /** A lease on `chunk` (counted until released; releasing twice counts once). */
  lease(chunk: PooledChunk): ChunkLease {
    if (chunk.recycled) throw new Error("lease on a recycled chunk buffer");
    chunk.leases++;
    let held = true;
    return {
      data: chunk.data,
      release: () => {
        if (!held) return;
        held = false;
        chunk.leases--;
        this.recycle(chunk);
      },
    };
  }
}
