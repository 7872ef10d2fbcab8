/**
 * `npm run bench`: cacheroach's throughput next to this machine's own limits, measured in the same
 * run, as one table (printed, and written to docs/benchmarks.md). Never part of `npm test`.
 *
 *   npm run bench
 *   BENCH_MIB=64 BENCH_SMALL_FILES=500 BENCH_LIST_FILES=5000 npm run bench   # a quick run
 *
 * Knobs (environment): BENCH_MIB (large file size, default 1024), BENCH_SMALL_FILES (default 10000),
 * BENCH_LIST_FILES (default 100000), BENCH_CONCURRENCY (small files, default 8), DATABASE_URL (use
 * that PostgreSQL instead of an embedded one), BENCH_SERVER_NODE_ARGS (extra node flags for the
 * server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_DOC (where to write the Markdown page;
 * default docs/benchmarks.md for a run with default knobs, none otherwise).
 *
 * Order: limits first (raw pg ingest/read of the large file, BLAKE3, nginx, restic), then the server
 * (a separate process) with rows 2–4 while its memory is watched (row 7), then small files (5) and
 * listing (6). Every temp directory and child process is removed on exit, error or Ctrl-C.
 * What each row measures, and why its limit is the fair comparison, is in the module of that row.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { HASH_CACHE_ENV } from "@cacheroach/cli";
import { Uploads } from "@cacheroach/proto";
import { type BenchSession, bootstrapSession, ensureTenant, mapVHost, writeCliConfig } from "./bootstrap.js";
import { Cleanup } from "./cleanup.js";
import { openBenchDatabase } from "./database.js";
import { renderDocument } from "./document.js";
import { killRunning, REPO_ROOT, run } from "./exec.js";
import { blake3Rate } from "./hash-limit.js";
import { largeFileRows } from "./large-file.js";
import { listingRows, populateListing } from "./listing.js";
import { nginxRate } from "./nginx-limit.js";
import { KiB, MiB, writeRandomFile, writeSmallFiles } from "./payload.js";
import { dropRawChunks, rawIngest, rawRead } from "./raw-chunks.js";
import {
  absoluteRow,
  ceilingRow,
  describeMachine,
  fmt,
  limitRow,
  type Reference,
  ratioRow,
  type TableRow,
  textTable,
} from "./report.js";
import { resticRate } from "./restic-limit.js";
import { RssMonitor } from "./rss.js";
import { ServerProcess } from "./server-process.js";
import { rawSmallRows, smallFileRows } from "./small-files.js";

/** A positive integer from the environment, or the default. */
function knob(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${text} must be a positive integer`);
  return n;
}

const DEFAULTS = {
  BENCH_MIB: 1024,
  BENCH_SMALL_FILES: 10_000,
  BENCH_LIST_FILES: 100_000,
  BENCH_CONCURRENCY: 8,
};
const knobs = Object.fromEntries(
  Object.entries(DEFAULTS).map(([k, v]) => [k, knob(k, v)]),
) as typeof DEFAULTS;
const size = knobs.BENCH_MIB * MiB;
const SMALL_SIZE = 4 * KiB;
/** The server's chunk cache: 1280 MiB, so the 1 GiB file fits and "hot" means served from memory. */
const cacheBytes = Math.max(1280 * MiB, size + 256 * MiB);
const RSS_ALLOWANCE = 150 * MiB;

const command = [
  ...Object.entries(knobs)
    .filter(([k, v]) => v !== DEFAULTS[k as keyof typeof DEFAULTS])
    .map(([k, v]) => `${k}=${v}`),
  ...(process.env["DATABASE_URL"] ? ["DATABASE_URL=…"] : []),
  "npm run bench",
].join(" ");
const defaultKnobs = Object.entries(knobs).every(([k, v]) => v === DEFAULTS[k as keyof typeof DEFAULTS]);
const docPath =
  process.env["BENCH_DOC"] || (defaultKnobs ? join(REPO_ROOT, "docs", "benchmarks.md") : undefined);

const started = performance.now();
const loadAtStart = os.loadavg()[0]!;
const startedAt = new Date();
const log = (line: string) => process.stderr.write(`${line}\n`);
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

const cleanup = new Cleanup();
cleanup.addFirst(killRunning);
cleanup.installSignalHandlers();
try {
  await main();
} catch (err) {
  process.exitCode = 1;
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup.run();
}

async function main(): Promise<void> {
  log(`cacheroach bench: ${command}`);
  const work = await mkdtemp(join(tmpdir(), "cacheroach-bench-"));
  cleanup.add(`work directory ${work}`, () => rm(work, { recursive: true, force: true }));
  // The CLI's chunk-hash cache of this run only (row 2's cold upload fills it, row 3 reads it).
  process.env[HASH_CACHE_ENV] = join(work, "hash-cache");
  const db = await openBenchDatabase(cleanup);
  log(`[${elapsed()}] database: ${db.where}; ${db.version.split(" on ")[0]}`);

  const file = join(work, "payload.bin");
  await writeRandomFile(file, size);
  log(`[${elapsed()}] wrote ${knobs.BENCH_MIB} MiB of random bytes`);

  // 1. Limits.
  const ingest = await rawIngest(db, file, size);
  log(
    `[${elapsed()}] 1a raw pg ingest: ${ingest.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join(", ")} MiB/s`,
  );
  const read = await rawRead(db, file, size);
  log(
    `[${elapsed()}] 1b raw pg read: ${read.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join(", ")} MiB/s`,
  );
  await dropRawChunks(db);
  const blake3 = await blake3Rate(file, size);
  log(`[${elapsed()}] 1c BLAKE3: ${blake3.toFixed(0)} MiB/s`);
  const nginx = await nginxRate(file, size, cleanup);
  log(`[${elapsed()}] 1d nginx: ${"skipped" in nginx ? nginx.skipped : `${nginx.mibps.toFixed(0)} MiB/s`}`);
  const restic = await resticRate(file, size, cleanup);
  log(
    `[${elapsed()}] 1e restic: ${"skipped" in restic ? restic.skipped : `${restic.mibps.toFixed(0)} MiB/s`}`,
  );

  // The server under test.
  const monitor = new RssMonitor();
  const signingKey = new Uint8Array(randomBytes(32));
  const server = new ServerProcess(
    { databaseUrl: db.url, signingKey, cacheBytes, dataDir: join(work, "server-data") },
    cleanup,
    monitor,
  );
  await server.start();
  const session = await bootstrapSession(server.url, signingKey, cleanup);
  const cliTenant = await ensureTenant(session, "bench: CLI large file");
  const curlTenant = await ensureTenant(session, "bench: curl large file");
  const smallTenant = await ensureTenant(session, "bench: small files");
  const listTenant = await ensureTenant(session, "bench: listing");
  const cliHost = "cli.bench.test";
  const curlHost = "curl.bench.test";
  await mapVHost(session, cliHost, cliTenant);
  await mapVHost(session, curlHost, curlTenant);
  await waitForVHosts(session, server.url, [
    [cliHost, cliTenant],
    [curlHost, curlTenant],
  ]);
  const config = join(work, "cli-config.json");
  await writeCliConfig(config, server.url, session, cliTenant);
  log(`[${elapsed()}] server ${server.url} (pid ${server.pid}, cache ${cacheBytes / MiB} MiB)`);

  // Rows 2–4, watching the server's memory (row 7).
  monitor.enable();
  const large = await largeFileRows(
    { db, server, config, token: session.token, file, size, cliTenant, cliHost, curlTenant, curlHost },
    (line) => log(`[${elapsed()}] ${line.trim()}`),
  );
  await monitor.disable();
  log(
    `[${elapsed()}] 7. peak server RSS ${(monitor.peak / MiB).toFixed(0)} MiB (${monitor.samples} samples)`,
  );

  // Row 5.
  const smallDir = join(work, "small");
  const contents = await writeSmallFiles(smallDir, knobs.BENCH_SMALL_FILES, SMALL_SIZE);
  const rawSmall = await rawSmallRows(db, contents, knobs.BENCH_CONCURRENCY);
  log(
    `[${elapsed()}] 5. raw single-row INSERT ${rawSmall.insert.toFixed(0)}/s, SELECT ${rawSmall.select.toFixed(0)}/s`,
  );
  const small = await smallFileRows(
    config,
    smallTenant,
    smallDir,
    join(work, "small-out"),
    contents,
    knobs.BENCH_CONCURRENCY,
  );
  log(
    `[${elapsed()}] 5. put ${small.put.toFixed(0)} files/s, get ${small.get.toFixed(0)} files/s, sync unchanged ${small.syncUnchanged.toFixed(2)} s`,
  );

  // Row 6.
  await populateListing(db, session, listTenant, knobs.BENCH_LIST_FILES);
  const listing = await listingRows(db, session, config, listTenant, knobs.BENCH_LIST_FILES);
  log(
    `[${elapsed()}] 6. listing: RPC ${listing.rpc.toFixed(0)}/s, CLI ${listing.cli.toFixed(0)}/s, raw ${listing.rawPaged.toFixed(0)}/s`,
  );
  await server.stop();

  // The table.
  const optional = (name: string, l: typeof nginx): Reference =>
    "skipped" in l ? { skipped: l.skipped } : { name, value: l.mibps };
  const ingestRef: Reference = { name: "raw pg ingest", value: ingest.best.mibps };
  const readRef: Reference = { name: "raw pg read", value: read.best.mibps };
  const blakeRef: Reference = { name: "BLAKE3", value: blake3 };
  const nginxRef = optional("nginx", nginx);
  const resticRef = optional("restic", restic);
  const c = knobs.BENCH_CONCURRENCY;
  const big = `${knobs.BENCH_MIB} MiB`;
  const rows: TableRow[] = [
    limitRow(
      "1a. raw pg ingest, 512 KiB rows",
      ingest.best.mibps,
      "MiB/s",
      `best of ${ingest.attempts.length}: ${ingest.best.label}`,
    ),
    limitRow(
      "1b. raw pg read, 512 KiB rows (hex)",
      read.best.mibps,
      "MiB/s",
      `best of ${read.attempts.length}: ${read.best.label}`,
    ),
    limitRow("1c. BLAKE3, 1 thread", blake3, "MiB/s", "@napi-rs/blake-hash, 512 KiB chunks"),
    limitRow(
      "1d. nginx → curl, loopback",
      "skipped" in nginx ? nginx : nginx.mibps,
      "MiB/s",
      "skipped" in nginx ? "" : nginx.detail,
    ),
    limitRow(
      "1e. restic backup",
      "skipped" in restic ? restic : restic.mibps,
      "MiB/s",
      "skipped" in restic ? "" : restic.detail,
    ),
    ratioRow(`2. cold upload ${big}, CLI`, large.coldUploadCli, "MiB/s", ingestRef, 0.85),
    ratioRow(`2. cold upload ${big}, CLI`, large.coldUploadCli, "MiB/s", resticRef, 1, true),
    ratioRow(`2. cold upload ${big}, curl -T`, large.coldUploadCurl, "MiB/s", ingestRef, 0.85),
    ratioRow(`2. cold upload ${big}, curl -T`, large.coldUploadCurl, "MiB/s", resticRef, 1, true),
    absoluteRow("3. re-upload, CLI (unchanged: hash cache)", large.reuploadCli, "MiB/s", blakeRef, 1024),
    ratioRow("3. re-upload, CLI --no-hash-cache", large.reuploadCliRehash, "MiB/s", blakeRef, undefined),
    ratioRow("3. re-upload, CLI --no-dedup", large.reuploadCliStream, "MiB/s", blakeRef, undefined),
    ratioRow("3. re-upload, curl -T", large.reuploadCurl, "MiB/s", blakeRef, undefined),
    ratioRow("4. cold download, CLI", large.coldDownloadCli, "MiB/s", readRef, 0.8),
    ratioRow("4. cold download, curl", large.coldDownloadCurl, "MiB/s", readRef, 0.8),
    ratioRow("4. hot download, CLI", large.hotDownloadCli, "MiB/s", nginxRef, 0.6),
    ratioRow("4. hot download, curl", large.hotDownloadCurl, "MiB/s", nginxRef, 0.6),
    ratioRow(
      `5. put ${knobs.BENCH_SMALL_FILES} × 4 KiB, CLI -p ${c}`,
      small.put,
      "files/s",
      { name: `raw INSERT ×${c}`, value: rawSmall.insert },
      0.5,
    ),
    ratioRow(
      `5. get ${knobs.BENCH_SMALL_FILES} × 4 KiB, CLI -p ${c}`,
      small.get,
      "files/s",
      { name: `raw SELECT ×${c}`, value: rawSmall.select },
      0.5,
    ),
    ceilingRow(
      `5. sync ${knobs.BENCH_SMALL_FILES} unchanged files, CLI`,
      small.syncUnchanged,
      "s",
      "one second",
      1,
    ),
    ratioRow(
      `6. list ${knobs.BENCH_LIST_FILES}, Files.List RPC`,
      listing.rpc,
      "files/s",
      { name: "raw paged SELECT", value: listing.rawPaged },
      0.5,
    ),
    ratioRow(
      `6. list ${knobs.BENCH_LIST_FILES}, CLI ls --json`,
      listing.cli,
      "files/s",
      { name: "raw paged SELECT", value: listing.rawPaged },
      undefined,
    ),
    ceilingRow(
      "7. peak server RSS, rows 2–4",
      monitor.peak / MiB,
      "MiB",
      `cache ${cacheBytes / MiB} MiB + 150 MiB =`,
      (cacheBytes + RSS_ALLOWANCE) / MiB,
    ),
  ];
  const notes = [
    `Server chunk cache: ${cacheBytes / MiB} MiB, so the ${big} file fits: "hot" = the second download in one server process, served from that cache; "cold" = the first download after restarting the server process (empty cache). The OS page cache and PostgreSQL's shared buffers are not dropped between them.`,
    `Raw pg ingest attempts (MiB/s): ${ingest.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join("; ")}. Raw pg read attempts: ${read.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join("; ")}.`,
    `Small files: concurrency ${c} (CLI -p ${c}: ${c} batch calls in flight, 256 files per Uploads.PutFiles / Files.ReadMany call; raw: ${c} connections, one autocommit statement per file). Each CLI row is one CLI process; a trivial CLI command (start-up + one RPC) takes ${small.cliStartup.toFixed(2)} s here, included in the rates (and in the sync row's time).`,
    `Listing: the ${knobs.BENCH_LIST_FILES} files are inserted with SQL into files/file_versions (all pointing at one tiny committed file): populating them through the API is not what this row measures. The RPC row calls Files.List directly (page_size 1000, following next_cursor); one unpaged raw SELECT of all rows runs at ${fmt(listing.rawOnce, "files/s")}.`,
    `Peak server RSS is the larger of VmRSS sampled every 100 ms and the kernel's VmHWM, over the server processes of rows 2–4; the highest VmHWM was reached during "${large.peakStep}" (${large.peakMemory}; idle after start: ${(server.idleRss / MiB).toFixed(0)} MiB, including the tsx loader bench/serve.ts runs under).`,
  ];
  const total = (performance.now() - started) / 1000;
  process.stdout.write(
    `\n${textTable(rows)}\n\n${notes.map((n) => `* ${n}`).join("\n")}\n\nTotal time: ${total.toFixed(0)} s\n`,
  );

  if (docPath) {
    const machine = await describeMachine(db.version, loadAtStart);
    await writeFile(docPath, renderDocument({ command, startedAt, seconds: total, machine, rows, notes }));
    log(`wrote ${relative(process.cwd(), docPath) || docPath}`);
  } else {
    log("docs/benchmarks.md not written (non-default knobs; set BENCH_DOC=<path> to write the page)");
  }
}

/**
 * Waits (at most 10 s) until each virtual host serves its tenant: a probe file is written to each
 * tenant through the API and fetched through the host (the server reloads its vhost map every 500 ms).
 */
async function waitForVHosts(session: BenchSession, url: string, hosts: [string, string][]): Promise<void> {
  for (const [host, tenantId] of hosts) {
    const path = `/probe-${host}.txt`;
    await session
      .client(Uploads)
      .begin({ tenantId, path, committed: { case: "contents", value: Buffer.from(host) } });
    for (let i = 0; ; i++) {
      const r = await run(
        "curl",
        [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-H",
          `Authorization: Bearer ${session.token}`,
          "-H",
          `Host: ${host}`,
          `${url}${path}`,
        ],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      if (r.stdout === "200") break;
      if (i >= 50) throw new Error(`virtual host ${host} is not served after 10 s (last status ${r.stdout})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
