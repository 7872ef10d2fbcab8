/**
 * What the CLI tests share: running CLI commands in-process under `node --test` (only string
 * writes are captured, node:test's own Buffer events pass through, and process.exitCode is
 * restored after each run so an expected failure does not fail the test file) or as child
 * processes; a test server with a CLI config for a block of tests ({@link useCliServer}); server
 * processes of `cacheroach start` ({@link ServerProcess}, {@link useStartedServers}).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { saveConfig } from "@cacheroach/cli";
import {
  createTestDatabase,
  startTestServer,
  type TestDatabase,
  type TestServer,
} from "@cacheroach/server/testing";
import { type Errors, run } from "@oclif/core";

/** The CLI package directory (oclif loads dist/commands from here; run `tsc -b` first). */
export const CLI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The CLI's entry point, for child processes (`node CLI_BIN <argv>`). */
export const CLI_BIN = join(CLI_ROOT, "bin", "run.js");

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

/**
 * Runs `node bin/run.js <argv>` as a child process (for binary stdout and real exit codes), with
 * `input` on its standard input (else none).
 */
export function spawnCli(
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string; input?: string | Buffer } = {},
): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...argv], {
      cwd: opts.cwd ?? CLI_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => err.push(d));
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

/** A fresh temporary directory for the tests of the calling describe block (or file), removed after them. */
export function useTempDir(prefix?: string): { readonly dir: string } {
  let made: { dir: string; cleanup: () => Promise<void> } | undefined;
  before(async () => {
    made = await tempDir(prefix);
  });
  after(async () => {
    await made?.cleanup();
  });
  return {
    get dir() {
      if (!made) throw new Error("useTempDir: used outside its tests");
      return made.dir;
    },
  };
}

/** A plain HTTP server of a test's own (see {@link listenHttp}). */
export interface LocalHttp {
  server: Server;
  url: string;
  port: number;
  /** Closes the server and its open connections. */
  close(): Promise<void>;
}

/** Starts a plain HTTP server of the test's own on a free loopback port. */
export async function listenHttp(handler: RequestListener): Promise<LocalHttp> {
  const server = createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
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
    /** What `start --json` printed once it listened (url, database, dataDir, bootstrap, …). */
    readonly info: StartInfo,
  ) {
    child.on("exit", () => {
      this.exited = true;
    });
  }

  /** The server's URL. */
  get url(): string {
    return this.info.url;
  }

  /**
   * `detached`: in a process group of its own, like a command run in a terminal, so that
   * `process.kill(-pid, sig)` signals it as Ctrl-C would.
   */
  static async start(
    argv: string[],
    env: NodeJS.ProcessEnv,
    cwd?: string,
    detached = false,
  ): Promise<ServerProcess> {
    const child = spawn(process.execPath, [CLI_BIN, "start", "--json", "--bind", "127.0.0.1:0", ...argv], {
      stdio: ["ignore", "pipe", "pipe"],
      env,
      detached,
      ...(cwd ? { cwd } : {}),
    });
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString("utf8");
    });
    const info = await new Promise<StartInfo>((resolveInfo, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${err}`)), 30_000);
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString("utf8");
        try {
          const doc = JSON.parse(out) as StartInfo;
          clearTimeout(timer);
          resolveInfo(doc);
        } catch {
          // not a whole document yet
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) before listening:\n${err}`));
      });
    });
    const s = new ServerProcess(child, info);
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

  /** The process ID. */
  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a signal; {@link exit} tells how the process ended. */
  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  get exit(): Promise<number | NodeJS.Signals> {
    return new Promise((resolveExit) => {
      if (!this.alive) resolveExit(this.child.exitCode ?? this.child.signalCode ?? -1);
      else this.child.once("exit", (code, sig) => resolveExit(code ?? sig ?? -1));
    });
  }

  /** SIGTERM, then waits for the exit (SIGKILL after 10 s); the exit code (null: it was killed or had exited). */
  async stop(): Promise<number | null> {
    if (!this.alive) return null;
    const gone = new Promise<number | null>((resolveGone) =>
      this.child.once("exit", (code) => resolveGone(code)),
    );
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const code = await gone;
    clearTimeout(timer);
    return code;
  }
}

/** What `cacheroach start --json` prints once it listens. */
export interface StartInfo {
  url: string;
  database: string;
  dataDir: string;
  bootstrap: string;
}

/**
 * Writes a CLI config at `path` for `server` with `token` and a default tenant (the scratchpad
 * unless told otherwise; null for none); returns `path`.
 */
export async function writeCliConfig(
  path: string,
  server: string,
  token: string,
  defaultTenant: string | null = SCRATCHPAD,
): Promise<string> {
  await saveConfig(path, defaultTenant === null ? { server, token } : { server, token, defaultTenant });
  return path;
}

