/**
 * Row 4's downloads alone, as an interleaved A/B of two checkouts' servers on one database:
 *
 *   node --import tsx bench/download-ab.ts [OTHER_CHECKOUT]
 *
 * Uploads one random file (BENCH_MIB, default 1024) once, then for BENCH_ROUNDS rounds (default 3)
 * and each checkout in turn (this one, then OTHER_CHECKOUT if given, built; the order alternates per
 * round) starts that checkout's bench/serve.ts (a fresh process: an empty chunk cache), downloads
 * the file with curl cold then hot, restarts it and downloads cold with this checkout's CLI. Each
 * download prints its wall MiB/s and the CPU per MiB that the server process (and the kernel on its
 * behalf) and PostgreSQL (every process of the embedded cluster) spent during it, from /proc: on
 * this shared 2-core machine CPU per MiB moves much less with load than wall time. Both servers get
 * the settings of `npm run bench` (cache 1280 MiB unless BENCH_CACHE_MIB says otherwise; a cache
 * smaller than the file makes every read evict). BENCH_SERVER_NODE_ARGS passes node flags (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_SERVER_STDOUT=1 shows what the server prints (e.g.
 * `--trace-gc`). Needs curl. Not part of any test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HASH_CACHE_ENV } from "@cacheroach/cli";
import { DEFAULT_GC_MARGIN_MS } from "../packages/server/src/config.js";
import { bootstrapSession, ensureTenant, mapVHost, waitForVHosts, writeCliConfig } from "./bootstrap.js";
import { Cleanup } from "./cleanup.js";
import { openBenchDatabase } from "./database.js";
import { cli, killRunning, REPO_ROOT, run } from "./exec.js";
import { MiB, writeRandomFile } from "./payload.js";

const size = Number(process.env["BENCH_MIB"] ?? 1024) * MiB;
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);
const cacheBytes = Number(process.env["BENCH_CACHE_MIB"] ?? 1280) * MiB;
const roots = [REPO_ROOT, ...(process.argv[2] ? [resolve(process.argv[2])] : [])];
const log = (line: string) => process.stderr.write(`${line}\n`);
const TICK = 100; // clock ticks per second of /proc/*/stat

/** utime + stime of a process, in seconds (0 if it is gone); `sys` alone with "sys". */
async function cpuOf(pid: number, part: "all" | "sys" = "all"): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (f.length <= 13) return 0;
  return ((part === "sys" ? 0 : Number(f[11])) + Number(f[12])) / TICK;
}

/** CPU seconds of every process whose parent is `parent`, and of `parent` itself, by pid. */
async function treeCpu(parent: number): Promise<Map<number, number>> {
  const out = new Map<number, number>([[parent, await cpuOf(parent)]]);
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[1]) === parent) out.set(Number(name), (Number(f[11]) + Number(f[12])) / TICK);
  }
  return out;
}

function spent(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, v] of after) s += v - (before.get(pid) ?? 0);
  return s;
}

/** The PostgreSQL processes that spent the most, as "title seconds" (BENCH_PG_TOP=1). */
async function topSpenders(before: Map<number, number>, after: Map<number, number>): Promise<string> {
  const rows: [string, number][] = [];
  for (const [pid, v] of after) {
    const title = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "?"))
      .replaceAll("\0", " ")
      .trim();
    rows.push([title.replace(/^postgres: /, "").slice(0, 40), v - (before.get(pid) ?? 0)]);
  }
  rows.sort((x, y) => y[1] - x[1]);
  return rows
    .slice(0, 5)
    .map(([t, v]) => `${t} ${v.toFixed(2)} s`)
    .join(" | ");
}

