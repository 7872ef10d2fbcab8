/**
 * Downloading a list of files to their destinations: one file alone through a signed URL; several
 * in ReadMany batches with the small ones' contents, then the large ones streamed -p at a time.
 */
import type { FileMeta } from "@cacheroach/proto";
import { downloadBatch, READ_BATCH } from "./batch-download.js";
import { mapLimit } from "./concurrency.js";
import { type Destination, type DownloadContext, downloadFile } from "./download.js";

export type { Destination };

/**
 * Downloads `remotes[i]` to `dests[i]` and hands each outcome to `record` (which may throw to end
 * the command). `parallelism` batches or large files are in flight at once.
 */
export async function downloadAll(
  remotes: readonly string[],
  dests: readonly Destination[],
  ctx: DownloadContext,
  parallelism: number,
  record: (index: number, outcome: FileMeta | Error) => Promise<void>,
): Promise<void> {
  if (remotes.length === 1 || dests[0]?.kind === "stream" || ctx.version !== undefined) {
    await mapLimit(
      remotes.map((_, i) => i),
      parallelism,
      async (i) => record(i, await downloadFile(remotes[i]!, dests[i]!, ctx).catch(asError)),
    );
    return;
  }
  // Several files: batches of paths per call, with the small files' contents in the answer.
  const batches: number[][] = [];
  for (let i = 0; i < remotes.length; i += READ_BATCH) {
    batches.push(remotes.slice(i, i + READ_BATCH).map((_, k) => i + k));
  }
  const large: number[] = [];
  await mapLimit(batches, parallelism, async (batch) => {
    const outcomes = await downloadBatch(
      batch.map((i) => remotes[i]!),
      batch.map((i) => (dests[i] as { path: string }).path),
      ctx,
    );
    for (const [k, o] of outcomes.entries()) {
      if (o === "stream") large.push(batch[k]!);
      else await record(batch[k]!, o);
    }
  });
  // Files too large for an answer stream on their own, -p at a time.
  await mapLimit(large, parallelism, async (i) => {
    await record(i, await downloadFile(remotes[i]!, dests[i]!, ctx).catch(asError));
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
