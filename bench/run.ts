/**
 * `npm run bench`: cacheroach's throughput next to this machine's own limits, measured in the same
 * run, as one table (printed, and written to docs/benchmarks.md). Never part of `npm test`.
 *
 *   npm run bench
 *   BENCH_MIB=64 BENCH_SMALL_FILES=500 BENCH_LIST_FILES=5000 npm run bench   # a quick run
 *
 *   BENCH_ROWS=gc npm run bench                                          # rows 8–9 only
 *   BENCH_ROWS=growth npm run bench                                      # rows 10–12 only
 *
 * Knobs (environment): BENCH_MIB (large file size, default 1024), BENCH_SMALL_FILES (default 10000),
 * BENCH_LIST_FILES (default 100000), BENCH_CONCURRENCY (small files, default 8), BENCH_GC_CHUNKS
 * (files, hence chunks, of each garbage tenant of rows 8–9, default 100000), BENCH_GC_CONCURRENCY
 * (GETs in flight in row 9, default 4), BENCH_GROWTH_MAX (files of the largest growth level of rows
 * 10–11, default 10^6; the levels are it / 100, / 10 and itself), BENCH_GROWTH_CALLS (timed calls
 * per level and latency, default 200), BENCH_GROWTH_UPLOAD_MIB (bytes of each concurrency level of
 * row 12, default 256), BENCH_ROWS (`all`, default; `core` = rows 1–7; `gc` = rows 8–9; `growth` =
 * rows 10–12; each with the database and server they need), DATABASE_URL (use
 * that PostgreSQL instead of an embedded one), BENCH_SERVER_NODE_ARGS (extra node flags for the
 * server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_DOC (where to write the Markdown page;
 * default docs/benchmarks.md for a run with default knobs, none otherwise).
 *
 * Order: limits first (raw pg ingest/read of the large file, BLAKE3, nginx, restic, loopback TCP,
 * rclone), then the server (a separate process) with rows 2–4 while its memory is watched (row 7),
 * then small files (5) and listing (6), then garbage collection (8: throughput; 9: small-GET latency
 * during a collection) in a fresh database with a fresh server process, then growth (10–11: latency
 * in a tenant of 10^4…10^6 files; 12: concurrent uploads) in another.
 * Every temp directory and child process is removed on exit, error or Ctrl-C.
 * What each row measures, and why its limit is the fair comparison, is in the module of that row.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { HASH_CACHE_ENV } from "@cacheroach/cli";
import { DEFAULT_GC_MARGIN_MS } from "../packages/server/src/config.js";
import {
  type BenchSession,
  bootstrapSession,
  ensureTenant,
  mapVHost,
  waitForVHosts,
  writeCliConfig,
} from "./bootstrap.js";
import { Cleanup } from "./cleanup.js";
import { type BenchDatabase, openBenchDatabase } from "./database.js";
import { GC_HEADING, renderDocument, renderSoloSection, spliceSection } from "./document.js";
import { killRunning, REPO_ROOT } from "./exec.js";
import { putGarbage } from "./garbage.js";
import { gcLatency } from "./gc-latency.js";
import { gcNotes, gcRows, gcSection } from "./gc-report.js";
import { gcThroughput } from "./gc-throughput.js";
import { measureGrowth } from "./growth.js";
import { GROWTH_HEADING, growthNotes, growthRows, growthSection } from "./growth-report.js";
import { blake3Rate } from "./hash-limit.js";
import { largeFileRows } from "./large-file.js";
import { listingRows, populateListing } from "./listing.js";
import { loopbackRate } from "./loopback-limit.js";
import { nginxRate } from "./nginx-limit.js";
import { KiB, MiB, writeRandomFile, writeSmallFiles } from "./payload.js";
import { dropRawChunks, type Limit, rawIngest, rawRead } from "./raw-chunks.js";
import { rcloneRate } from "./rclone-limit.js";
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
  BENCH_GC_CHUNKS: 100_000,
  BENCH_GC_CONCURRENCY: 4,
  BENCH_GROWTH_MAX: 1_000_000,
  BENCH_GROWTH_CALLS: 200,
  BENCH_GROWTH_UPLOAD_MIB: 256,
};
const ROW_SETS = ["all", "core", "gc", "growth"] as const;
const rowSet = (process.env["BENCH_ROWS"] || "all") as (typeof ROW_SETS)[number];
if (!ROW_SETS.includes(rowSet)) {
  process.stderr.write(`BENCH_ROWS=${rowSet} must be one of ${ROW_SETS.join(", ")}\n`);
  process.exit(2);
}
const wantCore = rowSet === "all" || rowSet === "core";
const wantGc = rowSet === "all" || rowSet === "gc";
const wantGrowth = rowSet === "all" || rowSet === "growth";
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
  ...(rowSet !== "all" ? [`BENCH_ROWS=${rowSet}`] : []),
  ...(process.env["DATABASE_URL"] ? ["DATABASE_URL=…"] : []),
  "npm run bench",
].join(" ");
const defaultKnobs = Object.entries(knobs).every(([k, v]) => v === DEFAULTS[k as keyof typeof DEFAULTS]);
/**
 * Where the page goes: a full run with default knobs rewrites docs/benchmarks.md; a `BENCH_ROWS=gc`
 * or `growth` run with default knobs replaces only its section there (the other rows stay); a
 * `core` run or other knobs write nothing unless BENCH_DOC names a file.
 */
