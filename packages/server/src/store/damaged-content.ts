import { CacheroachError } from "../errors.js";

/**
 * ERR_DATA_LOSS for content the database no longer holds whole (a chunk missing, or shorter or
 * longer than its rope's chunk list says); `detail` says what is wrong. Readers report it before
 * sending any byte, so a client gets a clear error instead of a short or empty answer.
 */
export function damagedContent(hash: Buffer, detail: string): CacheroachError {
  return new CacheroachError(
    "ERR_DATA_LOSS",
    `content is damaged: ${detail} (content ${hash.toString("hex").slice(0, 16)}…); restore it from a backup or write the file again`,
  );
}

/**
 * ERR_DATA_LOSS for a chunk whose stored bytes no longer hash to its key (BLAKE3 of the bytes read
 * from the database differs from the hash they are stored under). Readers that know the content
 * it belongs to report it with {@link damagedContent} and the chunk's offset instead.
 */
export class CorruptChunkError extends CacheroachError {
  constructor(readonly chunk: Buffer) {
    super(
      "ERR_DATA_LOSS",
      `content is damaged: chunk ${chunk.toString("hex").slice(0, 16)}… does not match its hash; restore it from a backup or write the file again`,
    );
  }
}
