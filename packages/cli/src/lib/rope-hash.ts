/**
 * Content hashing, shared with the server so client and server can never disagree: chunk hash =
 * BLAKE3-256 of the bytes; content (rope) hash = BLAKE3 derive-key over each chunk's hash and
 * big-endian uint32 length, in order. Imported from the server's light "hashing" entry point:
 * its main entry loads the whole server (pg, pino, connect-node…), ~0.7 s of CLI start-up.
 */
export {
  ContentHasher,
  chunkHash,
  contentHash,
  HASH_LENGTH,
  ROPE_HASH_CONTEXT as ROPE_CONTEXT,
  RopeHasher,
} from "@cacheroach/server/hashing";

/** Lower-case hex of a hash. */
export function hex(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("hex");
}
