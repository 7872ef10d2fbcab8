/**
 * Running an external program (the CLI, curl, restic, nginx) as a timed, bounded child process.
 *
 * The wall time is measured from spawn to exit, so a CLI measurement includes its process start-up
 * (Node + oclif), exactly what a user waits for. Every run has a timeout after which the child is
 * SIGKILLed, and captured output is capped, so no benchmark step can hang or grow without bound.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

/** The repository root (bench/..). */
export const REPO_ROOT = join(import.meta.dirname, "..");

/** The real `cacheroach` command of this checkout. */
export const CLI_BIN = join(REPO_ROOT, "packages", "cli", "bin", "run.js");

/** Options of {@link run}. */
export interface RunOptions {
  /** Extra environment (merged over process.env). */
  env?: Record<string, string | undefined>;
  /** Working directory. */
  cwd?: string;
  /** "capture" (default) keeps stdout in memory (capped); "ignore" sends it to /dev/null. */
  stdout?: "capture" | "ignore";
  /** Kill the child after this long; default 10 minutes. */
  timeoutMs?: number;
  /** Resolve instead of throwing when the exit code is not 0. */
  allowFailure?: boolean;
}

/** What a finished child did. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  seconds: number;
}

/** Largest stdout kept in memory (a 100k-file `ls --json` is ~40 MiB). */
const MAX_STDOUT = 512 << 20;
/** Stderr is kept only for error messages. */
const MAX_STDERR = 64 << 10;

/** Children of {@link run} still running (killed by {@link killRunning} on an interrupt). */
const running = new Set<ChildProcess>();

/** SIGKILLs every child of {@link run} that is still running (before the rest of the clean-up). */
export function killRunning(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** Runs `cmd args…`, waits for it to exit, and returns its output and wall time. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", opts.stdout === "ignore" ? "ignore" : "pipe", "pipe"],
    });
    running.add(child);
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let overflow = false;
    child.stdout?.on("data", (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_STDOUT) {
        overflow = true;
        child.kill("SIGKILL");
      } else out.push(d);
    });
    child.stderr?.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-MAX_STDERR);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      running.delete(child);
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const result = { code, stdout: Buffer.concat(out).toString(), stderr: err, seconds };
      const what = `${cmd.split("/").pop()} ${args
        .map((a) => (a.length > 60 ? `${a.slice(0, 57)}…` : a))
        .slice(0, 8)
        .join(" ")}`;
      if (overflow) reject(new Error(`${what}: more than ${MAX_STDOUT} bytes of output`));
      else if (signal)
        reject(new Error(`${what}: killed by ${signal} after ${seconds.toFixed(1)} s\n${err}`));
      else if (code !== 0 && !opts.allowFailure)
        reject(new Error(`${what}: exit ${code}\n${err.slice(-4000)}`));
      else resolve(result);
    });
  });
}

/** Runs the `cacheroach` CLI of this checkout with a config file. */
export function cli(config: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [CLI_BIN, ...args, "-c", config], opts);
}

/** True if `name` is an executable on PATH (detection only; nothing is ever installed). */
export async function onPath(name: string): Promise<boolean> {
  const r = await run("sh", ["-c", `command -v ${name}`], { allowFailure: true, timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() !== "";
}

/**
 * A command the bench needs from Debian: true when it is on PATH, installing `aptPackage` first
 * when it is missing and this is root with apt-get (a fresh machine lacks nginx and restic, and
 * a peer row skipped in silence would hide the comparison). False when it cannot be had; the
 * caller says how to install it.
 */
export async function ensureTool(
  name: string,
  aptPackage: string,
  log: (line: string) => void,
): Promise<boolean> {
  if (await onPath(name)) return true;
  const apt = await onPath("apt-get");
  if (process.getuid?.() !== 0 || !apt) {
    log(
      apt
        ? `${name} is not installed and this is not root, so its row is skipped; to include it: sudo apt-get install -y ${aptPackage}`
        : `${name} is not installed (and there is no apt-get), so its row is skipped; install ${name} to include it`,
    );
    return false;
  }
  log(`${name} is missing: apt-get install -y ${aptPackage}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_SUSPEND: "1" };
  // Waits for the dpkg lock (another apt-get may be running) instead of failing at once.
  const install = () =>
    run("apt-get", ["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=120", aptPackage], {
      allowFailure: true,
      timeoutMs: 600_000,
      env,
    });
  if ((await install()).code !== 0) {
    await run("apt-get", ["update", "-qq"], { allowFailure: true, timeoutMs: 600_000, env });
    await install();
  }
  return onPath(name);
}
