/**
 * `node --import tsx scripts/with-pg.ts -- <command …>`: runs a command (the test runner) with
 * `PG_TEST_URL` pointing at a PostgreSQL server, and exits with the command's exit code.
 *
 * Why a wrapper: Node 20's test runner has no global setup, so one shared server for all test files has
 * to be started outside it.
 *
 * - `DATABASE_URL` set: used as is (nothing is started).
 * - Otherwise one throwaway embedded PostgreSQL in `<os.tmpdir()>/cacheroach-test-pg-<pid>/` (cluster in
 *   `data/`, password in `data.password`) with fsync, synchronous_commit and full_page_writes off; it is
 *   stopped and the directory deleted when the command ends. Leftovers of earlier runs that were
 *   SIGKILLed (directory whose PID is dead) are swept first: orphaned postmaster stopped, directory removed.
 * - SIGINT/SIGTERM/SIGHUP are forwarded to the command; the wrapper still waits for it and cleans up.
 * - One line on stderr names the database used (never its password).
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { clearStalePostmaster, startEmbeddedPostgres } from "../packages/server/src/db/embedded-postgres.js";

const DIR_PREFIX = "cacheroach-test-pg-";
const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** Events on which embedded-postgres' exit hook (async-exit-hook) stops postgres and exits on its own. */
const EXIT_HOOK_EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "message"] as const;

const sep = process.argv.indexOf("--");
const command = sep >= 0 ? process.argv.slice(sep + 1) : [];
if (command.length === 0) {
  console.error("usage: node --import tsx scripts/with-pg.ts -- <command> [args…]");
  process.exit(2);
}

/** True if a process with this PID exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Stops and deletes throwaway clusters of earlier runs whose wrapper process is gone. */
async function sweepOrphans(): Promise<void> {
  for (const name of readdirSync(os.tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const pid = Number.parseInt(name.slice(DIR_PREFIX.length), 10);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    const dir = path.join(os.tmpdir(), name);
    try {
      if (existsSync(path.join(dir, "data"))) await clearStalePostmaster(path.join(dir, "data"));
      rmSync(dir, { recursive: true, force: true });
      console.error(`with-pg: removed the leftover test cluster ${dir}`);
    } catch (err) {
      console.error(`with-pg: could not remove the leftover test cluster ${dir}:`, err);
    }
  }
}

/** Listeners currently registered for the exit hook's events, to tell which ones it adds. */
function listenerSnapshot(): Map<string, Set<unknown>> {
  return new Map(EXIT_HOOK_EVENTS.map((e) => [e, new Set<unknown>(process.listeners(e as NodeJS.Signals))]));
}

/**
 * Removes the signal/beforeExit listeners that embedded-postgres' exit hook added since `before`: they
 * would stop postgres and exit (130/143/0) while the test runner is still running. Its 'exit' listener
 * stays as a safety net (it sends postgres SIGINT if this process exits some other way).
 */
function detachExitHook(before: Map<string, Set<unknown>>): void {
  for (const event of EXIT_HOOK_EVENTS) {
    const known = before.get(event) ?? new Set<unknown>();
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!known.has(listener)) process.off(event, listener as (...args: unknown[]) => void);
    }
  }
}

/** `postgres://user@host:port/db` without the password, for the log line. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

let pgUrl: string;
let stopPg = async (): Promise<void> => {};
let throwaway: string | undefined;

if (process.env["DATABASE_URL"]) {
  pgUrl = process.env["DATABASE_URL"];
  console.error(`with-pg: tests use DATABASE_URL ${redacted(pgUrl)}`);
} else {
  await sweepOrphans();
  throwaway = path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}`);
  rmSync(throwaway, { recursive: true, force: true });
  const t0 = Date.now();
  const before = listenerSnapshot();
  try {
    const db = await startEmbeddedPostgres({
      dir: path.join(throwaway, "data"),
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
    });
    pgUrl = db.url;
    stopPg = () => db.stop();
  } catch (err) {
    console.error("with-pg: could not start the embedded PostgreSQL:", err);
    rmSync(throwaway, { recursive: true, force: true });
    process.exit(1);
  } finally {
    detachExitHook(before);
  }
  const port = new URL(pgUrl).port;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.error(
    `with-pg: tests use a throwaway embedded PostgreSQL on 127.0.0.1:${port} (${throwaway}, ready in ${secs} s)`,
  );
}

const [file, ...args] = command as [string, ...string[]];
const child = spawn(file, args, { stdio: "inherit", env: { ...process.env, PG_TEST_URL: pgUrl } });
for (const sig of FORWARDED) {
  process.on(sig, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  });
}
const exitCode = await new Promise<number>((resolve) => {
  child.once("error", (err) => {
    console.error(`with-pg: could not run ${file}:`, err.message);
    resolve(127);
  });
  child.once("exit", (code, signal) => {
    resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
  });
});

try {
  await stopPg();
} catch (err) {
  console.error("with-pg: stopping PostgreSQL failed:", err);
}
if (throwaway) rmSync(throwaway, { recursive: true, force: true });
// Explicit: embedded-postgres' exit hook would otherwise turn a failing exit code into 0 (beforeExit).
process.exit(exitCode);
