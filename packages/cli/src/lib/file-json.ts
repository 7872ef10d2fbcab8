/** JSON and text renderings of file metadata. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FileMeta } from "@cacheroach/proto";
import { formatTime } from "./format.js";
import { hex } from "./rope-hash.js";

/** A FileMeta as plain JSON for --json output (numbers, hex hash, ISO times). */
export interface FileJson {
  tenantId: string;
  path: string;
  version: number;
  size: number;
  contentHash: string;
  contentType: string;
  createdAt: string;
  modifiedAt: string;
  meta: Record<string, string>;
}

/** Converts file metadata to {@link FileJson}. */
export function fileJson(f: FileMeta): FileJson {
  return {
    tenantId: f.tenantId,
    path: f.path,
    version: Number(f.version),
    size: Number(f.size),
    contentHash: hex(f.contentHash),
    contentType: f.contentType,
    createdAt: formatTime(f.createdAt ? timestampDate(f.createdAt) : undefined),
    modifiedAt: formatTime(f.modifiedAt ? timestampDate(f.modifiedAt) : undefined),
    meta: { ...f.meta },
  };
}

/** First 12 hex digits of a content hash. */
export function shortHash(hash: Uint8Array): string {
  return hex(hash).slice(0, 12);
}
