/**
 * Row 8: garbage collection throughput over a tenant of `count` (default 100,000) deleted small
 * files: as many versions, ropes and chunks to reclaim (bench/garbage.ts builds it through the API).
 *
 * Measured: one `GarbageCollection.Collect { tenant_id, older_than: 0s }` with nothing else running,
 * after an ANALYZE of the tables (as autovacuum would have done by then) and a CHECKPOINT. Rates are over the *work time*: the call's wall time minus the server's safety
 * margin, which the run spends asleep between condemning the chunks and sweeping them (10 s by
 * default; it is a fixed wait, not work, and would be the same for 10 chunks). The wall time and the
 * margin are reported too.
 *
 * Limit: the same rows deleted by raw batched DELETEs on the same database (bench/raw-delete.ts),
 * as chunks (and MiB of chunk data) per second of those deletes.
 */
import type { BenchSession } from "./bootstrap.js";
import type { BenchDatabase } from "./database.js";
import {
  analyzeGarbage,
  describeGarbage,
  type GarbagePut,
  type GarbageSetup,
  killGarbage,
  type TimedCollection,
  timedCollect,
} from "./garbage.js";
import { type RawDelete, rawDelete } from "./raw-delete.js";

/** Everything row 8 measured. */
export interface GcThroughput {
  setup: GarbageSetup;
  raw: RawDelete;
  run: TimedCollection;
  /** Wall time minus the margin, seconds. */
  workSeconds: number;
  versions: number;
  ropes: number;
  chunks: number;
  /** Physical bytes of the chunks reclaimed. */
  bytes: number;
}

/** Kills the garbage tenant's files, measures the raw limit, then times the collection. */
export async function gcThroughput(
  db: BenchDatabase,
  session: BenchSession,
  garbage: GarbagePut,
  marginMs: number,
  log: (line: string) => void,
): Promise<GcThroughput> {
  const { tenant, count } = garbage;
  const setup = await killGarbage(db, session, garbage);
  log(`8. garbage: ${describeGarbage(setup)}`);
  const raw = await rawDelete(db, tenant);
  log(
    `8. raw batched DELETE of the same rows: ${raw.seconds.toFixed(1)} s (${(raw.rows.chunks / raw.seconds).toFixed(0)} chunks/s; copy ${raw.copySeconds.toFixed(1)} s)`,
  );
  if (raw.rows.chunks !== count)
    throw new Error(`the garbage tenant holds ${raw.rows.chunks} chunks, expected ${count}`);
  await analyzeGarbage(db); // and CHECKPOINT, so the collection starts clean
  const run = await timedCollect(session, db, tenant, marginMs);
  const r = run.report;
  const result: GcThroughput = {
    setup,
    raw,
    run,
    workSeconds: run.seconds - run.marginMs / 1000,
    versions: Number(r.versions),
    ropes: Number(r.ropes),
    chunks: Number(r.chunks),
    bytes: Number(r.bytes),
  };
  if (result.chunks !== count || result.versions !== count || result.ropes !== count) {
    throw new Error(
      `Collect reclaimed ${result.versions} versions, ${result.ropes} ropes, ${result.chunks} chunks (pending ${r.pendingChunks}, lost races ${r.lostRaces}); expected ${count} of each`,
    );
  }
  log(
    `8. Collect: ${run.seconds.toFixed(1)} s wall, ${result.workSeconds.toFixed(1)} s work (margin ${run.marginMs / 1000} s): ${(result.chunks / result.workSeconds).toFixed(0)} chunks/s`,
  );
  return result;
}
