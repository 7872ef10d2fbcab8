/**
 * Row 2's CLI cold upload alone, as an interleaved A/B of how new chunks travel: chunk bodies
 * (POST /_/v0/uploads/chunks, the default) against PutChunks (CACHEROACH_CHUNK_UPLOAD=rpc). Each
 * run puts the large file into a tenant of its own (cold: none of its chunks stored), after a
 * CHECKPOINT, and reports the wall rate and the CPU per MiB of the CLI (its user + system time,
 * from /usr/bin/time), of the server process and of PostgreSQL (/proc, the postmaster and its
 * children). On a shared machine compare the CPU columns; wall time moves with the load.
 *
 *   node --import tsx bench/cold-put.ts                 # 1 GiB, 3 runs of each, embedded PostgreSQL
 *   BENCH_MIB=256 BENCH_RUNS=2 node --import tsx bench/cold-put.ts
 *
 * BENCH_MODES=http (or rpc) runs one mode only; BENCH_SERVER_NODE_ARGS and BENCH_CLI_NODE_ARGS
 * (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) pass flags to the server's and the CLI's node.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapSession, ensureTenant, writeCliConfig } from "./bootstrap.js";
import { Cleanup } from "./cleanup.js";
import { openBenchDatabase } from "./database.js";
import { CLI_BIN, run } from "./exec.js";
import { MiB, writeRandomFile } from "./payload.js";
import { RssMonitor } from "./rss.js";
import { ServerProcess } from "./server-process.js";

const size = Number(process.env["BENCH_MIB"] ?? 1024) * MiB;
const runs = Number(process.env["BENCH_RUNS"] ?? 3);
const TICK = 100; // clock ticks per second (/proc/PID/stat)

/** User + system CPU seconds of `pid` (and its reaped children, with `children`). */
async function cpuOf(pid: number, children = false): Promise<number> {
  const [user, system] = await userSystem(pid, children);
  return user + system;
}

/** User and system CPU seconds of `pid` (and its reaped children, with `children`). */
async function userSystem(pid: number, children = false): Promise<[number, number]> {
  try {
    const f = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
    // Fields after "(comm) ": state is [0]; utime [11], stime [12], cutime [13], cstime [14].
    const user = Number(f[11]) + (children ? Number(f[13]) : 0);
    const system = Number(f[12]) + (children ? Number(f[14]) : 0);
    return [user / TICK, system / TICK];
  } catch {
    return [0, 0];
  }
}

/** CPU seconds of PostgreSQL: the postmaster (with reaped backends) and its live children. */
async function postgresCpu(): Promise<number> {
  const all = (await readdir("/proc")).filter((d) => /^\d+$/.test(d));
  let postmaster: number | undefined;
  const parents = new Map<number, number>();
  for (const d of all) {
    try {
      const stat = await readFile(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.split(") ")[1]!.split(" ")[1]);
      parents.set(Number(d), ppid);
      if (comm === "postgres" && ppid === process.pid) postmaster = Number(d);
    } catch {
      // gone meanwhile
    }
  }
  if (postmaster === undefined) return Number.NaN;
  let total = await cpuOf(postmaster, true);
  for (const [pid, ppid] of parents) if (ppid === postmaster) total += await cpuOf(pid);
  return total;
}

const cleanup = new Cleanup();
try {
  const work = await mkdtemp(join(tmpdir(), "cacheroach-cold-put-"));
  cleanup.add(`work directory ${work}`, () => rm(work, { recursive: true, force: true }));
  const db = await openBenchDatabase(cleanup);
  const signingKey = new Uint8Array(randomBytes(32));
  const server = new ServerProcess(
    {
      databaseUrl: db.url,
      signingKey,
      cacheBytes: 64 * MiB,
      dataDir: join(work, "data"),
      gcMarginMs: 3_600_000,
    },
    cleanup,
    new RssMonitor(),
  );
  await server.start();
  const session = await bootstrapSession(server.url, signingKey, cleanup);
  const file = join(work, "payload.bin");
  await writeRandomFile(file, size);
  const pool = db.pool(1);
  cleanup.add("checkpoint pool", () => pool.end());
  const only = process.env["BENCH_MODES"];
  const modes = [
    { name: "chunk bodies", env: { CACHEROACH_CHUNK_UPLOAD: "http" } },
    { name: "PutChunks", env: { CACHEROACH_CHUNK_UPLOAD: "rpc" } },
  ].filter((m) => !only || only.split(",").includes(m.env.CACHEROACH_CHUNK_UPLOAD));
  const rows: string[] = [];
  for (let i = 0; i < runs; i++) {
    // ABBA order, so neither mode always runs first.
    const order = i % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      const tenant = await ensureTenant(session, `cold put ${i} ${mode.name}`);
      const config = join(work, `cli-${i}-${mode.env.CACHEROACH_CHUNK_UPLOAD}.json`);
      await writeCliConfig(config, server.url, session, tenant);
      await db.checkpoint(pool);
      const s0 = await userSystem(server.pid);
      const p0 = await postgresCpu();
      const r = await run(
        "/usr/bin/time",
        [
          "-f",
          "CPU %U %S",
          process.execPath,
          ...(process.env["BENCH_CLI_NODE_ARGS"] ?? "").split(/\s+/).filter(Boolean),
          CLI_BIN,
          "file",
          "put",
          "/big/",
          file,
          "--no-progress",
          "--no-hash-cache",
          "--json",
          "-c",
          config,
        ],
        { env: mode.env },
      );
      const s1 = await userSystem(server.pid);
      const p1 = await postgresCpu();
      const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
      const mib = size / MiB;
      const per = (seconds: number) => ((seconds * 1000) / mib).toFixed(2);
      const cli = m
        ? `${per(Number(m[1]) + Number(m[2]))} (user ${per(Number(m[1]))} + sys ${per(Number(m[2]))})`
        : "?";
      const srv = `${per(s1[0] - s0[0] + s1[1] - s0[1])} (user ${per(s1[0] - s0[0])} + sys ${per(s1[1] - s0[1])})`;
      const row = `${mode.name.padEnd(13)} run ${i + 1}: ${(mib / r.seconds).toFixed(1)} MiB/s wall; CPU ms/MiB: CLI ${cli}, server ${srv}, PostgreSQL ${per(p1 - p0)}`;
      rows.push(row);
      process.stdout.write(`${row}\n`);
    }
  }
  process.stdout.write(`\n${size / MiB} MiB cold put, ${runs} runs of each:\n${rows.sort().join("\n")}\n`);
} finally {
  await cleanup.run();
}
