/**
 * Row 9: the serving path's latency while garbage collection works, next to the same load idle.
 *
 * Load (bench/get-latency.ts): plain HTTP GETs of 1000 small files (4 KiB, one tenant of their
 * own on a virtual host, read once to warm the server's caches), `concurrency` (default 4) in
 * flight, each sent as soon as the previous answer's body is read.
 *
 * Idle: the load for a fixed time (10 s) right before the collection and again (10 s) right after
 * it, with nothing else running (both together are "idle": on a shared machine, bracketing the
 * collection shows drift).
 * Under GC: the same load for as long as a `Collect { tenant_id, older_than: 0s }` of a second
 * garbage tenant of `count` deleted files runs (bench/garbage.ts). GETs that start while the run
 * sleeps its safety margin are left out of "under GC" (the server does no collection work then;
 * the wait is located by watching the tenant's usage, see bench/garbage.ts), and shown separately;
 * the rest are split by phase: before the wait (versions, ropes, condemning chunks) and after it
 * (sweeping chunks). The collection is slowed by the load, so its time here is not row 8's.
 */
import { randomBytes } from "node:crypto";
import { Uploads } from "@cacheroach/proto";
import { type BenchSession, ensureTenant, mapVHost, waitForVHosts } from "./bootstrap.js";
import type { BenchDatabase } from "./database.js";
import {
  describeGarbage,
  type GarbagePut,
  type GarbageSetup,
  killGarbage,
  type TimedCollection,
  timedCollect,
} from "./garbage.js";
import { GetLoad, type GetTarget, type LatencyStats, latencyStats, type Sample } from "./get-latency.js";

/** Files the load reads, and how long the idle load runs. */
const SERVED_FILES = 1000;
const IDLE_SECONDS = 10;

/** Everything row 9 measured. */
export interface GcLatency {
  concurrency: number;
  files: number;
  size: number;
  /** Both idle periods together, and each. */
  idle: LatencyStats;
  idleBefore: LatencyStats;
  idleAfter: LatencyStats;
  /** GETs started while the collection worked (the margin wait left out). */
  underGc: LatencyStats;
  /** Of those, before the wait (versions, ropes, condemning) and after it (sweeping). */
  beforeWait: LatencyStats | undefined;
  afterWait: LatencyStats | undefined;
  /** GETs started during the margin wait (undefined when the wait was not located). */
  duringWait: LatencyStats | undefined;
  setup: GarbageSetup;
  run: TimedCollection;
}

/** Sets up the served files, kills the garbage, then measures the load idle and under a collection. */
export async function gcLatency(
  db: BenchDatabase,
  session: BenchSession,
  url: string,
  garbage: GarbagePut,
  concurrency: number,
  marginMs: number,
  log: (line: string) => void,
): Promise<GcLatency> {
  const { size } = garbage;
  const serveTenant = await ensureTenant(session, "bench: GC serving");
  const host = "gc-serve.bench.test";
  await mapVHost(session, host, serveTenant);
  const paths = Array.from({ length: SERVED_FILES }, (_, i) => `/serve/s${String(i).padStart(4, "0")}.bin`);
  await session.client(Uploads).putFiles({
    tenantId: serveTenant,
    files: paths.map((path) => ({ path, contents: randomBytes(size) })),
  });
  await waitForVHosts(session, url, [[host, serveTenant]]);
  const target: GetTarget = { url, host, token: session.token, paths, size };
  await new GetLoad(target, concurrency, paths.length).done(); // warm-up

  const setup = await killGarbage(db, session, garbage);
  log(`9. garbage: ${describeGarbage(setup)}`);

  const idleLoad = async () => {
    const loaded = new GetLoad(target, concurrency);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    return loaded.stop();
  };
  const before = await idleLoad();
  log(`9. idle before: ${describe(latencyStats(before))}`);

  const load = new GetLoad(target, concurrency);
  let run: TimedCollection;
  let samples: Sample[];
  try {
    run = await timedCollect(session, db, garbage.tenant, marginMs);
  } finally {
    samples = await load.stop();
  }
  const after = await idleLoad();
  log(`9. idle after: ${describe(latencyStats(after))}`);
  const during = samples.filter((s) => s.at >= run.startedAt && s.at < run.endedAt);
  const wait =
    run.marginMs > 0 && run.sweepSeenAt !== undefined
      ? { from: run.sweepSeenAt - run.marginMs, to: run.sweepSeenAt }
      : undefined;
  const inWait = (s: Sample) => wait !== undefined && s.at >= wait.from && s.at < wait.to;
  const working = during.filter((s) => !inWait(s));
  const orNone = (xs: Sample[]) => (xs.length > 0 ? latencyStats(xs) : undefined);
  const idleBefore = latencyStats(before);
  const idleAfter = latencyStats(after);
  const beforeWait = wait ? orNone(working.filter((s) => s.at < wait.from)) : undefined;
  const afterWait = wait ? orNone(working.filter((s) => s.at >= wait.to)) : undefined;
  const result: GcLatency = {
    concurrency,
    files: SERVED_FILES,
    size,
    idle: latencyStats([...before, ...after], idleBefore.seconds + idleAfter.seconds),
    idleBefore,
    idleAfter,
    underGc: latencyStats(working, wait ? (beforeWait?.seconds ?? 0) + (afterWait?.seconds ?? 0) : undefined),
    beforeWait,
    afterWait,
    duringWait: wait ? orNone(during.filter(inWait)) : undefined,
    setup,
    run,
  };
  if (run.marginMs > 0 && !wait) {
    log("9. warning: the margin wait was not located (usage never seen dropping): no GET is left out");
  }
  log(`9. during GC: ${describe(result.underGc)} (Collect ${run.seconds.toFixed(1)} s wall)`);
  return result;
}

function describe(x: LatencyStats): string {
  return `${x.count} GETs, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms`;
}
