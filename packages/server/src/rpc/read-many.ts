import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ReadManyRequest, ReadManyResponseSchema } from "@cacheroach/proto";
import { MAX_BATCH_ITEMS } from "../auth/policy.js";
import { StoreError } from "../errors.js";
import { parseId } from "../ids.js";
import type { FileRecord } from "../store/file-meta.js";
import type { FileStore } from "../store/file-store.js";
import { validatePath } from "../store/paths.js";
import type { Rope, RopeStore } from "../store/rope-store.js";
import { toFileMeta } from "./convert.js";
import { toItemError } from "./item-error.js";

/** Files up to this size come with their contents unless the request says otherwise. */
const DEFAULT_MAX_SIZE = 1 << 20;
/** Contents one response carries at most (and the largest max_size). */
export const READ_MANY_BUDGET = 16 << 20;

/**
 * Files.ReadMany: the heads of many paths in one query, and the contents of the small ones (one
 * chunk-list query, then the chunks through the cache), within {@link READ_MANY_BUDGET} bytes.
 * A path without a live file is a not_found item; the call as a whole fails only on bad input.
 */
export async function readMany(
  req: ReadManyRequest,
  files: FileStore,
  ropes: RopeStore,
): Promise<MessageInitShape<typeof ReadManyResponseSchema>> {
  const tenantId = parseId(req.tenantId, "tenant_id");
  if (req.paths.length < 1 || req.paths.length > MAX_BATCH_ITEMS) {
    throw new StoreError("ERR_BAD_REQUEST", `paths must hold 1..${MAX_BATCH_ITEMS} items`);
  }
  const paths = req.paths.map((p) => validatePath(p));
  if (req.maxSize < 0n || req.maxSize > BigInt(READ_MANY_BUDGET)) {
    throw new StoreError("ERR_BAD_REQUEST", `max_size must be 0..${READ_MANY_BUDGET}`);
  }
  const maxSize = req.maxSize === 0n ? DEFAULT_MAX_SIZE : Number(req.maxSize);
  const heads = await files.heads(tenantId, paths);
  let budget = READ_MANY_BUDGET;
  const found: (FileRecord | undefined)[] = paths.map((p) => {
    const head = heads.get(p);
    return head && !head.dtime ? head : undefined;
  });
  const included = found.map((f) => {
    if (!f || f.size > maxSize || f.size > budget) return false;
    budget -= f.size;
    return true;
  });
  const wanted: Rope[] = [];
  found.forEach((f, i) => {
    if (f && included[i]) {
      wanted.push({ hash: f.ropeHash, size: f.size, chunkSize: f.chunkSize, chunkCount: 0 });
    }
  });
  const contents = await ropes.readWhole(tenantId, wanted);
  return {
    results: found.map((f, i) => {
      if (!f) return { error: toItemError(new StoreError("ERR_NOT_FOUND", `no file at ${paths[i]}`)) };
      if (!included[i]) return { file: toFileMeta(f) };
      return {
        file: toFileMeta(f),
        contents: contents.get(f.ropeHash.toString("hex")),
        contentsIncluded: true,
      };
    }),
  };
}
