/**
 * Worker-thread side of {@link HashPool} (hash-pool.ts): hashes the chunks of one block and sends
 * the block back with the hashes, both transferred (no copies).
 */
import { parentPort } from "node:worker_threads";
import { chunkHash, HASH_LENGTH } from "./rope-hash.js";

/** A block to hash: `length` bytes of `buf`, cut every `chunkSize` bytes. */
export interface HashRequest {
  id: number;
  buf: ArrayBuffer;
  length: number;
  chunkSize: number;
}

/** The answer: the block back and the chunk hashes, 32 bytes each, in order. */
export interface HashReply {
  id: number;
  buf: ArrayBuffer;
  hashes: ArrayBuffer;
}

/** Posted once, when this module has loaded: the pool sends blocks only to a worker that can hash. */
export const READY = "ready";

parentPort?.on("message", (req: HashRequest) => {
  const data = Buffer.from(req.buf, 0, req.length);
  const count = Math.ceil(req.length / req.chunkSize);
  const hashes = new ArrayBuffer(count * HASH_LENGTH);
  const out = Buffer.from(hashes);
  for (let i = 0; i < count; i++) {
    const off = i * req.chunkSize;
    out.set(chunkHash(data.subarray(off, Math.min(off + req.chunkSize, req.length))), i * HASH_LENGTH);
  }
  const reply: HashReply = { id: req.id, buf: req.buf, hashes };
  parentPort?.postMessage(reply, [req.buf, hashes]);
});
parentPort?.postMessage(READY);
