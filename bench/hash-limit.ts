/**
 * Limit row 1c: single-thread BLAKE3 over the large file, in 512 KiB chunks, with the same native
 * implementation cacheroach uses (`chunkHash` from @cacheroach/server → @napi-rs/blake-hash).
 *
 * Every byte that enters or leaves cacheroach is hashed at least once (the server hashes what it
 * stores, the CLI hashes what it sends and what it downloads), and each side hashes on one thread,
 * so this rate bounds any one process's throughput. It is the reference for the re-upload row,
 * whose target (≥ 1 GiB/s) is absolute: with every chunk already stored, hashing is the work left.
 * Only the hashing is timed (the file is read from the page cache between timings).
 */
import { open } from "node:fs/promises";
import { chunkHash } from "@cacheroach/core";
import { CHUNK, MiB } from "./payload.js";

/** MiB/s of single-thread BLAKE3 over the file's chunks. */
export async function blake3Rate(file: string, size: number): Promise<number> {
  const fh = await open(file, "r");
  const block = Buffer.allocUnsafe(16 * MiB);
  let hashing = 0;
  try {
    for (let off = 0; off < size; off += block.length) {
      const { bytesRead } = await fh.read(block, 0, Math.min(block.length, size - off), off);
      const t0 = performance.now();
      for (let c = 0; c < bytesRead; c += CHUNK) chunkHash(block.subarray(c, Math.min(c + CHUNK, bytesRead)));
      hashing += performance.now() - t0;
    }
  } finally {
    await fh.close();
  }
  return size / MiB / (hashing / 1000);
}