const docPath =
  process.env["BENCH_DOC"] ||
  (defaultKnobs && rowSet !== "core" ? join(REPO_ROOT, "docs", "benchmarks.md") : undefined);

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

  const rows: TableRow[] = [];
  const notes: string[] = [];
  const sections: string[] = [];
  const limits = wantCore ? await limitRows(db, work) : undefined;

  // The server under test.
  const monitor = new RssMonitor();
  const signingKey = new Uint8Array(randomBytes(32));
  const serverSettings = {
    databaseUrl: db.url,
    signingKey,
    cacheBytes,
    dataDir: join(work, "server-data"),
    gcMarginMs: DEFAULT_GC_MARGIN_MS,
  };
  const server = new ServerProcess(serverSettings, cleanup, monitor);
  await server.start();
  const session = await bootstrapSession(server.url, signingKey, cleanup);
  log(`[${elapsed()}] server ${server.url} (pid ${server.pid}, cache ${cacheBytes / MiB} MiB)`);
  let row6: { count: number; rpc: number } | undefined;
  if (limits) {
    const core = await coreRows(db, work, server, session, monitor, limits);
    rows.push(...core.rows);
    notes.push(...core.notes);
    row6 = core.listing;
  }
  // Each later part gets a fresh database and server process of its own when an earlier part ran
  // (see BenchDatabase.sibling); the first part uses the first ones.
  let firstUsed = false;
  const stage = async (name: string) => {
    if (!firstUsed) {
      firstUsed = true;
      return { db, server, session };
    }
    await server.stop();
    const stageDb = await db.sibling();
    const stageServer = new ServerProcess(
      { ...serverSettings, databaseUrl: stageDb.url, dataDir: join(work, `server-data-${name}`) },
      cleanup,
      new RssMonitor(),
    );
    await stageServer.start();
    return {
      db: stageDb,
      server: stageServer,
      session: await bootstrapSession(stageServer.url, signingKey, cleanup),
    };
  };
  if (limits) firstUsed = true;
  if (wantGc) {
    const s = await stage("gc");
    const gc = await gcRowsOf(s.db, s.server, s.session);
    await s.server.stop();
    rows.push(...gcRows(gc.throughput, gc.latency));
    notes.push(...gcNotes(gc.throughput, gc.latency));
    sections.push(gcSection(gc.throughput, gc.latency));
  }
  if (wantGrowth) {
    const s = await stage("growth");
    const ingest = limits?.ingest ?? (await growthIngestLimit(s.db, work));
    const ingestRef = { name: "raw pg ingest", value: ingest.best.mibps };
    const g = await measureGrowth(
      s.db,
      s.session,
      s.server.url,
      work,
      {
        max: knobs.BENCH_GROWTH_MAX,
        calls: knobs.BENCH_GROWTH_CALLS,
        uploadMiB: knobs.BENCH_GROWTH_UPLOAD_MIB,
      },
      (line) => log(`[${elapsed()}] ${line}`),
    );
    await s.server.stop();
    rows.push(...growthRows(g, ingestRef, row6));
    notes.push(...growthNotes(g));
    if (!limits)
      notes.push(
        `Raw pg ingest for row 12 (measured on the ${knobs.BENCH_GROWTH_UPLOAD_MIB} MiB upload, row 1 did not run): ${ingest.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join("; ")} MiB/s.`,
      );
    sections.push(growthSection(g, ingestRef));
  }
  await server.stop();

  const total = (performance.now() - started) / 1000;
  process.stdout.write(
    `\n${textTable(rows)}\n\n${notes.map((n) => `* ${n}`).join("\n")}\n\n${sections.join("\n")}\nTotal time: ${total.toFixed(0)} s\n`,
  );

  if (docPath) {
    const machine = await describeMachine(db.version, loadAtStart);
    const input = { command, startedAt, seconds: total, machine, rows, notes, sections, rowSet };
    if (rowSet === "gc" || rowSet === "growth") {
      const heading = rowSet === "gc" ? GC_HEADING : GROWTH_HEADING;
      const page = await readFile(docPath, "utf8").catch(() => "# Benchmarks\n");
      await writeFile(
        docPath,
        spliceSection(page, heading, renderSoloSection(input, heading, sections.join("\n"))),
      );
    } else {
      await writeFile(docPath, renderDocument(input));
    }
    log(`wrote ${relative(process.cwd(), docPath) || docPath}`);
  } else {
    log("docs/benchmarks.md not written (non-default knobs; set BENCH_DOC=<path> to write the page)");
  }
}