/** A test server for a block of tests, with a temp dir and a CLI config of its super session. */
export interface CliServer {
  readonly ts: TestServer;
  /** A temp dir of the block's own, removed after it. */
  readonly dir: string;
  /** `<dir>/config`: the server, its super token, the scratchpad as default tenant. */
  readonly config: string;
  /** Runs `cacheroach <argv> -c <config>` in this process (with the env of the options). */
  cli(...argv: string[]): Promise<CliRun>;
}

/**
 * Starts a server on a fresh database (startTestServer) with a temp dir and a CLI config before
 * the tests of the calling describe block (or file), and stops and removes them after. `setup`
 * runs once they exist, `teardown` before they go. The properties are usable from the hooks on.
 */
export function useCliServer(
  opts: {
    server?: Parameters<typeof startTestServer>[0];
    /** Environment for every cli() run (read at each run). */
    env?: () => Record<string, string | undefined>;
    setup?: (s: CliServer) => Promise<void>;
    teardown?: (s: CliServer) => Promise<void>;
  } = {},
): CliServer {
  let made: { ts: TestServer; dir: string; config: string; cleanup: () => Promise<void> } | undefined;
  const get = () => {
    if (!made) throw new Error("useCliServer: the server is not started (used outside its tests?)");
    return made;
  };
  const fixture: CliServer = {
    get ts() {
      return get().ts;
    },
    get dir() {
      return get().dir;
    },
    get config() {
      return get().config;
    },
    cli: (...argv) => runCli([...argv, "-c", get().config], opts.env?.()),
  };
  before(async () => {
    const ts = await startTestServer(opts.server);
    const { dir, cleanup } = await tempDir();
    const config = await writeCliConfig(join(dir, "config"), ts.url, ts.superToken);
    made = { ts, dir, config, cleanup };
    await opts.setup?.(fixture);
  });
  after(async () => {
    if (!made) return;
    try {
      await opts.teardown?.(fixture);
    } finally {
      await made.ts.close();
      await made.cleanup();
    }
  });
  return fixture;
}

/**
 * For tests of `cacheroach start` processes: a fresh database and a temp dir for the calling
 * describe block, and every server started through it stopped after the block.
 */
export function useStartedServers(): {
  readonly db: TestDatabase;
  readonly dir: string;
  /** Starts `cacheroach start --data-dir <dir>/<name> <argv>` on the database, with `env` added. */
  start(name: string, argv?: string[], env?: Record<string, string>): Promise<ServerProcess>;
  /** `cacheroach bootstrap --data-dir <dir>/<name>` against `server`; the config's path (`<dir>/<name>.cfg`). */
  bootstrap(name: string, server: ServerProcess): Promise<string>;
} {
  let made: { db: TestDatabase; dir: string; cleanup: () => Promise<void> } | undefined;
  const servers: ServerProcess[] = [];
  const get = () => {
    if (!made) throw new Error("useStartedServers: used outside its tests");
    return made;
  };
  before(async () => {
    const db = await createTestDatabase();
    const { dir, cleanup } = await tempDir();
    made = { db, dir, cleanup };
  });
  after(async () => {
    await Promise.all(servers.map((srv) => srv.stop()));
    await made?.db.drop();
    await made?.cleanup();
  });
  return {
    get db() {
      return get().db;
    },
    get dir() {
      return get().dir;
    },
    async start(name, argv = [], env = {}) {
      const { db, dir } = get();
      const server = await ServerProcess.start(
        ["--data-dir", join(dir, name), ...argv],
        { ...process.env, CACHEROACH_CONNECT: db.url, CACHEROACH_LOG_LEVEL: "silent", ...env },
        dir,
      );
      servers.push(server);
      return server;
    },
    async bootstrap(name, server) {
      const { dir } = get();
      const config = join(dir, `${name}.cfg`);
      const boot = await spawnCli(["bootstrap", "--data-dir", join(dir, name), "-c", config, server.url]);
      if (boot.code !== 0) throw new Error(`bootstrap failed (exit ${boot.code}):\n${boot.stderr}`);
      return config;
    },
  };
}

/** A running `cacheroach auth login`: the URL it printed, and its end. */
export interface LoginProcess {
  readonly child: ChildProcess;
  readonly url: URL;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts `cacheroach auth login --no-browser <server> <argv>` and waits for the URL it prints. */
export async function startAuthLogin(server: string, argv: string[]): Promise<LoginProcess> {
  const child = spawn(process.execPath, [CLI_BIN, "auth", "login", "--no-browser", server, ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  const url = await new Promise<URL>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /^\s+(http\S+\/_\/v0\/provision\S+)$/m.exec(stderr);
      if (m) resolve(new URL(m[1]!));
    });
    void done.then((r) => reject(new Error(`auth login ended before printing a URL: ${r.stderr}`)));
  });
  return { child, url, done };
}
