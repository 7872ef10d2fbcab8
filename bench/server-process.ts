/**
 * The cacheroach server under test, as a separate process (bench/serve.ts) that can be restarted.
 *
 * A separate process gives the server its own event loop and lets the benchmark read its memory
 * from /proc; restarting it empties its chunk cache, which is what "cold" download means here (the
 * OS page cache and PostgreSQL's shared buffers are not emptied: dropping them needs root and
 * would also slow the limit rows, which read through the same caches).
 *
 * Extra node flags for the server (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) can be given in
 * BENCH_SERVER_NODE_ARGS (space-separated).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import type { Cleanup } from "./cleanup.js";
import { REPO_ROOT } from "./exec.js";
import type { RssMonitor } from "./rss.js";
import { readMemory } from "./rss.js";

/** How the server is configured (identical across restarts). */
export interface ServerSettings {
  databaseUrl: string;
  signingKey: Uint8Array;
  cacheBytes: number;
  dataDir: string;
  /** Garbage collection's safety margin (ms): the server's default, known to rows 8–9. */
  gcMarginMs: number;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** A running (or restartable) server child process. */
export class ServerProcess {
  private child: ChildProcessWithoutNullStreams | undefined;
  private stderrTail = "";
  private readonly memoryWaiters: ((m: NodeJS.MemoryUsage | undefined) => void)[] = [];
  private undo: (() => Promise<void>) | undefined;
  /** Base URL (the same across restarts: a restart reuses the first process's port). */
  url = "";
  private port = 0;
  /** VmRSS right after the first start (idle baseline, includes the tsx loader). */
  idleRss = 0;

  constructor(
    private readonly settings: ServerSettings,
    private readonly cleanup: Cleanup,
    private readonly monitor: RssMonitor,
  ) {}

  /** PID of the running server. */
  get pid(): number {
    if (!this.child?.pid) throw new Error("server is not running");
    return this.child.pid;
  }

  /** Starts the server and waits until it listens. */
  async start(): Promise<void> {
    if (this.child) throw new Error("server already running");
    const nodeArgs = (process.env["BENCH_SERVER_NODE_ARGS"] ?? "").split(/\s+/).filter(Boolean);
    const child = spawn(
      process.execPath,
      [...nodeArgs, "--import", "tsx", join(REPO_ROOT, "bench", "serve.ts")],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          BENCH_SERVE: JSON.stringify({
            databaseUrl: this.settings.databaseUrl,
            signingKey: Buffer.from(this.settings.signingKey).toString("base64"),
            cacheBytes: this.settings.cacheBytes,
            dataDir: this.settings.dataDir,
            port: this.port,
            gcMarginMs: this.settings.gcMarginMs,
          }),
        },
      },
    );
    this.child = child;
    this.stderrTail = "";
    child.stderr.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-8000);
    });
    this.undo = this.cleanup.add(`server process ${child.pid}`, () => this.kill(child));
    const info = await new Promise<{ url: string }>((resolve, reject) => {
      let text = "";
      const timer = setTimeout(
        () => reject(new Error(`server did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      let started = false;
      child.stdout.on("data", (d: Buffer) => {
        text += d.toString();
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          let msg: { url?: string; memory?: NodeJS.MemoryUsage };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch (err) {
            if (!started) reject(err);
            continue;
          }
          if (!started && msg.url) {
            started = true;
            clearTimeout(timer);
            resolve({ url: msg.url });
          } else if (msg.memory) {
            this.memoryWaiters.shift()?.(msg.memory);
          }
        }
      });
      child.once("exit", (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code ?? sig}) during start:\n${this.stderrTail}`));
      });
    }).catch(async (err: unknown) => {
      await this.stop();
      throw err;
    });
    this.url = info.url;
    this.port = Number(new URL(info.url).port);
    this.monitor.watch(child.pid!);
    if (!this.idleRss) this.idleRss = (await readMemory(child.pid!))?.rss ?? 0;
  }

  /**
   * The server's own view of its memory (`process.memoryUsage()`: V8 heap vs. Buffers), asked for
   * with SIGUSR2; undefined if it does not answer within 2 s.
   */
  async memoryUsage(): Promise<NodeJS.MemoryUsage | undefined> {
    const child = this.child;
    if (!child) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<NodeJS.MemoryUsage | undefined>((resolve) => {
      this.memoryWaiters.push(resolve);
      timer = setTimeout(() => {
        this.memoryWaiters.splice(this.memoryWaiters.indexOf(resolve), 1);
        resolve(undefined);
      }, 2000);
    });
    child.kill("SIGUSR2");
    const m = await answer;
    clearTimeout(timer);
    return m;
  }

  /** Stops the server (SIGTERM, SIGKILL after 30 s), sampling its memory first. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await this.monitor.sample();
    this.child = undefined;
    const undo = this.undo;
    this.undo = undefined;
    await undo?.();
    if (child.exitCode !== 0 && child.exitCode !== null) {
      process.stderr.write(`server exited with ${child.exitCode}:\n${this.stderrTail}\n`);
    }
  }

  /** Stops and starts again: a new process with an empty chunk cache. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** What the server wrote to stderr recently (for error reports). */
  get recentStderr(): string {
    return this.stderrTail;
  }

  private async kill(child: ChildProcessWithoutNullStreams): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}
