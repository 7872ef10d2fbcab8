/**
 * Downloading many files with Files.ReadMany: up to READ_BATCH paths per call, and the whole
 * contents of the small ones in the same answer, so getting thousands of small files costs a few
 * dozen calls instead of two requests per file. Every file is verified against its content hash
 * and written through a temp file renamed into place, as single downloads are; files the answer
 * leaves out (large, or over the response budget) are left for the caller to stream one by one.
 */
import type { FileMeta, ReadManyResponse } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { type DownloadContext, writeSmallFile } from "./download.js";
import { IntegrityError } from "./errors.js";
import { withRetry } from "./retry.js";
import { contentHash, hex } from "./rope-hash.js";

/** Most paths per ReadMany call. */
export const READ_BATCH = 256;
/** Files up to this size come with the batch's answer; larger ones are streamed on their own. */
const READ_MAX_SIZE = 1 << 20;

/**
 * Downloads `remotes[i]` to the local file `paths[i]`; each outcome is the file, its error, or
 * "stream" when its contents did not come with the answer (download it with downloadFile).
 */
export async function downloadBatch(
  remotes: readonly string[],
  paths: readonly string[],
  ctx: DownloadContext,
): Promise<(FileMeta | Error | "stream")[]> {
  const res: ReadManyResponse = await withRetry(
    () => ctx.files.readMany({ tenantId: ctx.tenantId, paths: [...remotes], maxSize: BigInt(READ_MAX_SIZE) }),
    { attempts: 3 },
  );
  if (res.results.length !== remotes.length) {
    throw new ConnectError(
      `server answered ${res.results.length} results for ${remotes.length} paths`,
      Code.Internal,
    );
  }
  return Promise.all(
    res.results.map(async (r, i): Promise<FileMeta | Error | "stream"> => {
      const remote = remotes[i]!;
      const dest = { path: paths[i]! };
      try {
        if (r.error) throw new ConnectError(r.error.message, codeFromString(r.error.code) ?? Code.Unknown);
        const file = r.file;
        if (!file) throw new IntegrityError(`${remote}: the server's answer carried no metadata`);
        if (!r.contentsIncluded) return "stream";
        const data = Buffer.from(r.contents.buffer, r.contents.byteOffset, r.contents.byteLength);
        const local = contentHash(data, file.chunkSize > 0 ? file.chunkSize : 1);
        if (data.length !== Number(file.size) || !local.equals(Buffer.from(file.contentHash))) {
          throw new IntegrityError(
            `${remote}: received content hashes to ${hex(local)}, the server says ${hex(file.contentHash)}`,
          );
        }
        ctx.progress?.addTotal(data.length);
        writeSmallFile(dest.path, data);
        ctx.progress?.add(data.length);
        return file;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    }),
  );
}
