import { parseTimestamptz } from "./timestamptz.js";

/** One version of one file, as stored. */
export interface FileRecord {
  readonly tenantId: string;
  readonly path: string;
  readonly version: number;
  readonly ropeHash: Buffer;
  readonly size: number;
  readonly chunkSize: number;
  readonly contentType: string;
  readonly meta: Record<string, string>;
  readonly ctime: Date;
  readonly mtime: Date;
  readonly dtime: Date | null;
}

/** A write's guard. `undefined` means unconditional. */
export type WritePrecondition =
  | { readonly kind: "mustNotExist" }
  | { readonly kind: "mustExist" }
  | { readonly kind: "version"; readonly version: number }
  | { readonly kind: "contentHash"; readonly hash: Buffer };

/** Database row shape shared by `files` and `file_versions`. */
export interface FileRow {
  tenant_id: string;
  path: Buffer;
  version: string;
  rope_hash: Buffer;
  size: string;
  chunk_size: number;
  content_type: string;
  meta: Record<string, string> | null;
  ctime: Date;
  mtime: Date;
  dtime: Date | null;
}

/** Column list matching {@link FileRow}. */
export const FILE_COLUMNS =
  "tenant_id, path, version, rope_hash, size, chunk_size, content_type, meta, ctime, mtime, dtime";

/** Converts a row (INT8 arrives as a string) to a record. */
export function fileFromRow(r: FileRow): FileRecord {
  return {
    tenantId: r.tenant_id,
    path: r.path.toString("utf8"),
    version: Number(r.version),
    ropeHash: r.rope_hash,
    size: Number(r.size),
    chunkSize: r.chunk_size,
    contentType: r.content_type,
    meta: r.meta ?? {},
    ctime: r.ctime,
    mtime: r.mtime,
    dtime: r.dtime,
  };
}

/** Row shape of {@link LIST_COLUMNS}. */
export interface FileListRow {
  path: Buffer;
  version: string;
  rope_hash: Buffer;
  size: string;
  chunk_size: number;
  content_type: string;
  meta: string;
  ctime: string;
  /** NULL when equal to ctime. */
  mtime: string | null;
}

/**
 * Columns of a listing of live files in one tenant. tenant_id and dtime are known from the query;
 * meta and the timestamps arrive as text, which {@link fileFromListRow} parses far faster than
 * pg's JSON and date parsers (those took about a quarter of a 1000-row listing query); and mtime,
 * equal to ctime for every file written once, is then not formatted and sent twice.
 */
export const LIST_COLUMNS =
  "path, version, rope_hash, size, chunk_size, content_type, meta::TEXT AS meta, ctime::TEXT AS ctime, " +
  "CASE WHEN mtime = ctime THEN NULL ELSE mtime::TEXT END AS mtime";

/** Converts a listing row of a live file in `tenantId` to the record {@link fileFromRow} would give. */
export function fileFromListRow(tenantId: string, r: FileListRow): FileRecord {
  const ctime = parseTimestamptz(r.ctime);
  return {
    tenantId,
    path: r.path.toString("utf8"),
    version: Number(r.version),
    ropeHash: r.rope_hash,
    size: Number(r.size),
    chunkSize: r.chunk_size,
    contentType: r.content_type,
    meta: r.meta === "{}" ? {} : (JSON.parse(r.meta) as Record<string, string>),
    ctime,
    // Records are never mutated, so one Date serves both.
    mtime: r.mtime === null ? ctime : parseTimestamptz(r.mtime),
    dtime: null,
  };
}
