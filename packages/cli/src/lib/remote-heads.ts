/**
 * What a remote path holds before writing it, to skip writing unchanged content: the live heads
 * of many paths in a few calls (Files.ReadMany with a max_size of 1 byte, so the answer carries
 * metadata and practically no contents), and a local file's content hash as the server would
 * compute it with a remote file's chunk size, without reading large files when the hash cache
 * knows them.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { FileMeta, Files } from "@cacheroach/proto";
import { type Client, Code } from "@connectrpc/connect";
import { itemConnectError } from "./errors.js";
import { type HashCache, identityOf } from "./hash-cache.js";
import { ContentHasher, contentHash, RopeHasher } from "./rope-hash.js";

/** Paths per ReadMany call (the server's batch limit). */
const HEADS_BATCH = 1000;

/** The live heads of `paths` (absent: no live file), keyed by path. */
export async function remoteHeads(
  files: Client<typeof Files>,
  tenantId: string,
  paths: readonly string[],
): Promise<Map<string, FileMeta>> {
  const out = new Map<string, FileMeta>();
  for (let i = 0; i < paths.length; i += HEADS_BATCH) {
    const batch = paths.slice(i, i + HEADS_BATCH);
    const res = await files.readMany({ tenantId, paths: batch, maxSize: 1n });
    res.results.forEach((r, k) => {
      if (r.file) out.set(batch[k]!, r.file);
      else if (r.error && itemConnectError(r.error).code !== Code.NotFound) throw itemConnectError(r.error);
    });
  }
  return out;
}

/** Files up to this size are read and hashed to compare them; larger ones only through the hash cache. */
export const READ_TO_COMPARE_MAX = 1 << 20;

/**
 * The content hash of local file `path` cut at `chunkSize`: read and hashed when it has at most
 * {@link READ_TO_COMPARE_MAX} bytes, from a trusted hash-cache entry of that chunk size when
 * larger; undefined when neither (the upload compares while it hashes).
 */
export async function localContentHash(
  path: string,
  chunkSize: number,
  cache: HashCache | undefined,
  /** Read and hash large files too when the cache does not know them. */
  readLarge = false,
): Promise<Buffer | undefined> {
  const st = await stat(path, { bigint: true });
  if (st.size <= BigInt(READ_TO_COMPARE_MAX)) {
    const data = await readFile(path);
    return contentHash(data, chunkSize > 0 ? chunkSize : 1);
  }
  const hashes = await cache?.lookup(identityOf(st), chunkSize);
  if (!hashes) return readLarge ? hashFile(path, chunkSize) : undefined;
  const rope = new RopeHasher();
  const size = Number(st.size);
  hashes.forEach((h, i) => {
    rope.add(h, Math.min(chunkSize, size - i * chunkSize));
  });
  return rope.digest();
}

/** The content hash of a whole local file cut at `chunkSize`, read sequentially. */
async function hashFile(path: string, chunkSize: number): Promise<Buffer> {
  const hasher = new ContentHasher(chunkSize);
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 }))
    hasher.update(piece as Buffer);
  return hasher.digest();
}
