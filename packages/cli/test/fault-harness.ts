/**
 * Database fault experiments: a PostgreSQL of the test's own (the embedded binaries, a private
 * port and directory) that the test may stop, restart, switch read-only or starve of disk; a real
 * server process (`cacheroach start --connect …`) on it; and a bounded mixed load that records
 * what every client saw. Never touches the shared test database or a system PostgreSQL.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Files } from "@cacheroach/proto";
import {
  type EmbeddedPostgres,
  issueSuperToken,
  startEmbeddedPostgres,
  testTransport,
} from "@cacheroach/server/testing";
import { ConnectError, createClient } from "@connectrpc/connect";
import pg from "pg";
import { ServerProcess } from "./helpers.js";

/** with-pg.ts sweeps directories with this prefix whose owning process is dead. */
const DIR_PREFIX = `cacheroach-test-pg-${process.pid}-fault-`;

/** A PostgreSQL that belongs to one test: stop, start and reconfigure it at will. */
export class PrivatePostgres {
  private running: EmbeddedPostgres | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    running: EmbeddedPostgres,
  ) {
    this.running = running;
  }

  /** Initialises and starts a cluster in a fresh directory under the system temp dir. */
  static async start(name: string): Promise<PrivatePostgres> {
    const dir = join(tmpdir(), `${DIR_PREFIX}${name}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const running = await startEmbeddedPostgres({ dir: join(dir, "pg"), settings: FAST });
    const port = Number(new URL(running.url).port);
    return new PrivatePostgres(dir, port, running);
  }

  /** URL of the `postgres` database (the server's), as the superuser. */
  get url(): string {
    if (!this.running) throw new Error("postgres is stopped");
    return this.running.url;
  }

  private savedUrl = "";

  /** Runs `fn` on a fresh superuser connection (closed afterwards). */
  async admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.savedUrl || this.url, connectionTimeoutMillis: 5000 });
    c.on("error", () => {});
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** Ends every session of the cacheroach server (pg_terminate_backend); how many it ended. */
  async terminateServerSessions(): Promise<number> {
    return this.admin(async (c) => {
      const r = await c.query(
        "SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'cacheroach%') t", // crdb-lint: ok fault harness on its own PostgreSQL
      );
      return (r.rows[0] as { n: number }).n;
    });
  }

  /** Sessions the cacheroach server holds now. */
  async serverSessions(): Promise<number> {
    return this.admin(async (c) => {
      const r = await c.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'cacheroach%'", // crdb-lint: ok fault harness on its own PostgreSQL
      );
      return (r.rows[0] as { n: number }).n;
    });
  }

  /** The postmaster and all its children (backends, background workers). */
  pids(): number[] {
    const pidFile = readFileSync(join(this.dir, "pg", "postmaster.pid"), "utf8");
    const main = Number.parseInt(pidFile.split("\n")[0] ?? "", 10);
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(main)], { encoding: "utf8" })
      .split("\n")
      .map((l) => Number.parseInt(l, 10))
      .filter((n) => Number.isInteger(n));
    return [main, ...children];
  }

  private frozen: number[] = [];

  /** Stops every postgres process (SIGSTOP): the database hangs without closing anything. */
  freeze(): void {
    this.frozen = this.pids();
    for (const pid of this.frozen) process.kill(pid, "SIGSTOP");
  }

  /** Lets the frozen processes run again (SIGCONT). */
  thaw(): void {
    for (const pid of this.frozen.splice(0)) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // gone meanwhile
      }
    }
  }

  /**
   * Switches the database read-only or back, either for new sessions only (`database`: ALTER
   * DATABASE, as after a failover to a standby, sessions keep what they started with) or for every
   * session at its next statement (`system`: ALTER SYSTEM and a configuration reload).
   */
  async setReadOnly(on: boolean, how: "database" | "system"): Promise<void> {
    await this.admin(async (c) => {
      await c.query("SET default_transaction_read_only = off"); // this session must write
      if (how === "database") {
        await c.query(
          on
            ? "ALTER DATABASE postgres SET default_transaction_read_only = on"
            : "ALTER DATABASE postgres RESET default_transaction_read_only",
        );
      } else {
        await c.query(
          on
            ? "ALTER SYSTEM SET default_transaction_read_only = on"
            : "ALTER SYSTEM RESET default_transaction_read_only",
        );
        await c.query("SELECT pg_reload_conf()");
      }
    });
  }

  /** Fast shutdown, as `pg_ctl stop -m fast` (a database restart or failover begins). */
  async stop(): Promise<void> {
    this.savedUrl = this.url;
    await this.running?.stop();
    this.running = undefined;
  }

  /** Starts the stopped cluster again on the same port. */
  async restart(): Promise<void> {
    if (this.running) return;
    this.running = await startEmbeddedPostgres({
      dir: join(this.dir, "pg"),
      port: this.port,
      settings: FAST,
    });
    this.savedUrl = "";
  }

  /** Stops the cluster and deletes its directory. */
  async destroy(): Promise<void> {
    this.thaw();
    await this.running?.stop().catch(() => {});
    this.running = undefined;
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** Durability is not under test here; speed is welcome. */
const FAST = { fsync: "off", synchronous_commit: "off", full_page_writes: "off" };

/** This process's environment without settings that `start` would read instead of its flags. */
function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("CACHEROACH_")) delete env[k];
  return env;
}

/** What one client operation ended with: "ok", "http 503", "rpc unavailable", "net ECONNRESET", … */
export type Outcome = string;

/** One operation of the load, as the client saw it. */
export interface OpRecord {
  at: number;
  op: "put" | "get" | "list";
  outcome: Outcome;
  status?: number;
  retryAfter?: string | null;
  /** The server's stable error code (Cacheroach-Error-Code header / cacheroach-error-code metadata). */
  errorCode?: string | null;
  message?: string;
}

/** What a PUT sent, by path. */
interface Sent {
  sha256: string;
  size: number;
}

/**
 * A bounded mixed load on one server: workers loop over HTTP PUTs of fresh random files (a few
 * multi-chunk), HTTP GETs of acknowledged ones (checked byte for byte) and RPC listings, pausing
 * briefly between operations. Records every outcome and every acknowledged and unacknowledged
 * write, for the checks after the fault.
 */
export class MixedLoad {
  readonly ops: OpRecord[] = [];
  readonly acked = new Map<string, Sent>();
  readonly unacked = new Map<string, Sent>();
  /** GETs that returned 200 with bytes other than those acknowledged: must stay empty. */
  readonly wrongReads: string[] = [];
  private stopping = false;
  private workers: Promise<void>[] = [];
  private seq = 0;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly prefix: string,
    private readonly opts: { workers?: number; pauseMs?: number } = {},
  ) {}

  start(): void {
    const n = this.opts.workers ?? 4;
    for (let i = 0; i < n; i++) this.workers.push(this.loop(i));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  /** Operations that ended at or after `from` (and before `to`). */
  between(from: number, to = Number.POSITIVE_INFINITY): OpRecord[] {
    return this.ops.filter((o) => o.at >= from && o.at < to);
  }

  private async loop(worker: number): Promise<void> {
    const files = createClient(Files, testTransport(this.url, this.token));
    for (let i = 0; !this.stopping; i++) {
      const kind = i % 4;
      if (kind === 0 || kind === 2) await this.put(worker);
      else if (kind === 1) await this.get();
      else await this.list(files);
      await new Promise((r) => setTimeout(r, this.opts.pauseMs ?? 15));
    }
  }

  private async put(worker: number): Promise<void> {
    const n = this.seq++;
    const path = `${this.prefix}/w${worker}/${n}.bin`;
    // Mostly small files; every eighth spans three chunks.
    const size = n % 8 === 7 ? 1_300_000 : 1 + ((n * 7919) % 40_000);
    const body = randomBytes(size);
    const sent = { sha256: createHash("sha256").update(body).digest("hex"), size };
    try {
      const res = await fetch(`${this.url}${path}`, {
        method: "PUT",
        body,
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/octet-stream" },
      });
      const text = await res.text();
      if (res.ok) this.acked.set(path, sent);
      else this.unacked.set(path, sent);
      this.record("put", res, text);
    } catch (err) {
      this.unacked.set(path, sent);
      this.ops.push({ at: Date.now(), op: "put", outcome: `net ${netCode(err)}` });
    }
  }

  private async get(): Promise<void> {
    const paths = [...this.acked.keys()];
    if (paths.length === 0) return;
    const path = paths[Math.floor(Math.random() * paths.length)]!;
    let status = 0;
    try {
      const res = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.token}` } });
      status = res.status;
      const bytes = Buffer.from(await res.arrayBuffer());
      if (res.ok && createHash("sha256").update(bytes).digest("hex") !== this.acked.get(path)?.sha256) {
        this.wrongReads.push(path);
      }
      this.record("get", res, res.ok ? "" : bytes.toString("utf8"));
    } catch (err) {
      // A body that broke off after a 200 (the database went away mid-file): the only honest
      // signal once the status is sent, and the client knows the file is incomplete.
      const outcome = status === 200 ? "cut" : `net ${netCode(err)}`;
      this.ops.push({ at: Date.now(), op: "get", outcome, status });
    }
  }

  private async list(files: ReturnType<typeof createClient<typeof Files>>): Promise<void> {
    try {
      await files.list({ tenantId: SCRATCHPAD_ID, path: `${this.prefix}/`, pageSize: 50 });
      this.ops.push({ at: Date.now(), op: "list", outcome: "ok" });
    } catch (err) {
      const ce = ConnectError.from(err);
      this.ops.push({
        at: Date.now(),
        op: "list",
        outcome: `rpc ${rpcCodeName(ce.code)}`,
        retryAfter: ce.metadata.get("retry-after"),
        errorCode: ce.metadata.get("cacheroach-error-code"),
        message: ce.rawMessage,
      });
    }
  }

  private record(op: OpRecord["op"], res: Response, text: string): void {
    this.ops.push({
      at: Date.now(),
      op,
      outcome: res.ok ? "ok" : `http ${res.status}`,
      status: res.status,
      retryAfter: res.headers.get("retry-after"),
      errorCode: res.headers.get("cacheroach-error-code"),
      ...(res.ok ? {} : { message: text.trim().slice(0, 200) }),
    });
  }
}

