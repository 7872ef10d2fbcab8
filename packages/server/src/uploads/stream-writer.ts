import { CacheroachError } from "../errors.js";
import type { FileRecord } from "../store/file-meta.js";
import type { CommitOptions, Uploader, UploadManager } from "./upload-manager.js";

/** Options of {@link writeStream}. */
export interface StreamWriteOptions extends CommitOptions {
  /** Refuse (ERR_TOO_LARGE) once more than this many bytes arrive; nothing is committed. */
  readonly maxBytes: number;
  /** Who writes (recorded on the upload). */
  readonly uploader: Uploader;
  /** Called with the running byte count, for progress and metrics. */
  readonly onProgress?: (bytes: number) => void;
}

/**
 * Stores a byte stream of unknown length as a new file version: re-blocks whatever piece sizes
 * arrive (HTTP/2 delivers ≤ 16 KiB frames) into transfers of max_transfer_size, so memory stays
 * at about two transfers whatever the size, and commits only when the stream ends cleanly. If
 * the stream fails or is aborted midway, nothing becomes visible; the partial upload is left for
 * garbage collection.
 */
export async function writeStream(
  uploads: UploadManager,
  tenantId: string,
  path: string,
  source: AsyncIterable<Uint8Array>,
  opts: StreamWriteOptions,
): Promise<FileRecord> {
  const size = uploads.limits.maxTransferSize;
  let buf: Buffer = Buffer.allocUnsafe(size);
  let fill = 0;
  let total = 0;
  let begun: Awaited<ReturnType<UploadManager["begin"]>> | undefined;
  // The previous transfer runs while the next block fills: one block in flight, one filling. The
  // two blocks take turns (nothing refers to a block once its transfer is stored), so a large body
  // does not allocate, and leave to garbage collection, a fresh block per transfer.
  let inflight: Promise<void> = Promise.resolve();
  let spare: Buffer | undefined;
  const flush = async (block: Buffer) => {
    await inflight;
    if (!begun) begun = await uploads.begin(tenantId, path, opts.uploader, opts.precondition);
    const b = begun;
    inflight = uploads.transfer(b.decoded, block).then((next) => {
      begun = next;
      if (block.length === size) spare = block;
    });
    inflight.catch(() => {}); // surfaced by the next await
  };
  for await (const piece of source) {
    total += piece.length;
    if (total > opts.maxBytes) {
      await inflight.catch(() => {});
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `body exceeds the ${opts.maxBytes}-byte limit; nothing was stored`,
      );
    }
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(piece.length - off, size - fill);
      buf.set(piece.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === size) {
        await flush(buf);
        buf = spare ?? Buffer.allocUnsafe(size);
        spare = undefined;
        fill = 0;
      }
    }
    opts.onProgress?.(total);
  }
  if (total === 0) return uploads.writeSmall(tenantId, path, Buffer.alloc(0), opts);
  if (!begun && fill > 0) {
    // Small bodies skip the upload bookkeeping entirely.
    await inflight;
    return uploads.writeSmall(tenantId, path, buf.subarray(0, fill), opts);
  }
  if (fill > 0) await flush(buf.subarray(0, fill));
  await inflight;
  return uploads.commit(begun!.decoded, opts);
}
