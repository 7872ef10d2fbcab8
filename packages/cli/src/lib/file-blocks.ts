/**
 * Reading a local file for upload: sequentially in blocks of a fixed size, the next block read
 * while the current one is worked on, and optionally cut into chunks and hashed (on this thread,
 * or on worker threads for large files).
 */
import type { FileHandle } from "node:fs/promises";
import { mapOrdered } from "./concurrency.js";
import type { HashedBlock, HashPool } from "./hash-pool.js";
import { chunkHash } from "./rope-hash.js";

/**
 * Reads a file sequentially in blocks of a fixed size (only the last may be short), into buffers
 * from `spare` when it has any (callers put back blocks they are done with: allocating 16 MiB per
 * block made garbage collection a third of a 1 GiB re-upload's time).
 */
export function blockReader(fh: FileHandle, blockSize: number, spare: Buffer[] = []): () => Promise<Buffer> {
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
export async function* prefetched(read: () => Promise<Buffer>): AsyncGenerator<Buffer> {
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
export async function* hashedHere(
  read: () => Promise<Buffer>,
  chunkSize: number,
): AsyncGenerator<HashedBlock> {
  for await (const block of prefetched(read)) {
    const hashes: Buffer[] = [];
    for (let off = 0; off < block.length; off += chunkSize) {
      hashes.push(chunkHash(block.subarray(off, Math.min(off + chunkSize, block.length))));
    }
    yield { block, hashes };
  }
}

/** Blocks hashed on worker threads, up to this many at once, in order. */
const HASHING_DEPTH = 3;

/** The blocks `read` returns, until the empty one that marks the end of the file. */
async function* blocksOf(read: () => Promise<Buffer>): AsyncGenerator<Buffer> {
  for (let block = await read(); block.length > 0; block = await read()) yield block;
}

/** Blocks of a file with their chunk hashes, hashed by `pool` while the next blocks are read. */
export function hashedOnWorkers(
  read: () => Promise<Buffer>,
  pool: HashPool,
  chunkSize: number,
): AsyncGenerator<HashedBlock> {
  return mapOrdered(blocksOf(read), HASHING_DEPTH, (block) => pool.hash(block, chunkSize));
}
