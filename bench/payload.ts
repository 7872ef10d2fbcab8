/**
 * The bytes every row moves: one large file of random (incompressible, never-seen) data, and a
 * directory of small random files. Random data means no row can profit from compression, and a
 * fresh tenant has none of its chunks, so a "cold" upload really stores every byte.
 *
 * The large file is written once and then read by everyone (CLI, curl, raw pg, nginx, restic), so
 * all rows start from the same bytes in the OS page cache.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const KiB = 1 << 10;
export const MiB = 1 << 20;
/** cacheroach's default chunk size, and the row size of the raw limit rows. */
export const CHUNK = 512 * KiB;

/** Writes `bytes` random bytes to `path`, 8 MiB at a time. */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, "w", 0o644);
  try {
    for (let off = 0; off < bytes; off += 8 * MiB)
      await fh.write(randomBytes(Math.min(8 * MiB, bytes - off)));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads chunk `index` (512 KiB, the last may be short) of a file opened for reading. */
export async function readChunk(
  fh: Awaited<ReturnType<typeof open>>,
  index: number,
  fileSize: number,
): Promise<Buffer> {
  const start = index * CHUNK;
  const len = Math.min(CHUNK, fileSize - start);
  const buf = Buffer.allocUnsafe(len);
  let n = 0;
  while (n < len) {
    const { bytesRead } = await fh.read(buf, n, len - n, start + n);
    if (bytesRead === 0) throw new Error(`short read at ${start + n}`);
    n += bytesRead;
  }
  return buf;
}

/** Number of 512 KiB chunks of a file of `size` bytes. */
export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK);
}

/** Name of small file `i` (fixed width, so byte order = numeric order). */
export function smallName(i: number): string {
  return `f${String(i).padStart(6, "0")}.bin`;
}

/** Writes `count` random files of `size` bytes into `dir`; returns their contents in order. */
export async function writeSmallFiles(dir: string, count: number, size: number): Promise<Buffer[]> {
  await mkdir(dir, { recursive: true });
  const contents: Buffer[] = [];
  const batch = 64;
  for (let i = 0; i < count; i += batch) {
    const writes: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      const data = randomBytes(size);
      contents.push(data);
      writes.push(writeFile(join(dir, smallName(j)), data));
    }
    await Promise.all(writes);
  }
  return contents;
}