const SCRATCHPAD_ID = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

function netCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code ?? (err instanceof Error ? err.message : String(err));
}

function rpcCodeName(code: number): string {
  return (
    [
      "ok",
      "canceled",
      "unknown",
      "invalid_argument",
      "deadline_exceeded",
      "not_found",
      "already_exists",
      "permission_denied",
      "resource_exhausted",
      "failed_precondition",
      "aborted",
      "out_of_range",
      "unimplemented",
      "internal",
      "unavailable",
      "data_loss",
      "unauthenticated",
    ][code] ?? `code ${code}`
  );
}

/**
 * Waits until at least `writes` writes and `ops` operations in all have ended since `from` (however
 * slow a busy machine makes them), at most `timeoutMs`.
 */
export async function waitForOps(
  load: MixedLoad,
  from: number,
  { writes = 5, ops = 20, timeoutMs = 20_000 }: { writes?: number; ops?: number; timeoutMs?: number } = {},
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const since = load.between(from);
    if (since.length >= ops && since.filter((o) => o.op === "put").length >= writes) return;
    if (Date.now() > until) return; // the caller's assertions say what is missing
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Milliseconds from `from` to the first successful write that ended after it (-1: none). */
export function firstWriteAfter(load: MixedLoad, from: number): number {
  const ok = load.ops.filter((o) => o.op === "put" && o.outcome === "ok" && o.at >= from);
  return ok.length ? Math.min(...ok.map((o) => o.at)) - from : -1;
}

/** Counts outcomes: { "ok": 120, "http 503": 7, … }. */
export function tally(ops: OpRecord[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of ops) t[`${o.op} ${o.outcome}`] = (t[`${o.op} ${o.outcome}`] ?? 0) + 1;
  return t;
}

/** GET /readyz: status and body. */
export async function readyz(url: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.text()).trim(), ms: Date.now() - t0 };
  } catch (err) {
    return { status: 0, body: String(err), ms: Date.now() - t0 };
  }
}

