/**
 * Uploading many small files with Uploads.PutFiles: up to BATCH_FILES files per call, so a
 * directory of thousands of small files costs a few dozen calls (and one database transaction
 * each) instead of one call per file. Files succeed or fail independently within a batch. A file
 * of at most MIN_CHUNK_SIZE bytes is one chunk whatever the server's chunk size, so its content
 * hash is known in advance and sent as expected_content_hash (the server refuses a corrupted
 * file before writing it); larger ones are verified against the returned hash, as one-shot
 * uploads are.
 */
import { readFileSync } from "node:fs";
import type { FileMeta, PutFilesResponse } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { IntegrityError, isQuotaRefusal, itemConnectError } from "./errors.js";
import { withRetry } from "./retry.js";
import { contentHash, hex } from "./rope-hash.js";
import { jobMeta, type UploadContext, type UploadJob, uploadFile } from "./upload.js";

/** Most files per PutFiles call. */
export const BATCH_FILES = 256;
/** Most content bytes per PutFiles call (well under the server's smallest max_transfer_size). */
export const BATCH_BYTES = 2 << 20;
/** Files up to this size are batched; larger ones go alone. */
export const BATCH_FILE_LIMIT = 256 << 10;
/** The smallest chunk size a server may use: content up to this size is always one chunk. */
const MIN_CHUNK_SIZE = 65536;

/** A unit of upload work: one file alone, or a batch of small files (indexes into the job list). */
export type UploadUnit = { kind: "single"; index: number } | { kind: "batch"; indexes: number[] };

/** Groups small files into batches (in order) and leaves the rest as single uploads. */
export function planUploads(jobs: readonly UploadJob[]): UploadUnit[] {
  const units: UploadUnit[] = [];
  let batch: number[] = [];
  let bytes = 0;
  const close = () => {
    if (batch.length === 1) units.push({ kind: "single", index: batch[0]! });
    else if (batch.length > 1) units.push({ kind: "batch", indexes: batch });
    batch = [];
    bytes = 0;
  };
  jobs.forEach((job, i) => {
    if (job.size > BATCH_FILE_LIMIT) {
      units.push({ kind: "single", index: i });
      return;
    }
    if (batch.length === BATCH_FILES || bytes + job.size > BATCH_BYTES) close();
    batch.push(i);
    bytes += job.size;
  });
  close();
  return units;
}

/**
 * Uploads a batch of small files; each outcome is the written file or the error for that file.
 * A file that grew past the batch limit since it was listed is uploaded alone instead. The call
 * is retried only when the server was not reached (it writes versions), and if the server refuses
 * the batch as too large, every file is uploaded alone.
 */
export async function uploadBatch(
  jobs: readonly UploadJob[],
  ctx: UploadContext,
): Promise<(FileMeta | Error)[]> {
  const out: (FileMeta | Error | undefined)[] = new Array(jobs.length);
  // Synchronous reads: for files this small, thread-pool round trips cost more than the reads.
  const contents = jobs.map((job, i) => {
    try {
      return readFileSync(job.localPath);
    } catch (err) {
      out[i] = err instanceof Error ? err : new Error(String(err));
      return Buffer.alloc(0);
    }
  });
  const sent: number[] = [];
  jobs.forEach((_, i) => {
    if (out[i] === undefined && contents[i]!.length <= BATCH_FILE_LIMIT) sent.push(i);
  });
  const inBatch = new Set(sent);
  const alone = jobs.map((_, i) => i).filter((i) => out[i] === undefined && !inBatch.has(i));
  if (sent.length > 0) {
    let res: PutFilesResponse | undefined;
    try {
      res = await withRetry(
        () =>
          ctx.uploads.putFiles({
            tenantId: ctx.tenantId,
            files: sent.map((i) => {
              const data = contents[i]!;
              return {
                path: jobs[i]!.remotePath,
                contents: data,
                precondition: ctx.precondition,
                meta: jobMeta(jobs[i]!),
                expectedContentHash:
                  data.length <= MIN_CHUNK_SIZE ? contentHash(data, MIN_CHUNK_SIZE) : undefined,
              };
            }),
          }),
        { ...ctx.retry, retryable: (err) => ConnectError.from(err).code === Code.Unavailable },
      );
    } catch (err) {
      if (ConnectError.from(err).code !== Code.ResourceExhausted || isQuotaRefusal(err)) throw err;
      alone.push(...sent); // a server with a smaller transfer limit: send them one by one
    }
    if (res) {
      if (res.results.length !== sent.length) {
        throw new ConnectError(
          `server answered ${res.results.length} results for ${sent.length} files`,
          Code.Internal,
        );
      }
      res.results.forEach((r, k) => {
        const i = sent[k]!;
        out[i] = outcome(jobs[i]!, contents[i]!, r.result);
        if (!(out[i] instanceof Error)) ctx.progress?.add(contents[i]!.length);
      });
    }
  }
  for (const i of alone) {
    out[i] = await uploadFile(jobs[i]!, ctx).catch((err: unknown) =>
      err instanceof Error ? err : new Error(String(err)),
    );
  }
  return out as (FileMeta | Error)[];
}

function outcome(
  job: UploadJob,
  data: Buffer,
  result: PutFilesResponse["results"][number]["result"],
): FileMeta | Error {
  if (result.case === "error") return itemConnectError(result.value);
  if (result.case !== "file") {
    return new ConnectError(`server returned no result for ${job.remotePath}`, Code.Internal);
  }
  const file = result.value;
  const local = contentHash(data, file.chunkSize > 0 ? file.chunkSize : MIN_CHUNK_SIZE);
  if (!local.equals(Buffer.from(file.contentHash))) {
    return new IntegrityError(
      `${job.remotePath}: server stored content hash ${hex(file.contentHash)}, expected ${hex(local)}`,
    );
  }
  return file;
}
