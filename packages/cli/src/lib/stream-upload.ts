/**
 * Uploading a byte stream of unknown length (standard input): the first MiB decides — a stream
 * that ends within it is written with one Begin call; a longer one goes Begin → Transfer* →
 * Commit{expected_content_hash}, re-blocked into transfers that are whole multiples of the chunk
 * size (only the last may be short), hashed as they go. Memory stays at one transfer block
 * whatever the length. Every Transfer is retried with the same state (the protocol is idempotent).
 */
import type { FileMeta } from "@cacheroach/proto";
import { checkOffset } from "./dedup-upload.js";
import { IntegrityError, UserError } from "./errors.js";
import { withRetry } from "./retry.js";
import { ContentHasher, hex } from "./rope-hash.js";
import {
  jobMeta,
  MAX_BLOCK,
  ONE_SHOT_LIMIT,
  oneShot,
  sameAsRemote,
  type UploadContext,
  type UploadJob,
} from "./upload.js";

/** Reads from `it` until `want` bytes are buffered or it ends; returns what was read and whether it ended. */
async function fill(
  it: AsyncIterator<Buffer>,
  pending: Buffer[],
  have: number,
  want: number,
): Promise<{ have: number; ended: boolean }> {
  let n = have;
  while (n < want) {
    const next = await it.next();
    if (next.done) return { have: n, ended: true };
    const piece = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    if (piece.length === 0) continue;
    pending.push(piece);
    n += piece.length;
  }
  return { have: n, ended: false };
}

/** Takes exactly `n` bytes (or all, if fewer) off the front of `pending`. */
function take(pending: Buffer[], n: number): Buffer {
  const all = Buffer.concat(pending);
  pending.length = 0;
  if (all.length > n) pending.push(all.subarray(n));
  return all.subarray(0, Math.min(n, all.length));
}

/**
 * Uploads what `input` yields to `job.remotePath` (`job.size` is ignored; `job.localPath` names
 * the source in messages). With `job.remote`, identical content writes nothing and returns it.
 */
export async function uploadStream(
  input: AsyncIterable<Buffer | string>,
  job: UploadJob,
  ctx: UploadContext,
): Promise<FileMeta> {
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const pending: Buffer[] = [];
  let state = await fill(it, pending, 0, ONE_SHOT_LIMIT + 1);
  if (state.ended) {
    const data = take(pending, state.have);
    return oneShot({ ...job, size: data.length }, ctx, data);
  }
  const retry = ctx.retry ?? {};
  const begin = await withRetry(
    () => ctx.uploads.begin({ tenantId: ctx.tenantId, path: job.remotePath, precondition: ctx.precondition }),
    retry,
  );
  const chunkSize = begin.chunkSize;
  const maxTransfer = Math.min(begin.maxTransferSize, MAX_BLOCK);
  if (chunkSize <= 0 || maxTransfer < chunkSize || begin.state.length === 0) {
    throw new UserError(
      `server answered Begin with an unusable upload (chunk_size ${chunkSize}, max_transfer_size ${begin.maxTransferSize})`,
      1,
    );
  }
  const blockSize = Math.floor(maxTransfer / chunkSize) * chunkSize;
  const hasher = new ContentHasher(chunkSize);
  let upload = begin.state;
  let sent = 0;
  for (;;) {
    if (!state.ended) state = await fill(it, pending, state.have, blockSize);
    if (state.have === 0) break;
    const block = take(pending, blockSize);
    state = { have: state.have - block.length, ended: state.ended };
    hasher.update(block);
    const current = upload;
    const res = await withRetry(() => ctx.uploads.transfer({ state: current, data: block }), retry);
    sent += block.length;
    checkOffset(job.remotePath, res.offset, sent);
    upload = res.state;
    ctx.progress?.add(block.length);
  }
  const expected = hasher.digest();
  if (job.remote && sameAsRemote(job.remote, expected, chunkSize)) {
    ctx.log?.(`${job.remotePath} already holds this content; no new version`);
    return job.remote;
  }
  const res = await withRetry(
    () =>
      ctx.uploads.commit({
        state: upload,
        precondition: ctx.precondition,
        expectedContentHash: expected,
        meta: jobMeta(job),
      }),
    retry,
  );
  const file = res.file;
  if (!file) throw new UserError(`server returned no file when committing ${job.remotePath}`, 1);
  if (!expected.equals(Buffer.from(file.contentHash))) {
    throw new IntegrityError(
      `${job.remotePath}: server committed content hash ${hex(file.contentHash)}, expected ${hex(expected)}`,
    );
  }
  return file;
}
