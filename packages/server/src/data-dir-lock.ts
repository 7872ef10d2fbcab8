import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { errnoOf } from "./util/errno.js";

const execFileP = promisify(execFile);

/** The file a server keeps in its data directory while it runs. */
export const DATA_DIR_LOCK_FILE = "cacheroach.lock";

/** How often {@link lockDataDir} looks again when the lock file changes under it. */
const ATTEMPTS = 5;

/** The data directory is held by another live process; `pid` names it. */
export class DataDirInUseError extends Error {
  override readonly name = "DataDirInUseError";

  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `data directory ${dir} is in use by another cacheroach server (PID ${pid}); stop that server first, or use another data directory`,
    );
  }
}

/** A held data directory. */
export interface DataDirLock {
  /** The lock file. */
  readonly file: string;
  /** Removes the lock file if it is still this holder's. Idempotent. */
  release(): Promise<void>;
}

/** What a lock file holds: the holder's PID and when that process started (see {@link startedOf}). */
interface LockRecord {
  readonly pid: number;
  readonly started: string;
}

/**
 * Makes this process the only server of `dir` (created if missing): one embedded PostgreSQL per
 * cluster, started by one server. The lock is the file {@link DATA_DIR_LOCK_FILE} naming this
 * process; a second server finds it and is refused with {@link DataDirInUseError} before it
 * writes anything.
 *
 * A lock left by a server that was killed (SIGKILL, power loss) is stale and taken over: its PID
 * no longer runs, or runs another process (the start time differs, so a PID reused since, also
 * after a reboot, does not count). The file is created whole and at once (written aside, then
 * hard-linked into place, which fails if it exists), and a stale one is moved aside before it is
 * removed, so of several servers starting at once on a stale lock exactly one wins (unless a
 * third one arrives between another's move and its check, and moves the winner's lock).
 *
 * The check is per machine: two containers that share the directory but not their PID
 * namespace cannot see each other's process (PostgreSQL's own postmaster.pid check cannot either).
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const file = path.join(dir, DATA_DIR_LOCK_FILE);
  const mine = `${JSON.stringify({ pid: process.pid, started: (await startedOf(process.pid)) ?? "" })}\n`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const current = await readIfExists(file);
    if (current === undefined) {
      await mkdir(dir, { recursive: true });
      if (await createExclusive(file, mine)) return held(file, mine);
      continue; // another process created it meanwhile: look at it
    }
    const holder = parseRecord(current);
    if (holder && (await isHeldBy(holder))) throw new DataDirInUseError(dir, holder.pid);
    await removeIfUnchanged(file, current);
  }
  throw new Error(`could not lock the data directory ${dir}: ${file} kept changing`);
}

function held(file: string, mine: string): DataDirLock {
  let released: Promise<void> | undefined;
  return {
    file,
    release() {
      released ??= (async () => {
        if ((await readIfExists(file)) === mine) await unlink(file).catch(ignoreMissing);
      })();
      return released;
    },
  };
}

/** Creates `file` holding `text` if it does not exist; false if it does. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if (errnoOf(err) === "EEXIST") return false;
    throw err;
  } finally {
    await unlink(tmp).catch(ignoreMissing);
  }
}

/**
 * Removes the stale lock `file` if it still says `text`. It is first moved aside, which only
 * one process can do: if what was moved is another text, a process took the lock over since it
 * was read, and its lock is put back.
 */
async function removeIfUnchanged(file: string, text: string): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    await rename(file, aside);
  } catch (err) {
    ignoreMissing(err);
    return;
  }
  try {
    if ((await readFile(aside, "utf8")) !== text) await link(aside, file).catch(() => {});
  } finally {
    await unlink(aside).catch(ignoreMissing);
  }
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<LockRecord>;
    if (Number.isInteger(r.pid) && (r.pid ?? 0) > 0 && typeof r.started === "string")
      return { pid: r.pid!, started: r.started };
  } catch {
    // damaged (a crash while the disk was full, an edit): nobody can be shown to hold it
  }
  return undefined;
}

/** True if the process the record names still runs (the same process, not a reuse of its PID). */
async function isHeldBy(holder: LockRecord): Promise<boolean> {
  if (!isAlive(holder.pid)) return false;
  const started = await startedOf(holder.pid);
  // Unknown start times (no /proc, no ps): a live PID must be taken to hold it.
  return !holder.started || !started || started === holder.started;
}

/**
 * When a process started, as a string that differs for two processes that had the same PID:
 * on Linux the boot ID and the start time in clock ticks since boot (/proc), elsewhere what
 * `ps -o lstart=` says. Undefined if the process does not exist or nothing can tell.
 */
export async function startedOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime); the command name (field 2) may contain spaces and parentheses.
    const ticks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const boot = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
    if (ticks) return `${boot}/${ticks}`;
  } catch {
    // not Linux, or the process is gone
  }
  try {
    const out = (await execFileP("ps", ["-o", "lstart=", "-p", String(pid)])).stdout.trim();
    return out || undefined;
  } catch {
    return undefined;
  }
}

/** True if a process with this PID exists (EPERM: it exists but belongs to someone else). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM";
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    ignoreMissing(err);
    return undefined;
  }
}

function ignoreMissing(err: unknown): void {
  if (errnoOf(err) !== "ENOENT") throw err;
}