/** Row 1: the limits measured before the server starts (they share the machine with nothing). */
async function limitRows(db: BenchDatabase, work: string) {
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
  const loopback = await loopbackRate(size);
  log(`[${elapsed()}] 1f loopback: ${loopback.mibps.toFixed(0)} MiB/s`);
  const rclone = await rcloneRate(file, size, cleanup);
  log(
    `[${elapsed()}] 1g rclone: ${"skipped" in rclone ? rclone.skipped : `${rclone.mibps.toFixed(0)} MiB/s`}`,
  );

  return { file, ingest, read, blake3, nginx, restic, loopback, rclone };
}

/** Rows 2–7 against the running server; their table rows and notes. */
async function coreRows(
  db: BenchDatabase,
  work: string,
  server: ServerProcess,
  session: BenchSession,
  monitor: RssMonitor,
  limits: Awaited<ReturnType<typeof limitRows>>,
): Promise<{ rows: TableRow[]; notes: string[]; listing: { count: number; rpc: number } }> {
  const { file, ingest, read, blake3, nginx, restic, loopback, rclone } = limits;
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
    `[${elapsed()}] 5. put ${small.put.toFixed(0)} files/s, get ${small.get.toFixed(0)} files/s, sync unchanged ${small.syncUnchanged.toFixed(2)} s (median of ${small.syncRuns.map((x) => x.toFixed(2)).join(", ")})`,
  );

  // Row 6.
  await populateListing(db, session, listTenant, knobs.BENCH_LIST_FILES);
  const listing = await listingRows(db, session, config, listTenant, knobs.BENCH_LIST_FILES);
  log(
    `[${elapsed()}] 6. listing: RPC ${listing.rpc.toFixed(0)}/s, CLI ${listing.cli.toFixed(0)}/s, raw ${listing.rawPaged.toFixed(0)}/s`,
  );

  // The table.
  const optional = (name: string, l: typeof nginx): Reference =>
    "skipped" in l ? { skipped: l.skipped } : { name, value: l.mibps };
  const ingestRef: Reference = { name: "raw pg ingest", value: ingest.best.mibps };
  const readRef: Reference = { name: "raw pg read", value: read.best.mibps };
  const blakeRef: Reference = { name: "BLAKE3", value: blake3 };
  const nginxRef = optional("nginx", nginx);
  const resticRef = optional("restic", restic);
  const rcloneRef = optional("rclone", rclone);
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
      "1b. raw pg read, 512 KiB rows",
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
    limitRow("1f. loopback TCP, Node → Node", loopback.mibps, "MiB/s", loopback.detail),
    limitRow(
      "1g. rclone copy → rclone serve webdav",
      "skipped" in rclone ? rclone : rclone.mibps,
      "MiB/s",
      "skipped" in rclone ? "" : rclone.detail,
    ),
    ratioRow(`2. cold upload ${big}, CLI`, large.coldUploadCli, "MiB/s", ingestRef, 0.85),
    ratioRow(`2. cold upload ${big}, CLI`, large.coldUploadCli, "MiB/s", resticRef, 1, true),
    ratioRow(`2. cold upload ${big}, curl -T`, large.coldUploadCurl, "MiB/s", ingestRef, 0.85),
    ratioRow(`2. cold upload ${big}, curl -T`, large.coldUploadCurl, "MiB/s", resticRef, 1, true),
    ratioRow(`2. cold upload ${big}, curl -T`, large.coldUploadCurl, "MiB/s", rcloneRef, undefined),
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
      `6. list ${knobs.BENCH_LIST_FILES}, Files.List RPC, protobuf-es decoder`,
      listing.rpcProtobufEs,
      "files/s",
      { name: "raw paged SELECT", value: listing.rawPaged },
      undefined,
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
    `Raw pg ingest attempts (MiB/s): ${ingest.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join("; ")}; the limit is the best (${ingest.best.label}). Raw pg read attempts: ${read.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join("; ")}; the limit is the best (${read.best.label}).`,
    `Against loopback TCP (${fmt(loopback.mibps, "MiB/s")}, info): ${(
      [
        ["cold upload CLI", large.coldUploadCli],
        ["cold upload curl -T", large.coldUploadCurl],
        ["cold download CLI", large.coldDownloadCli],
        ["cold download curl", large.coldDownloadCurl],
        ["hot download CLI", large.hotDownloadCli],
        ["hot download curl", large.hotDownloadCurl],
      ] as const
    )
      .map(([name, v]) => `${name} ${(v / loopback.mibps).toFixed(2)}`)
      .join("; ")}.`,
    `Small files: concurrency ${c} (CLI -p ${c}: ${c} batch calls in flight, 256 files per Uploads.PutFiles / Files.ReadMany call; raw: ${c} connections, one autocommit statement per file). Each CLI row is one CLI process; a trivial CLI command (start-up + one RPC) takes ${small.cliStartup.toFixed(2)} s here (median of three), included in the rates (and in the sync row's time). The sync row is the median of three runs: ${small.syncRuns.map((x) => `${x.toFixed(2)} s`).join(", ")}.`,
    `Listing: the ${knobs.BENCH_LIST_FILES} files are inserted with SQL into files/file_versions (all pointing at one tiny committed file): populating them through the API is not what this row measures. The RPC rows call Files.List directly (page_size 1000, following next_cursor), decoding the answer as the CLI does (a hand-written decoder, proto/src/list-decoding.ts) and, as information, with protobuf-es' generic decoder; one unpaged raw SELECT of all rows runs at ${fmt(listing.rawOnce, "files/s")}.`,
    `Peak server RSS is the larger of VmRSS sampled every 100 ms and the kernel's VmHWM, over the server processes of rows 2–4; the highest VmHWM was reached during "${large.peakStep}" (${large.peakMemory}; idle after start: ${(server.idleRss / MiB).toFixed(0)} MiB, including the tsx loader bench/serve.ts runs under).`,
  ];
  return { rows, notes, listing: { count: knobs.BENCH_LIST_FILES, rpc: listing.rpc } };
}

