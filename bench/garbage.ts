/**
 * Rows 8 and 9 need a tenant full of garbage, and a timed garbage collection of it.
 *
 * Building it (through the API, as users make garbage): `count` files of `size` random bytes
 * (each its own chunk, rope and version, since every file is smaller than a chunk and never seen
 * before) written with `Uploads.PutFiles`, 1000 files per call, a few calls in flight; then one
 * in twenty deleted with `Files.Delete` (a few dozen calls in flight) and the others replaced by an
 * empty file with `Uploads.PutFiles` again. Deleting every file one RPC at a time would take minutes
 * here (500–900 deletes/s on this 2-core machine, against 8000–13000 replaced files/s); a
 * replaced version is dead from the write of the next one, exactly as a deleted one is from its
 * deletion, and both are collected alike. The empty files share one rope with no chunk, so nothing
 * else of the tenant stays: a collection with `older_than: 0s` reclaims `count` versions, ropes and
 * chunks. The tables are ANALYZEd at the end (see {@link analyzeGarbage}).
 *
 * Both garbage tenants are written before either is killed and ANALYZEd: once the planner has
 * statistics of `ropes`, the statement with which PutFiles locks the ropes it references
 * (`… FROM ropes WHERE tenant_id = $1 AND hash = ANY($2) FOR SHARE`) takes a plan that costs about
 * 150 ms per 1000 hashes in a tenant of 10,000 ropes, and more as the tenant grows: writing the
 * second tenant after the first one's ANALYZE ran at 300–500 files/s instead of 3000–4000 here.
 * (A server issue, reported; the benchmark does not measure it.)
 *
 * Collecting it: one `GarbageCollection.Collect { tenant_id, older_than: 0s }`, timed from the call
 * to the end of its answer stream. A run that condemns chunks sleeps the server's safety margin
 * (exactly `marginMs`, once, between condemning and sweeping; lifecycle/gc.ts) before it deletes
 * them, so the work time is the wall time minus that margin. While the run goes on, the tenant's
 * physical usage (`tenant_usage`, one row per shard, lowered by every sweep statement) is read every
 * 100 ms: its first drop marks the start of the sweep, which locates the margin wait
 * ([first drop − margin, first drop], late by at most one poll plus one sweep batch) so that
 * row 9 can leave the GETs answered during the wait out of "under GC".
 */
import { randomBytes } from "node:crypto";
import { mapLimit } from "@cacheroach/cli";
import { Files, GarbageCollection, type TenantCollection, Uploads } from "@cacheroach/proto";
import type pg from "pg";
import type { BenchSession } from "./bootstrap.js";
import type { BenchDatabase } from "./database.js";

/** Files per PutFiles call (the RPC's maximum). */
const PUT_BATCH = 1000;
/** PutFiles calls in flight. */
const PUT_CONCURRENCY = 4;
/** Files.Delete calls in flight. */
const DELETE_CONCURRENCY = 32;
/** One file in this many is deleted; the others are replaced by an empty file. */
const DELETE_EVERY = 20;

/** How the garbage was made. */
export interface GarbageSetup {
  count: number;
  size: number;
  putSeconds: number;
  /** Files deleted (Files.Delete) and replaced by an empty file (PutFiles), and how long each took. */
  deleted: number;
  deleteSeconds: number;
  replaced: number;
  replaceSeconds: number;
}

/** Path of garbage file `i` (fixed width: byte order = numeric order). */
export function garbagePath(i: number): string {
  return `/gc/g${String(i).padStart(7, "0")}.bin`;
}

/** Garbage written but still live (see {@link putGarbage}). */
export interface GarbagePut {
  tenant: string;
  count: number;
  size: number;
  putSeconds: number;
}

/** Writes `count` random files of `size` bytes into `tenant` with PutFiles. */
export async function putGarbage(
  session: BenchSession,
  tenant: string,
  count: number,
  size: number,
): Promise<GarbagePut> {
  const t0 = performance.now();
  await putFiles(session, tenant, allPaths(count), () => randomBytes(size));
  return { tenant, count, size, putSeconds: (performance.now() - t0) / 1000 };
}

/**
 * Kills the files {@link putGarbage} wrote: one in {@link DELETE_EVERY} deleted, the others
 * replaced by an empty file; then ANALYZEs (see {@link analyzeGarbage}).
 */
export async function killGarbage(
  db: BenchDatabase,
  session: BenchSession,
  put: GarbagePut,
): Promise<GarbageSetup> {
  const { tenant } = put;
  const paths = allPaths(put.count);
  const toDelete = paths.filter((_, i) => i % DELETE_EVERY === 0);
  const toReplace = paths.filter((_, i) => i % DELETE_EVERY !== 0);
  const files = session.client(Files);
  let t0 = performance.now();
  await mapLimit(toDelete, DELETE_CONCURRENCY, (path) => files.delete({ tenantId: tenant, path }));
  const deleteSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const empty = new Uint8Array(0);
  await putFiles(session, tenant, toReplace, () => empty);
  const replaceSeconds = (performance.now() - t0) / 1000;
  await analyzeGarbage(db);
  return {
    count: put.count,
    size: put.size,
    putSeconds: put.putSeconds,
    deleted: toDelete.length,
    deleteSeconds,
    replaced: toReplace.length,
    replaceSeconds,
  };
}

