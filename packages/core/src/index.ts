/**
 * What the server and the CLI must agree on, in a package light enough for the CLI to load at
 * start-up: content hashing (so client and server can never compute different keys) and the
 * well-known ids.
 */
export {
  ContentHasher,
  chunkHash,
  contentHash,
  DEFAULT_CHUNK_SIZE,
  HASH_LENGTH,
  hex,
  ROPE_HASH_CONTEXT,
  RopeHasher,
} from "./hashing.js";
export { isUuid, WELL_KNOWN } from "./well-known-ids.js";
