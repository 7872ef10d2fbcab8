/**
 * What `file sync` does, decided before anything is done: the local tree (one walk with stat)
 * against the remote directory (one listing, with sizes, content hashes and each file's "mtime"
 * metadata). A file is unchanged without reading it when its size and modification time match
 * (to the millisecond; file-times.ts); when only the time differs, or with --checksum, its content
 * hash decides (small files are read, large ones come from the hash cache, or are compared while
 * they are uploaded / hashed before a download). Nothing here calls the server per file.
 */
import type { FileMeta } from "@cacheroach/proto";
import { mapLimit } from "./concurrency.js";
import { quickSame } from "./file-times.js";
import type { HashCache } from "./hash-cache.js";
import type { LocalEntry } from "./local-files.js";
import { localContentHash } from "./remote-heads.js";
import { sameAsRemote } from "./upload.js";

/** Why a file is transferred. */
export type Reason = "new" | "changed";

/** One file of a sync plan. */
export interface SyncItem {
  rel: string;
  local: LocalEntry | undefined;
  remote: FileMeta | undefined;
  action: "upload" | "download" | "delete" | "unchanged";
  reason?: Reason;
  /**
   * For an upload whose content could not be compared yet (large, not in the hash cache): compare
   * while uploading, and write nothing if it is the same.
   */
  compareOnUpload?: boolean;
  /** For an unchanged file whose modification time differed (a download sets it). */
  touch?: boolean;
}

/** How to compare. */
export interface CompareOptions {
  /** Compare every file with the same size by content, whatever its modification time. */
  checksum: boolean;
  /** Delete what the source lacks. */
  delete: boolean;
  hashCache: HashCache | undefined;
  /** Files compared at once. */
  parallelism: number;
}

/** Whether local and remote files of the same size hold the same content (undefined: not known yet). */
async function sameContent(
  local: LocalEntry,
  remote: FileMeta,
  opts: CompareOptions,
  readLarge: boolean,
): Promise<boolean | undefined> {
  const hash = await localContentHash(local.localPath, remote.chunkSize, opts.hashCache, readLarge);
  return hash === undefined ? undefined : sameAsRemote(remote, hash, remote.chunkSize);
}

/** Plans an upload of `locals` over `remotes` (keyed by relative path). */
export async function planUpload(
  locals: readonly LocalEntry[],
  remotes: ReadonlyMap<string, FileMeta>,
  opts: CompareOptions,
): Promise<SyncItem[]> {
  const items: SyncItem[] = [];
  const toCompare: SyncItem[] = [];
  const seen = new Set<string>();
  for (const local of locals) {
    seen.add(local.rel);
    const remote = remotes.get(local.rel);
    const item: SyncItem = { rel: local.rel, local, remote, action: "upload", reason: "new" };
    if (remote) {
      item.reason = "changed";
      if (Number(remote.size) === local.size) {
        if (!opts.checksum && quickSame(local.size, local.mtimeMs, remote)) item.action = "unchanged";
        else toCompare.push(item);
      }
    }
    items.push(item);
  }
  await mapLimit(toCompare, opts.parallelism, async (item) => {
    const same = await sameContent(item.local!, item.remote!, opts, false);
    if (same === true) item.action = "unchanged";
    else if (same === undefined) item.compareOnUpload = true;
  });
  if (opts.delete) {
    for (const [rel, remote] of remotes) {
      if (!seen.has(rel)) items.push({ rel, local: undefined, remote, action: "delete" });
    }
  }
  return items;
}

/** Plans a download of `remotes` over `locals`. */
export async function planDownload(
  remotes: ReadonlyMap<string, FileMeta>,
  locals: readonly LocalEntry[],
  opts: CompareOptions,
): Promise<SyncItem[]> {
  const byRel = new Map(locals.map((l) => [l.rel, l]));
  const items: SyncItem[] = [];
  const toCompare: SyncItem[] = [];
  for (const [rel, remote] of remotes) {
    const local = byRel.get(rel);
    const item: SyncItem = { rel, local, remote, action: "download", reason: "new" };
    if (local) {
      item.reason = "changed";
      if (Number(remote.size) === local.size) {
        if (!opts.checksum && quickSame(local.size, local.mtimeMs, remote)) item.action = "unchanged";
        else toCompare.push(item);
      }
    }
    items.push(item);
  }
  await mapLimit(toCompare, opts.parallelism, async (item) => {
    if (await sameContent(item.local!, item.remote!, opts, true)) {
      item.action = "unchanged";
      item.touch = true;
    }
  });
  if (opts.delete) {
    for (const local of locals) {
      if (!remotes.has(local.rel)) items.push({ rel: local.rel, local, remote: undefined, action: "delete" });
    }
  }
  return items;
}
