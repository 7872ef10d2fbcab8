/**
 * Rows 10–12: does cacheroach stay as fast when a tenant grows? The same calls are timed in one
 * tenant holding 10^4, 10^5 and 10^6 (`BENCH_GROWTH_MAX` / 100, / 10, ×1) files, each its own
 * chunk and rope, and uploads are timed with 1, 4 and 16 uploaders at once.
 *
 * Population: with SQL, not the API — writing 10^6 files through PutFiles would take minutes and
 * measure row 5 again. The tenant grows in steps (10^4, then 9 × 10^4 more, then 9 × 10^5 more),
 * each step one `INSERT … SELECT … FROM generate_series` per table, in one transaction: chunks
 * (hash = sha256 of the 8-byte big-endian number i — 32 bytes like the server's BLAKE3 hashes, not
 * equal to them — and the 8 bytes as data), ropes (one chunk each), rope_chunks, file_versions and
 * files (`/g/f<i, 7 digits>`, version 1), and the tenant's usage row, so the rows satisfy every key,
 * foreign key and check of the real schema (foreign keys are not re-checked when the user may skip
 * them, see {@link populate}); then ANALYZE of those tables, as autovacuum would do.
 * How long each step took is reported. No SQL file is ever read: a GET of such a file would fail
 * its hash check (the server hashes with BLAKE3), and no measurement reads one.
 *
 * Measured after each step (sequential calls, one in flight, after a few untimed warm-up calls):
 *
 * 10. `Uploads.FindMissing` of 256 hashes, half of them stored (random files of the tenant), half
 *     not (random bytes), `BENCH_GROWTH_CALLS` (200) calls, every call other hashes; and a plain
 *     HTTP GET of a 4 KiB file on a virtual host (bearer token, keep-alive; the same client as row
 *     9), as many GETs, each of a file never read before (written through PutFiles before the
 *     population, so its chunk is not in the server's cache: each GET looks up the head, the rope
 *     and the chunk in the database). p50 and p99 in ms.
 * 11. `Files.List` of the directory /g holding all n files: the first page (page_size 1000, 50
 *     calls, p50/p99), and one walk of all pages following next_cursor (files/s), right after one
 *     raw keyset-paged SELECT walk of the same rows (row 6's reference, which also warms the cache);
 *     each walk stops after 90 s (the rate is then over the pages read, and the report says so).
 * 12. Cold uploads of `BENCH_GROWTH_UPLOAD_MIB` (256) MiB of random bytes by 1, 4 and 16 concurrent
 *     `curl -T` processes (one file each of 256, 64 and 16 MiB), each level into a fresh tenant on
 *     its own virtual host, after a CHECKPOINT; aggregate MiB/s = all bytes ÷ time from the first
 *     start to the last finish, against the raw ingest limit (row 1a).
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { rm } from "node:fs/promises";
import { FilesListBytes, listResponseOfBytes, Uploads } from "@cacheroach/proto";
import type pg from "pg";
import { type BenchSession, ensureTenant, mapVHost, waitForVHosts } from "./bootstrap.js";
import type { BenchDatabase } from "./database.js";
import { run } from "./exec.js";
import { GetLoad, type LatencyStats, latencyStats, type Sample } from "./get-latency.js";
import { KiB, MiB, writeRandomFile } from "./payload.js";

/** The growth rows' knobs. */
export interface GrowthKnobs {
  /** Files (chunks) of the largest level; the levels are max/100, max/10 and max. */
  max: number;
  /** Timed FindMissing calls and GETs per level. */
  calls: number;
  /** Bytes each upload level sends in all (MiB). */
  uploadMiB: number;
}

/** What one level measured. */
export interface GrowthLevel {
  n: number;
  /** The population step that reached n (its own rows only), and its ANALYZE. */
  populateSeconds: number;
  /** Whether that step checked foreign keys (see {@link populate}). */
  fkChecked: boolean;
  analyzeSeconds: number;
  findMissing: LatencyStats;
  get: LatencyStats;
  firstPage: LatencyStats;
  /** Files/s of one Files.List walk of all n files, and of the raw paged SELECT walk. */
  walkRpc: number;
  walkRaw: number;
  walkSeconds: number;
  /** Files each walk saw: n, or fewer when it was cut at {@link WALK_CAP_MS}. */
  walked: number;
  rawWalked: number;
}

/** One upload level. */
export interface UploadLevel {
  uploaders: number;
  fileMiB: number;
  seconds: number;
  mibps: number;
}

/** Everything rows 10–12 measured. */
export interface GrowthResults {
  knobs: GrowthKnobs;
  levels: GrowthLevel[];
  uploads: UploadLevel[];
  /** Time the whole growth part took (s). */
  seconds: number;
}

