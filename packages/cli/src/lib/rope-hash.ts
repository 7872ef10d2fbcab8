/**
 * Content hashing, from @cacheroach/core so client and server can never disagree: chunk hash =
 * BLAKE3-256 of the bytes; content (rope) hash = BLAKE3 derive-key over each chunk's hash and
 * big-endian uint32 length, in order. The core package is light: the server's main entry loads
 * pg, pino and connect-node, ~0.7 s of CLI start-up.
 */
export {
  ContentHasher,
  chunkHash,
  contentHash,
  HASH_LENGTH,
  hex,
  ROPE_HASH_CONTEXT as ROPE_CONTEXT,
  RopeHasher,
} from "@cacheroach/core";
