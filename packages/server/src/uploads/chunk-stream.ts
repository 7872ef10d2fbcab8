import { CacheroachError } from "../errors.js";
import type { BlockPool } from "./block-pool.js";
import { type ChunkBatch, ChunkFrameReader } from "./chunk-frames.js";
import type { UploadManager } from "./upload-manager.js";
import type { UploadState } from "./upload-state.js";

/** Batches of one body being stored at once (each on its own database connections). */
const BATCHES_IN_FLIGHT = 2;

/** What storing a chunk upload body did. */
export interface ChunkStreamResult {
  /** Chunks the body carried, and their bytes. */
  readonly chunks: number;
  readonly bytes: number;
  /** Of those, how many the tenant did not store before. */
  readonly stored: number;
}

/**
 * Stores the chunks of a chunk upload body (frames, see chunk-frames.ts) for the upload `state`
 * names, as PutChunks would: each chunk verified against its hash, the upload open, the tenant's
 * quota checked and its usage counted. The body streams: chunks are gathered into batches of one
 * pool block (max_transfer_size) each, and a batch is stored while the next ones arrive (at most
 * {@link BATCHES_IN_FLIGHT} at once), so memory stays a few blocks per body whatever its size,
 * and no block is allocated per batch.
 *
 * Not all or nothing: when the body fails (a bad frame, a hash mismatch, the client gone, more
 * than `maxBytes`), nothing after the failure is stored, and no chunk is ever stored in part, but
 * batches stored before it stay stored (verified chunks the tenant may keep; an upload that never
 * appends them leaves them to garbage collection). Sending the same body again is safe.
 */
export async function storeChunkStream(
  uploads: UploadManager,
  state: UploadState,
  body: AsyncIterable<Uint8Array>,
  opts: { readonly maxBytes: number; readonly pool: BlockPool },
): Promise<ChunkStreamResult> {
  const reader = new ChunkFrameReader(state.chunkSize, opts.pool, (hash, data) =>
    uploads.verifyChunk(state, hash, data),
  );
  const inFlight = new Set<Promise<void>>();
  let failed: { err: unknown } | undefined;
  let stored = 0;
  const launch = async (batch: ChunkBatch) => {
    while (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight);
    if (failed) {
      opts.pool.give(batch.block);
      throw failed.err;
    }
    const p = uploads.storeVerified(state, batch.chunks).then(
      (n) => {
        stored += n;
        opts.pool.give(batch.block);
      },
      // A failed store's block may still be referenced by a write to the database: not reused.
      (err: unknown) => {
        failed ??= { err };
      },
    );
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  let received = 0;
  try {
    for await (const piece of body) {
      received += piece.length;
      if (received > opts.maxBytes) {
        throw new CacheroachError(
          "ERR_TOO_LARGE",
          `the body exceeds the ${opts.maxBytes}-byte limit of one chunk upload; send the rest in another`,
        );
      }
      reader.push(piece);
      for (const batch of reader.takeSealed()) await launch(batch);
    }
    for (const batch of reader.finish()) await launch(batch);
    await Promise.all(inFlight);
    if (failed) throw failed.err;
  } catch (err) {
    reader.release();
    await Promise.all(inFlight);
    throw err;
  }
  return { chunks: reader.count, bytes: reader.bytes, stored };
}
