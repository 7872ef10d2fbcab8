/**
 * Content hashing, shared with the server so client and server can never disagree: chunk hash =
 * BLAKE3-256 of the bytes; content (rope) hash = BLAKE3 derive-key over each chunk's hash and
 * big-endian uint32 length, in order.
 */
export {
  ContentHasher,
  chunkHash,
  contentHash,
  HASH_LENGTH,
  ROPE_HASH_CONTEXT as ROPE_CONTEXT,
  RopeHasher,
} from "@cacheroach/server";

/** Lower-case hex of a hash. */
export function hex(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("hex");
}
