import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { FileMeta, Precondition } from "@cacheroach/proto";
import { CacheroachError } from "../errors.js";
import type { FileRecord, WritePrecondition } from "../store/file-meta.js";
import { validateContentType as validateMediaType } from "../store/media-type.js";

/**
 * Stored file version → API message. Built as a complete message literal rather than through
 * `create()`, whose per-field reflection dominated listing profiles; every field is set, so the
 * result is exactly what `create(FileMetaSchema, …)` would return.
 */
export function toFileMeta(f: FileRecord): FileMeta {
  return {
    $typeName: "cacheroach.v1.FileMeta",
    tenantId: f.tenantId,
    path: f.path,
    version: BigInt(f.version),
    size: BigInt(f.size),
    contentHash: f.ropeHash,
    contentType: f.contentType,
    createdAt: timestamp(f.ctime),
    modifiedAt: timestamp(f.mtime),
    meta: f.meta,
    chunkSize: f.chunkSize,
  };
}

function timestamp(d: Date): Timestamp {
  const ms = d.getTime();
  const seconds = Math.floor(ms / 1000);
  return {
    $typeName: "google.protobuf.Timestamp",
    seconds: BigInt(seconds),
    nanos: (ms - seconds * 1000) * 1_000_000,
  };
}

/** API precondition → store precondition (undefined when unset). */
export function fromPrecondition(p: Precondition | undefined): WritePrecondition | undefined {
  switch (p?.kind.case) {
    case undefined:
      return undefined;
    case "mustNotExist":
      return p.kind.value ? { kind: "mustNotExist" } : undefined;
    case "mustExist":
      return p.kind.value ? { kind: "mustExist" } : undefined;
    case "version":
      if (p.kind.value <= 0n)
        throw new CacheroachError("ERR_BAD_REQUEST", "precondition version must be positive");
      return { kind: "version", version: Number(p.kind.value) };
    case "contentHash":
      if (p.kind.value.length !== 32)
        throw new CacheroachError("ERR_BAD_REQUEST", "precondition content_hash must be 32 bytes");
      return { kind: "contentHash", hash: Buffer.from(p.kind.value) };
  }
}

/** Validates user metadata: bounded count and sizes, and no NUL (JSONB text cannot hold it). */
export function validateMeta(meta: Record<string, string>): Record<string, string> {
  const entries = Object.entries(meta);
  if (entries.length > 64) throw new CacheroachError("ERR_BAD_REQUEST", "meta has more than 64 entries");
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128)
      throw new CacheroachError("ERR_BAD_REQUEST", "meta keys must be 1..128 characters");
    if (v.length > 4096)
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `meta value of ${JSON.stringify(k)} exceeds 4096 characters`,
      );
    if (k.includes("\0") || v.includes("\0")) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `meta ${k.includes("\0") ? "key" : `value of ${JSON.stringify(k)}`} contains NUL, which cannot be stored`,
      );
    }
  }
  return meta;
}

/** Validates an RPC content_type: "" or a media type that can be sent back as a header. */
export function validateContentType(ct: string): string {
  return validateMediaType(ct, "content_type");
}
