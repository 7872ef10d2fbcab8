/**
 * Temp files of downloads, and what is left of them after a process was killed.
 *
 * A download is written to `.<name>.<pid>.<tag>.cacheroach-tmp` next to its target and renamed
 * into place once verified. The tag is either the first 16 hex digits of the content hash (a
 * large download, resumable) or `u…` (unique, for small files written whole). A SIGKILLed
 * `file get` cannot remove its temp files; the next get finds them by their dead process id:
 * - a resumable one for the same target and content is adopted and the download continues
 *   after its bytes (which the final content hash verifies like any others);
 * - every other one of a dead process in a directory a get writes to is removed, except
 *   resumable ones younger than {@link KEEP_RESUMABLE_MS}, kept for a get of their own target.
 */
import { randomBytes } from "node:crypto";
import { readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const TEMP_SUFFIX = ".cacheroach-tmp";

/** How long a dead process's resumable partial download is kept for a get of its target. */
export const KEEP_RESUMABLE_MS = 7 * 24 * 3600 * 1000;

const RESUMABLE_TAG = /^[0-9a-f]{16}$/;
const UNIQUE = `u${randomBytes(4).toString("hex")}`;
let seq = 0;

/** A temp path for `target` with a tag no other temp file has (small files, written whole). */
export function uniqueTempPath(target: string): string {
  return tempPath(target, `${UNIQUE}${(seq++).toString(36)}`);
}

/** The temp path of this process for `target` with `tag`. */
export function tempPath(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${tag}${TEMP_SUFFIX}`);
}

/** The resumable tag of a content hash. */
export function resumableTag(contentHash: Uint8Array): string {
  return Buffer.from(contentHash.subarray(0, 8)).toString("hex");
}

/** A temp file and what its name says. */
interface TempFile {
  path: string;
  /** The target's file name. */
  name: string;
  pid: number;
  tag: string;
}

const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-z]+)\.cacheroach-tmp$/;

function parse(dir: string, entry: string): TempFile | undefined {
  const m = TEMP_NAME.exec(entry);
  if (!m) return undefined;
  return { path: join(dir, entry), name: m[1]!, pid: Number(m[2]), tag: m[3]! };
}

/** True if a process with this id runs (EPERM: it runs, as someone else). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Temp files in `dir` whose process is gone; [] when the directory cannot be read. */
async function deadTemps(dir: string): Promise<TempFile[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const out: TempFile[] = [];
  for (const e of entries) {
    if (!e.endsWith(TEMP_SUFFIX)) continue;
    const t = parse(dir, e);
    if (t && t.pid > 0 && !isAlive(t.pid)) out.push(t);
  }
  return out;
}

/**
 * Takes over a partial download of `target` with `tag` that a dead process left (the largest of
 * at most `maxBytes`, if several), renaming it to this process's temp path; removes that target's
 * other leftovers. Returns the adopted file's path and size, or undefined.
 */
export async function adoptLeftover(
  target: string,
  tag: string,
  maxBytes: number,
): Promise<{ path: string; size: number } | undefined> {
  const name = basename(target);
  const mine = (await deadTemps(dirname(target))).filter((t) => t.name === name);
  const sized = await Promise.all(
    mine.map(async (t) => ({
      t,
      size: await stat(t.path).then(
        (s) => s.size,
        () => -1,
      ),
    })),
  );
  sized.sort((a, b) => b.size - a.size);
  let adopted: { path: string; size: number } | undefined;
  for (const { t, size } of sized) {
    if (!adopted && t.tag === tag && size > 0 && size <= maxBytes) {
      const path = tempPath(target, tag);
      try {
        await rename(t.path, path); // atomic: of two gets racing for it, one wins
        adopted = { path, size };
        continue;
      } catch {
        // taken by another get meanwhile
      }
    }
    await rm(t.path, { force: true });
  }
  return adopted;
}

const swept = new Set<string>();

/**
 * Removes what dead processes left in `dir` (once per directory per process): every temp file
 * except resumable ones younger than {@link KEEP_RESUMABLE_MS}. Failures are ignored: this is
 * tidying, never a reason for a download to fail.
 */
export async function sweepLeftovers(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  const now = Date.now();
  await Promise.all(
    (await deadTemps(dir)).map(async (t) => {
      if (RESUMABLE_TAG.test(t.tag)) {
        const mtime = await stat(t.path).then(
          (s) => s.mtimeMs,
          () => 0,
        );
        if (now - mtime < KEEP_RESUMABLE_MS) return;
      }
      await rm(t.path, { force: true }).catch(() => {});
    }),
  );
}