const cleanup = new Cleanup();
cleanup.addFirst(killRunning);
cleanup.installSignalHandlers();
try {
  await main();
} catch (err) {
  process.exitCode = 1;
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup.run();
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "cacheroach-dl-ab-"));
  cleanup.add(`work directory ${work}`, () => rm(work, { recursive: true, force: true }));
  process.env[HASH_CACHE_ENV] = join(work, "hash-cache");
  const db = await openBenchDatabase(cleanup);
  const pool = db.pool(1);
  const backend = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const stat = await readFile(`/proc/${backend}/stat`, "utf8");
  const postmaster = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  const file = join(work, "payload.bin");
  await writeRandomFile(file, size);
  const signingKey = new Uint8Array(randomBytes(32));
  let port = 0;
  let child: ChildProcess | undefined;
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await exited;
  };
  cleanup.add("server", stop);
  const start = async (root: string) => {
    await stop();
    const nodeArgs = (process.env["BENCH_SERVER_NODE_ARGS"] ?? "").split(/\s+/).filter(Boolean);
    const c = spawn(process.execPath, [...nodeArgs, "--import", "tsx", join(root, "bench", "serve.ts")], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        BENCH_SERVE: JSON.stringify({
          databaseUrl: db.url,
          signingKey: Buffer.from(signingKey).toString("base64"),
          cacheBytes,
          dataDir: join(work, "server-data"),
          port,
          gcMarginMs: DEFAULT_GC_MARGIN_MS,
        }),
      },
    });
    child = c;
    const url = await new Promise<string>((ok, fail) => {
      let text = "";
      c.stdout!.on("data", (d: Buffer) => {
        text += d.toString();
        // Only the line the server prints once it listens is JSON (node flags may print too).
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          if (line.startsWith('{"url"')) ok((JSON.parse(line) as { url: string }).url);
          else if (process.env["BENCH_SERVER_STDOUT"]) process.stderr.write(`server: ${line}\n`);
        }
      });
      c.once("exit", (code) => fail(new Error(`server exited (${code})`)));
    });
    port = Number(new URL(url).port);
    return { url, pid: c.pid! };
  };

  const first = await start(REPO_ROOT);
  const session = await bootstrapSession(first.url, signingKey, cleanup);
  const tenant = await ensureTenant(session, "download a/b");
  const host = "dl.bench.test";
  await mapVHost(session, host, tenant);
  await waitForVHosts(session, first.url, [[host, tenant]]);
  const config = join(work, "cli-config.json");
  await writeCliConfig(config, first.url, session, tenant);
  await cli(config, ["file", "put", "/big/", file, "-t", tenant, "--no-progress", "--json"]);
  log(`uploaded ${size / MiB} MiB`);

  const measure = async (pid: number, what: string, f: () => Promise<number>) => {
    const s0 = await cpuOf(pid);
    const k0 = await cpuOf(pid, "sys");
    const p0 = await treeCpu(postmaster);
    const seconds = await f();
    const s1 = await cpuOf(pid);
    const k1 = await cpuOf(pid, "sys");
    const p1 = await treeCpu(postmaster);
    const mib = size / MiB;
    const ms = (s: number) => ((s * 1000) / mib).toFixed(2);
    if (process.env["BENCH_PG_TOP"]) log(`  ${what}: pg ${await topSpenders(p0, p1)}`);
    return `${what} ${(mib / seconds).toFixed(0)} MiB/s, server ${ms(s1 - s0)} ms/MiB (sys ${ms(k1 - k0)}), pg ${ms(spent(p0, p1))} ms/MiB`;
  };
  const curlGet = async () => {
    const r = await run("curl", [
      "-sS",
      "-f",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      "-H",
      `Authorization: Bearer ${session.token}`,
      "-H",
      `Host: ${host}`,
      `${first.url}/big/payload.bin`,
    ]);
    if (Number(r.stdout) !== size) throw new Error(`curl downloaded ${r.stdout} bytes, expected ${size}`);
    return r.seconds;
  };
  const cliGet = async () =>
    (
      await cli(config, ["file", "get", "/big/payload.bin", "-o", "-", "-t", tenant, "--no-progress"], {
        stdout: "ignore",
      })
    ).seconds;

  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const name = root === REPO_ROOT ? "this" : "other";
      let s = await start(root);
      const a = await measure(s.pid, "curl cold", curlGet);
      const b = await measure(s.pid, "curl hot", curlGet);
      s = await start(root);
      const c = await measure(s.pid, "CLI cold", cliGet);
      log(`round ${round} ${name}: ${a}; ${b}; ${c}`);
    }
  }
  await stop();
  await pool.end();
}
