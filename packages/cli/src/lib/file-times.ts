/**
 * A file's local modification time travels with it as the user metadata "mtime" (RFC 3339 UTC,
 * milliseconds), as rclone stores it: `file put` and `file sync` write it, and `file sync`
 * compares it with the local file's (to the millisecond) to tell unchanged files without reading
 * them, and sets it on the files it downloads.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FileMeta } from "@cacheroach/proto";

/** The metadata key. */
export const MTIME_KEY = "mtime";

/**
 * A local modification time (stat's mtimeMs) in whole milliseconds. Setting a time of T ms (a
 * download does) stores T / 1000 seconds, which a double cannot hold exactly: the file then reads
 * back as T - 0.00005 ms or so, and a plain floor gave T - 1, so every downloaded file looked
 * changed to the next sync. Within a microsecond below a millisecond counts as that millisecond.
 */
export function wholeMs(mtimeMs: number): number {
  return Math.floor(mtimeMs + 0.001);
}

/** The metadata recording a modification time of `ms` milliseconds since the epoch. */
export function mtimeMeta(ms: number): Record<string, string> {
  return { [MTIME_KEY]: new Date(wholeMs(ms)).toISOString() };
}

/**
 * The modification time a remote file stands for, in whole milliseconds: its "mtime" metadata
 * when it has a valid one, else when it was written.
 */
export function remoteMtimeMs(f: FileMeta): number {
  const text = f.meta[MTIME_KEY];
  const parsed = text === undefined ? Number.NaN : Date.parse(text);
  if (Number.isFinite(parsed)) return parsed;
  return f.modifiedAt ? timestampDate(f.modifiedAt).getTime() : 0;
}

/** Whether a local file (size, mtimeMs) and a remote one look the same by size and modification time. */
export function quickSame(size: number, mtimeMs: number, remote: FileMeta): boolean {
  return Number(remote.size) === size && wholeMs(mtimeMs) === remoteMtimeMs(remote);
}