/** Polls `/readyz` until it answers `status`; how long that took (throws after `timeoutMs`). */
export async function waitReady(url: string, status: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const r = await readyz(url);
    if (r.status === status) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`/readyz still ${r.status} "${r.body}" after ${timeoutMs} ms (waiting for ${status})`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

/**
 * Reads every acknowledged file back (byte-identical) and every unacknowledged one (absent): the
 * list of problems, empty when the store kept its promises.
 */
export async function auditWrites(url: string, token: string, load: MixedLoad): Promise<string[]> {
  const problems: string[] = [];
  const headers = { authorization: `Bearer ${token}` };
  for (const [path, sent] of load.acked) {
    const res = await fetch(`${url}${path}`, { headers });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) problems.push(`acknowledged ${path}: GET ${res.status}`);
    else if (createHash("sha256").update(bytes).digest("hex") !== sent.sha256)
      problems.push(`acknowledged ${path}: ${bytes.length} bytes differ from the ${sent.size} sent`);
  }
  for (const [path] of load.unacked) {
    const res = await fetch(`${url}${path}`, { headers, method: "HEAD" });
    if (res.status !== 404) problems.push(`unacknowledged ${path}: HEAD ${res.status} (visible)`);
  }
  for (const path of load.wrongReads) problems.push(`a GET of ${path} returned other bytes`);
  return problems;
}