const DIR = "/g";
const PAGE = 1000;
const HASHES = 256;
const WARMUP = 20;
const FIRST_PAGES = 50;
const UPLOADERS = [1, 4, 16];
/**
 * A walk stops after this long (the rate is then over the pages it read), so a slow server or a
 * loaded machine cannot stretch the run: the 10^6 walk takes 10–25 s here on a quiet machine.
 */
export const WALK_CAP_MS = 90_000;
const COLUMNS =
  "tenant_id, path, version, rope_hash, size, chunk_size, content_type, meta, ctime, mtime, dtime";

/** Chunk hash of populated file i: sha256 of i as 8 bytes big-endian (as `sha256(int8send(i))`). */
function chunkHashOf(i: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(i));
  return createHash("sha256").update(b).digest();
}

/**
 * Adds files [from, to) to the tenant with SQL (see the module comment). Returns whether foreign
 * keys were checked: the rows are consistent by construction, so when the user may (a superuser:
 * the embedded PostgreSQL), `session_replication_role = replica` skips the per-row foreign-key
 * triggers, and with no foreign key between them the tables are filled by two transactions at
 * once (chunks and rope_chunks; ropes, versions and heads): together about 3× faster here. Keys,
 * indexes and checks are enforced either way. Otherwise everything goes in one transaction, in
 * foreign-key order.
 */
async function populate(db: BenchDatabase, tenant: string, from: number, to: number): Promise<boolean> {
  const series = "FROM generate_series($2::int8, $3::int8 - 1) AS i";
  const rope = "sha256('\\x72'::bytea || int8send(i))";
  const chunk = "sha256(int8send(i))";
  const head = `SELECT $1::uuid, convert_to('${DIR}/f' || lpad(i::text, 7, '0'), 'UTF8'), 1, ${rope}, 8, ${512 * KiB},
    'application/octet-stream', '{}'::jsonb, now(), now(), NULL::timestamptz ${series}`;
  const args = [tenant, from, to];
  const chunkRows = [
    `INSERT INTO chunks (tenant_id, hash, data) SELECT $1, ${chunk}, int8send(i) ${series}`,
    `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) SELECT $1, ${rope}, 0, ${chunk}, 8 ${series}`,
  ];
  const fileRows = [
    `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size) SELECT $1, ${rope}, 8, 1, ${512 * KiB} ${series}`,
    `INSERT INTO file_versions (${COLUMNS}) ${head}`,
    `INSERT INTO files (${COLUMNS}) ${head}`,
  ];
  const usage = async (c: pg.PoolClient) =>
    c.query(
      `INSERT INTO tenant_usage (tenant_id, shard, chunks, bytes) VALUES ($1, 0, $2, $3)
       ON CONFLICT (tenant_id, shard) DO UPDATE SET chunks = tenant_usage.chunks + excluded.chunks, bytes = tenant_usage.bytes + excluded.bytes`,
      [tenant, to - from, 8 * (to - from)],
    );
  /** Runs `statements` in one transaction on `c`. */
  const transaction = async (c: pg.PoolClient, statements: string[], skipFks: boolean) => {
    await c.query("BEGIN");
    try {
      // A bound, not an expectation: 10^6 files take 1–3 minutes here.
      await c.query("SET LOCAL statement_timeout = '600s'");
      if (skipFks) await c.query("SET LOCAL session_replication_role = replica");
      for (const sql of statements) {
        const r = await c.query(sql, args);
        if (r.rowCount !== to - from)
          throw new Error(`${sql.slice(0, 30)}…: ${r.rowCount} rows, expected ${to - from}`);
      }
      if (statements.includes(fileRows[2]!)) await usage(c);
      await c.query("COMMIT");
    } catch (err) {
      await c.query("ROLLBACK").catch(() => {});
      throw err;
    }
  };
  const pool = db.pool(2);
  try {
    const [a, b] = [await pool.connect(), await pool.connect()];
    try {
      if (await maySkipForeignKeys(a)) {
        await Promise.all([transaction(a, chunkRows, true), transaction(b, fileRows, true)]);
        return false;
      }
      await transaction(a, [chunkRows[0]!, fileRows[0]!, chunkRows[1]!, fileRows[1]!, fileRows[2]!], false);
      return true;
    } finally {
      a.release();
      b.release();
    }
  } finally {
    await pool.end();
  }
}

/** True if this user may set session_replication_role (needs superuser). */
async function maySkipForeignKeys(c: pg.PoolClient): Promise<boolean> {
  await c.query("BEGIN");
  try {
    await c.query("SET LOCAL session_replication_role = replica");
    return true;
  } catch (err) {
    if ((err as { code?: string }).code !== "42501") throw err;
    return false;
  } finally {
    await c.query("ROLLBACK");
  }
}

