/**
 * Running CLI commands in-process under `node --test` (integration-facts §4.3): only string
 * writes are captured (node:test's own Buffer events pass through), and process.exitCode is
 * restored after each run so an expected failure does not fail the test file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Errors, run } from "@oclif/core";

/** The CLI package directory (oclif loads dist/commands from here; run `tsc -b` first). */
export const CLI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** What one in-process run produced. */
export interface CliRun {
  stdout: string;
  stderr: string;
  /** The error oclif threw (text mode failures), if any. */
  error: Error | undefined;
  /** The exit code the process would have: from the error, else the exitCode the command set, else 0. */
  code: number;
}

type WriteFn = typeof process.stdout.write;

/** Runs `cacheroach <argv>` in this process and captures its output. */
export async function runCli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const cap = { stdout: [] as string[], stderr: [] as string[] };
  const orig = { stdout: process.stdout.write, stderr: process.stderr.write };
  const mock = (k: "stdout" | "stderr"): WriteFn =>
    ((c: unknown, ...r: unknown[]) => {
      if (typeof c !== "string") return (orig[k] as (...a: unknown[]) => boolean).call(process[k], c, ...r);
      cap[k].push(c);
      (r.find((x) => typeof x === "function") as (() => void) | undefined)?.();
      return true;
    }) as WriteFn;
  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    savedEnv[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const exitCode = process.exitCode;
  process.exitCode = undefined;
  let error: Error | undefined;
  let setCode: number | undefined;
  process.stdout.write = mock("stdout");
  process.stderr.write = mock("stderr");
  try {
    await run(argv, CLI_ROOT);
  } catch (e) {
    error = e as Error;
  } finally {
    process.stdout.write = orig.stdout;
    process.stderr.write = orig.stderr;
    setCode = typeof process.exitCode === "number" ? process.exitCode : undefined;
    process.exitCode = exitCode;
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  let code = setCode ?? 0;
  if (error) {
    const exit = (error as Errors.CLIError).oclif?.exit;
    code = typeof exit === "number" ? exit : 1;
  }
  return { stdout: cap.stdout.join(""), stderr: cap.stderr.join(""), error, code };
}

/** Runs `node bin/run.js <argv>` as a child process (for binary stdout and real exit codes). */
export function spawnCli(
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(CLI_ROOT, "bin", "run.js"), ...argv], {
      cwd: opts.cwd ?? CLI_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      resolveRun({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), code }),
    );
  });
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "cacheroach-cli-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The message of a run's error (printable form), or "". */
export function errorText(r: CliRun): string {
  if (!r.error) return "";
  const e = r.error as Errors.CLIError;
  return [e.message, ...(e.suggestions ?? [])].join("\n");
}

/** The well-known scratchpad tenant every server creates. */
export const SCRATCHPAD = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

/** Parses a run's stdout as JSON (with the run's error in the assertion message when it is not). */
export function jsonOut<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${errorText(r)}\n${r.stderr}`);
  }
}

/** Runs `fn` with `dir` as the working directory (test files run in their own processes). */
export async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(prev);
  }
}

/**
 * A `cacheroach start --json --bind 127.0.0.1:0 …` child process (a real server in a process of
 * its own), started with exactly `env`; `start()` resolves once it listens.
 */
export class ServerProcess {
  private stderrText = "";
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on("exit", () => {
      this.exited = true;
    });
  }

  static async start(argv: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<ServerProcess> {
    const child = spawn(
      process.execPath,
      [join(CLI_ROOT, "bin", "run.js"), "start", "--json", "--bind", "127.0.0.1:0", ...argv],
      { stdio: ["ignore", "pipe", "pipe"], env, ...(cwd ? { cwd } : {}) },
    );
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString("utf8");
    });
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${err}`)), 30_000);
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString("utf8");
        try {
          const info = JSON.parse(out) as { url: string };
          clearTimeout(timer);
          resolveUrl(info.url);
        } catch {
          // not a whole document yet
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) before listening:\n${err}`));
      });
    });
    const s = new ServerProcess(child, url);
    s.stderrText = err;
    child.stderr?.on("data", (d: Buffer) => {
      s.stderrText += d.toString("utf8");
    });
    return s;
  }

  /** True while the process runs. */
  get alive(): boolean {
    return !this.exited && this.child.exitCode === null;
  }

  /** Everything the server wrote to stderr (its log). */
  get stderr(): string {
    return this.stderrText;
  }

  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const gone = new Promise<void>((resolveGone) => this.child.once("exit", () => resolveGone()));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  }
}