function allPaths(count: number): string[] {
  return Array.from({ length: count }, (_, i) => garbagePath(i));
}

/** PutFiles of `paths`, PUT_BATCH per call, PUT_CONCURRENCY calls in flight; any failure throws. */
async function putFiles(
  session: BenchSession,
  tenant: string,
  paths: string[],
  contents: () => Uint8Array,
): Promise<void> {
  const uploads = session.client(Uploads);
  const batches = Array.from({ length: Math.ceil(paths.length / PUT_BATCH) }, (_, b) =>
    paths.slice(b * PUT_BATCH, (b + 1) * PUT_BATCH),
  );
  await mapLimit(batches, PUT_CONCURRENCY, async (batch) => {
    const res = await uploads.putFiles({
      tenantId: tenant,
      files: batch.map((path) => ({ path, contents: contents() })),
    });
    const failed = res.results.find((r) => r.result.case !== "file");
    if (failed) throw new Error(`PutFiles: ${JSON.stringify(failed.result.value)}`);
  });
}

/** "N files of S random bytes put in …; D deleted in …; R replaced in …" (for logs and the report). */
export function describeGarbage(g: GarbageSetup): string {
  const part = (n: number, seconds: number) =>
    `${n} in ${seconds.toFixed(1)} s (${(n / seconds).toFixed(0)} files/s)`;
  return `${g.count} files of ${g.size} random bytes put: ${part(g.count, g.putSeconds)}; deleted: ${part(g.deleted, g.deleteSeconds)}; replaced by an empty file: ${part(g.replaced, g.replaceSeconds)}`;
}

/**
 * ANALYZEs the tables a collection reads, as autovacuum would eventually do after so many new
 * rows: in a fresh database the planner otherwise still believes them empty, and may pick plans
 * (sequential scans inside per-row subqueries) no long-lived database would use.
 */
export async function analyzeGarbage(db: BenchDatabase): Promise<void> {
  if (process.env["PROBE_NO_ANALYZE"]) return;
  const pool = db.pool(1);
  try {
    for (const table of [
      "files",
      "file_versions",
      "ropes",
      "rope_chunks",
      "chunks",
      "uploads",
      "upload_chunks",
    ]) {
      await pool.query(`ANALYZE ${table}`);
    }
    await db.checkpoint(pool);
  } finally {
    await pool.end();
  }
}

/** A timed collection of one tenant. */
export interface TimedCollection {
  report: TenantCollection;
  /** performance.now() at the call and at the end of the answer stream (ms). */
  startedAt: number;
  endedAt: number;
  /** Wall time of the call, seconds. */
  seconds: number;
  /** The server's safety margin the run waited (ms): 0 when it condemned nothing. */
  marginMs: number;
  /** performance.now() when the tenant's usage was first seen lower (the sweep had begun), if it was. */
  sweepSeenAt: number | undefined;
}

/** Chunks stored by a tenant (the sum of its usage shards). */
async function usedChunks(pool: pg.Pool, tenant: string): Promise<number> {
  const r = await pool.query<{ n: string | null }>(
    "SELECT sum(chunks)::INT8 AS n FROM tenant_usage WHERE tenant_id = $1",
    [tenant],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Runs `Collect { tenant_id, older_than: 0s }` on `tenant`, watching its usage (see the module
 * comment). `marginMs` is the server's margin (bench/serve.ts sets it).
 */
export async function timedCollect(
  session: BenchSession,
  db: BenchDatabase,
  tenant: string,
  marginMs: number,
): Promise<TimedCollection> {
  const pool = db.pool(1);
  try {
    const before = await usedChunks(pool, tenant);
    let sweepSeenAt: number | undefined;
    let polling = true;
    const poller = (async () => {
      while (polling && sweepSeenAt === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const at = performance.now();
        if ((await usedChunks(pool, tenant)) < before) sweepSeenAt = at;
      }
    })();
    const startedAt = performance.now();
    const reports: TenantCollection[] = [];
    try {
      for await (const r of session.client(GarbageCollection).collect({
        tenantId: tenant,
        olderThan: { seconds: 0n, nanos: 0 },
      })) {
        reports.push(r);
      }
    } finally {
      polling = false;
      await poller;
    }
    const endedAt = performance.now();
    const report = reports.find((r) => r.tenantId === tenant);
    if (!report) throw new Error(`Collect answered no report for tenant ${tenant}`);
    if (report.error) throw new Error(`Collect failed for tenant ${tenant}: ${report.error}`);
    return {
      report,
      startedAt,
      endedAt,
      seconds: (endedAt - startedAt) / 1000,
      marginMs: report.chunks + report.pendingChunks > 0n ? marginMs : 0,
      sweepSeenAt,
    };
  } finally {
    await pool.end();
  }
}