/** Everything a fault test needs: its database, a server process on it and a super token. */
export interface FaultRig {
  pg: PrivatePostgres;
  server: ServerProcess;
  token: string;
  /** A mixed load on this rig's server, stopped by close() whatever happens. */
  load(prefix: string, opts?: { workers?: number; pauseMs?: number }): MixedLoad;
  /** Stops the loads, the server and the database (also after a failed assertion). */
  close(): Promise<void>;
}

/** Starts a private PostgreSQL and a server process on it, and gets a super token. */
export async function startRig(name: string, serverArgs: string[] = []): Promise<FaultRig> {
  const db = await PrivatePostgres.start(name);
  const signingKey = new Uint8Array(randomBytes(32));
  let server: ServerProcess | undefined;
  try {
    server = await ServerProcess.start(
      [
        "--connect",
        db.url,
        "--data-dir",
        join(db.dir, "server"),
        "--signing-key",
        Buffer.from(signingKey).toString("base64"),
        "--log-level",
        "warn",
        ...serverArgs,
      ],
      serverEnv(),
    );
    const { token } = await issueSuperToken(server.url, signingKey);
    const s = server;
    const loads: MixedLoad[] = [];
    return {
      pg: db,
      server: s,
      token,
      load(prefix, opts) {
        const l = new MixedLoad(s.url, token, prefix, opts);
        loads.push(l);
        return l;
      },
      async close() {
        await Promise.all(loads.map((l) => l.stop()));
        await s.stop();
        await db.destroy();
      },
    };
  } catch (err) {
    await server?.stop();
    await db.destroy();
    throw err;
  }
}

/** True when this process may mount a tmpfs (root with CAP_SYS_ADMIN); the disk-full test needs one. */
export function canMountTmpfs(): boolean {
  const probe = join(tmpdir(), `cacheroach-mount-probe-${process.pid}`);
  try {
    execFileSync("mkdir", ["-p", probe]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync("rm", ["-rf", probe]);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