async function analyze(db: BenchDatabase): Promise<void> {
  const pool = db.pool(1);
  try {
    for (const t of ["chunks", "ropes", "rope_chunks", "file_versions", "files", "tenant_usage"])
      await pool.query(`ANALYZE ${t}`);
  } finally {
    await pool.end();
  }
}

/** Times `f` `count` times in a row (after `warmup` untimed calls). */
async function timeCalls(
  count: number,
  warmup: number,
  f: (i: number) => Promise<void>,
): Promise<LatencyStats> {
  for (let i = 0; i < warmup; i++) await f(-1 - i);
  const samples: Sample[] = [];
  for (let i = 0; i < count; i++) {
    const at = performance.now();
    await f(i);
    samples.push({ at, ms: performance.now() - at });
  }
  return latencyStats(samples);
}

/** Rows 10–12 (the caller gives the server's URL and a work directory for the upload files). */
export async function measureGrowth(
  db: BenchDatabase,
  session: BenchSession,
  url: string,
  work: string,
  knobs: GrowthKnobs,
  log: (line: string) => void,
): Promise<GrowthResults> {
  const t0 = performance.now();
  const tenant = await ensureTenant(session, "bench: growth");
  const host = "growth.bench.test";
  await mapVHost(session, host, tenant);
  const levels = [Math.round(knobs.max / 100), Math.round(knobs.max / 10), knobs.max];

  // The files the GETs read: each level reads WARMUP + calls files nobody has read.
  const perLevel = WARMUP + knobs.calls;
  const hot = Array.from(
    { length: perLevel * levels.length },
    (_, i) => `/hot/h${String(i).padStart(5, "0")}.bin`,
  );
  const SMALL = 4 * KiB;
  for (let i = 0; i < hot.length; i += 1000) {
    await session.client(Uploads).putFiles({
      tenantId: tenant,
      files: hot.slice(i, i + 1000).map((path) => ({ path, contents: randomBytes(SMALL) })),
    });
  }
  await waitForVHosts(session, url, [[host, tenant]]);
  // An open upload of the tenant: FindMissing needs its state.
  const { state } = await session
    .client(Uploads)
    .begin({ tenantId: tenant, path: "/find-missing-probe.bin" });
  const uploads = session.client(Uploads);
  // Decoded as the CLI decodes listings (proto/src/list-decoding.ts).
  const filesBytes = session.client(FilesListBytes);
  const files = {
    list: async (r: Parameters<typeof filesBytes.list>[0]) => listResponseOfBytes(await filesBytes.list(r)),
  };

  const results: GrowthLevel[] = [];
  let have = 0;
  for (const [li, n] of levels.entries()) {
    let t = performance.now();
    const fkChecked = await populate(db, tenant, have, n);
    const populateSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    await analyze(db);
    const analyzeSeconds = (performance.now() - t) / 1000;
    log(
      `10–11. tenant grown to ${n} files (+${n - have} in ${populateSeconds.toFixed(1)} s, ANALYZE ${analyzeSeconds.toFixed(1)} s)`,
    );
    have = n;

    const findMissing = await timeCalls(knobs.calls, WARMUP, async () => {
      const present = Array.from({ length: HASHES / 2 }, () => chunkHashOf(randomInt(n)));
      const absent = Array.from({ length: HASHES / 2 }, () => randomBytes(32));
      const r = await uploads.findMissing({ state, hashes: [...present, ...absent] });
      // Present hashes may repeat (random picks); absent ones never do.
      if (r.missing.length !== HASHES / 2)
        throw new Error(`FindMissing reported ${r.missing.length} missing, expected ${HASHES / 2}`);
    });
    const paths = hot.slice(li * perLevel, (li + 1) * perLevel);
    const target = { url, host, token: session.token, size: SMALL };
    await new GetLoad({ ...target, paths: paths.slice(0, WARMUP) }, 1, WARMUP).done();
    const get = latencyStats(
      await new GetLoad({ ...target, paths: paths.slice(WARMUP) }, 1, knobs.calls).done(),
    );
    const firstPage = await timeCalls(FIRST_PAGES, 5, async () => {
      const page = await files.list({ tenantId: tenant, path: DIR, pageSize: PAGE });
      if (page.files.length !== Math.min(PAGE, n))
        throw new Error(`first page held ${page.files.length} files`);
    });
    const raw = await rawWalk(db, tenant, n);
    t = performance.now();
    let cursor = "";
    let listed = 0;
    do {
      const page = await files.list({ tenantId: tenant, path: DIR, cursor, pageSize: PAGE });
      listed += page.files.length;
      cursor = page.nextCursor;
    } while (cursor !== "" && performance.now() - t < WALK_CAP_MS);
    const walkSeconds = (performance.now() - t) / 1000;
    if (cursor === "" && listed !== n) throw new Error(`Files.List walk saw ${listed} files, expected ${n}`);
    results.push({
      n,
      populateSeconds,
      fkChecked,
      analyzeSeconds,
      findMissing,
      get,
      firstPage,
      walkRpc: listed / walkSeconds,
      walkRaw: raw.rate,
      walkSeconds,
      walked: listed,
      rawWalked: raw.seen,
    });
    log(
      `10–11. n=${n}: FindMissing p50 ${findMissing.p50.toFixed(2)} ms p99 ${findMissing.p99.toFixed(2)}; GET p50 ${get.p50.toFixed(2)} p99 ${get.p99.toFixed(2)}; first page p50 ${firstPage.p50.toFixed(1)} ms; walk ${(listed / walkSeconds).toFixed(0)} files/s (${listed} files in ${walkSeconds.toFixed(1)} s; raw ${raw.rate.toFixed(0)}/s, ${raw.seen} rows in ${raw.seconds.toFixed(1)} s)`,
    );
  }

  const uploadResults = await uploadLevels(db, session, url, work, knobs.uploadMiB, log);
  return { knobs, levels: results, uploads: uploadResults, seconds: (performance.now() - t0) / 1000 };
}