/** Rows 8–9: garbage collection throughput, and small-GET latency during a collection. */
async function gcRowsOf(db: BenchDatabase, server: ServerProcess, session: BenchSession) {
  const n = knobs.BENCH_GC_CHUNKS;
  const logLine = (line: string) => log(`[${elapsed()}] ${line}`);
  // Both tenants are written before either is killed (see bench/garbage.ts).
  const first = await putGarbage(session, await ensureTenant(session, "bench: GC throughput"), n, SMALL_SIZE);
  const second = await putGarbage(
    session,
    await ensureTenant(session, "bench: GC under load"),
    n,
    SMALL_SIZE,
  );
  logLine(
    `8–9. wrote 2 × ${n} files in ${first.putSeconds.toFixed(1)} s + ${second.putSeconds.toFixed(1)} s`,
  );
  const throughput = await gcThroughput(db, session, first, DEFAULT_GC_MARGIN_MS, logLine);
  const latency = await gcLatency(
    db,
    session,
    server.url,
    second,
    knobs.BENCH_GC_CONCURRENCY,
    DEFAULT_GC_MARGIN_MS,
    logLine,
  );
  return { throughput, latency };
}

/** Row 12's limit when row 1 did not run: the raw ingest of a file of the upload's size. */
async function growthIngestLimit(db: BenchDatabase, work: string): Promise<Limit> {
  const bytes = knobs.BENCH_GROWTH_UPLOAD_MIB * MiB;
  const file = join(work, "growth-ingest.bin");
  await writeRandomFile(file, bytes);
  const ingest = await rawIngest(db, file, bytes);
  await dropRawChunks(db);
  await rm(file, { force: true });
  log(
    `[${elapsed()}] 12. raw pg ingest: ${ingest.attempts.map((a) => `${a.label} ${a.mibps.toFixed(0)}`).join(", ")} MiB/s`,
  );
  return ingest;
}