/** One raw keyset-paged SELECT walk of /g (row 6's reference query), at most {@link WALK_CAP_MS}. */
async function rawWalk(
  db: BenchDatabase,
  tenant: string,
  n: number,
): Promise<{ rate: number; seen: number; seconds: number }> {
  const pool = db.pool(1);
  try {
    const hi = Buffer.from(`${DIR}0`);
    let after: Buffer = Buffer.from(`${DIR}/`);
    let seen = 0;
    const t0 = performance.now();
    for (;;) {
      const r = await pool.query<{ path: Buffer }>(
        `SELECT ${COLUMNS} FROM files WHERE tenant_id = $1 AND dtime IS NULL AND path > $2 AND path < $3 ORDER BY path LIMIT ${PAGE}`,
        [tenant, after, hi],
      );
      seen += r.rows.length;
      if (r.rows.length < PAGE) {
        if (seen !== n) throw new Error(`raw walk saw ${seen} rows, expected ${n}`);
        break;
      }
      if (performance.now() - t0 >= WALK_CAP_MS) break;
      after = r.rows[r.rows.length - 1]!.path;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rate: seen / seconds, seen, seconds };
  } finally {
    await pool.end();
  }
}

/** Row 12: `uploadMiB` MiB by 1, 4 and 16 concurrent `curl -T` PUTs, each level a fresh tenant. */
async function uploadLevels(
  db: BenchDatabase,
  session: BenchSession,
  url: string,
  work: string,
  uploadMiB: number,
  log: (line: string) => void,
): Promise<UploadLevel[]> {
  const out: UploadLevel[] = [];
  const hosts: [string, string][] = [];
  for (const u of UPLOADERS) {
    const tenant = await ensureTenant(session, `bench: ${u} uploaders`);
    const host = `up${u}.bench.test`;
    await mapVHost(session, host, tenant);
    hosts.push([host, tenant]);
  }
  await waitForVHosts(session, url, hosts);
  const pool = db.pool(1);
  try {
    for (const [k, u] of UPLOADERS.entries()) {
      const fileBytes = Math.floor((uploadMiB * MiB) / u);
      const local = Array.from({ length: u }, (_, i) => `${work}/upload-${u}-${i}.bin`);
      let t = performance.now();
      for (const f of local) await writeRandomFile(f, fileBytes);
      const writeSeconds = (performance.now() - t) / 1000;
      await db.checkpoint(pool);
      t = performance.now();
      await Promise.all(
        local.map(async (f, i) => {
          const r = await run("curl", [
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            f,
            "-H",
            `Authorization: Bearer ${session.token}`,
            "-H",
            `Host: ${hosts[k]![0]}`,
            `${url}/up/${i}.bin`,
          ]);
          if (r.stdout !== "201") throw new Error(`curl -T of ${f} answered ${r.stdout}, expected 201`);
        }),
      );
      const seconds = (performance.now() - t) / 1000;
      const bytes = fileBytes * u;
      out.push({ uploaders: u, fileMiB: fileBytes / MiB, seconds, mibps: bytes / MiB / seconds });
      log(
        `12. ${u} uploader(s) × ${(fileBytes / MiB).toFixed(0)} MiB: ${(bytes / MiB / seconds).toFixed(0)} MiB/s (${seconds.toFixed(1)} s; files written in ${writeSeconds.toFixed(1)} s)`,
      );
      await Promise.all(local.map((f) => rm(f, { force: true })));
    }
  } finally {
    await pool.end();
  }
  return out;
}
