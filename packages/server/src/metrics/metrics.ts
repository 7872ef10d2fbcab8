/**
 * The server's Prometheus metrics, one registry per server (tests run several in one process).
 * Lower layers never import this: they keep plain counters or accept a callback, and the
 * composition root (server.ts) connects them here. Labels are bounded: RPC methods come from
 * the service definitions, HTTP routes are a fixed set of classes, never paths or tenant ids.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Seconds buckets from 1 ms to 2 min: small GETs to large transfers. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A source of numbers read at scrape time (pull), so hot paths only bump plain fields. */
export interface MetricSources {
  /** Chunk cache counters since start and its current size. */
  chunkCache?: () => { hits: number; misses: number; bytes: number; entries: number };
  /** Database pools: connections open, idle and callers waiting, per pool. */
  dbPools?: () => readonly { pool: string; total: number; idle: number; waiting: number }[];
  /** Bytes received and sent on every connection since start (closed and open ones). */
  traffic?: () => { received: number; sent: number };
  /** Uploads begun and not yet committed or expired (may be a cached count). */
  uploadsOpen?: () => number | Promise<number>;
  /** Chunks writers were spared because the tenant stored them already, since start. */
  dedup?: () => { chunksSkipped: number; bytesSkipped: number; chunksWritten: number; bytesWritten: number };
  /** Writes refused by a tenant's quota, and Begins refused by the open-upload limit, since start. */
  quotaRefusals?: () => { quota: number; openUploads: number };
  /** Garbage collection's totals since start (lifecycle/gc.ts GcCounters). */
  gc?: () => {
    runs: number;
    failures: number;
    versions: number;
    uploads: number;
    ropes: number;
    chunks: number;
    bytes: number;
    lastRunEnd: number;
    lastRunSeconds: number;
  };
  /** Chunk reads refused because the bytes from the database did not match their hash, since start. */
  corruptReads?: () => number;
  /** Integrity scrubs since start (lifecycle/scrub.ts): what they checked and found. */
  scrub?: () => {
    chunks: number;
    bytes: number;
    ropes: number;
    problems: number;
    /** When (ms since the epoch) the last complete scrub of every tenant ended; 0: never. */
    lastRunEndedAt: number;
    lastRunProblems: number;
  };
}

/** HTTP methods kept as label values; anything else is "other". */
const HTTP_METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]);

export class Metrics {
  readonly registry = new Registry();
  private readonly rpcRequests: Counter<"method" | "code">;
  private readonly rpcDuration: Histogram<"method">;
  private readonly httpRequests: Counter<"route" | "method" | "status">;
  private readonly httpDuration: Histogram<"route" | "method">;
  private readonly dbQuery: Histogram<"outcome">;
  private readonly oidcRefreshes: Counter<"outcome">;

  constructor(build: { version: string }, sources: MetricSources = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges with a counter's "_total" suffix, which Prometheus' lint
    // (promtool check metrics) rejects; the handle and request counts are not worth the noise.
    for (const name of [
      "nodejs_active_handles_total",
      "nodejs_active_requests_total",
      "nodejs_active_resources_total",
    ])
      this.registry.removeSingleMetric(name);
    new Gauge({
      name: "cacheroach_build_info",
      help: "Always 1; labels name the running build.",
      labelNames: ["version", "node"],
      registers,
    }).set({ version: build.version, node: process.version }, 1);
    this.rpcRequests = new Counter({
      name: "cacheroach_rpc_requests_total",
      help: "RPCs finished, by method and Connect code (ok for success).",
      labelNames: ["method", "code"],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: "cacheroach_rpc_duration_seconds",
      help: "Time from an RPC's start to the end of its answer (streams included).",
      labelNames: ["method"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.httpRequests = new Counter({
      name: "cacheroach_http_requests_total",
      help: "Plain HTTP requests answered, by route class, method and status.",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: "cacheroach_http_duration_seconds",
      help: "Time from a plain HTTP request's arrival to the end of its answer.",
      labelNames: ["route", "method"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.dbQuery = new Histogram({
      name: "cacheroach_db_query_duration_seconds",
      help: "Database statements and transactions, retries included, by outcome.",
      labelNames: ["outcome"],
      buckets: QUERY_BUCKETS,
      registers,
    });

    monotonic(
      registers,
      "cacheroach_network_received_bytes_total",
      "Bytes received on client connections.",
      () => (sources.traffic ? sources.traffic().received : 0),
    );
    monotonic(registers, "cacheroach_network_sent_bytes_total", "Bytes sent on client connections.", () =>
      sources.traffic ? sources.traffic().sent : 0,
    );
    monotonic(registers, "cacheroach_chunk_cache_hits_total", "Chunk reads answered from memory.", () =>
      sources.chunkCache ? sources.chunkCache().hits : 0,
    );
    monotonic(
      registers,
      "cacheroach_chunk_cache_misses_total",
      "Chunk reads that went to the database.",
      () => (sources.chunkCache ? sources.chunkCache().misses : 0),
    );
    new Gauge({
      name: "cacheroach_chunk_cache_bytes",
      help: "Chunk data held in the memory cache.",
      registers,
      collect() {
        if (sources.chunkCache) this.set(sources.chunkCache().bytes);
      },
    });
    new Gauge({
      name: "cacheroach_chunk_cache_entries",
      help: "Chunks held in the memory cache.",
      registers,
      collect() {
        if (sources.chunkCache) this.set(sources.chunkCache().entries);
      },
    });
    monotonic(
      registers,
      "cacheroach_dedup_chunks_skipped_total",
      "Chunks a writer did not send or store because the tenant had them.",
      () => (sources.dedup ? sources.dedup().chunksSkipped : 0),
    );
    monotonic(
      registers,
      "cacheroach_dedup_bytes_skipped_total",
      "Bytes of the chunks counted by cacheroach_dedup_chunks_skipped_total.",
      () => (sources.dedup ? sources.dedup().bytesSkipped : 0),
    );
    monotonic(registers, "cacheroach_chunks_written_total", "New chunks stored.", () =>
      sources.dedup ? sources.dedup().chunksWritten : 0,
    );
    monotonic(registers, "cacheroach_chunk_bytes_written_total", "Bytes of new chunks stored.", () =>
      sources.dedup ? sources.dedup().bytesWritten : 0,
    );
    new Gauge({
      name: "cacheroach_db_pool_connections",
      help: "Database connections per pool and state (in_use, idle), and callers waiting for one.",
      labelNames: ["pool", "state"],
      registers,
      collect() {
        for (const p of sources.dbPools?.() ?? []) {
          this.set({ pool: p.pool, state: "in_use" }, p.total - p.idle);
          this.set({ pool: p.pool, state: "idle" }, p.idle);
          this.set({ pool: p.pool, state: "waiting" }, p.waiting);
        }
      },
    });
    this.oidcRefreshes = new Counter({
      name: "cacheroach_oidc_refreshes_total",
      help: "OIDC logins re-validated at the identity provider, by outcome: ok, refused (the user must log in again), unavailable (tried again later).",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of ["ok", "refused", "unavailable"]) this.oidcRefreshes.inc({ outcome }, 0);
    // Counters only grow: each scrape adds what the source counted since the last one.
    const refusalsSeen = { quota: 0, open_uploads: 0 };
    new Counter({
      name: "cacheroach_quota_refusals_total",
      help: "Requests refused by a tenant's limits: reason quota (physical bytes) or open_uploads.",
      labelNames: ["reason"],
      registers,
      collect() {
        const r = sources.quotaRefusals?.() ?? { quota: 0, openUploads: 0 };
        for (const [reason, now] of [
          ["quota", r.quota],
          ["open_uploads", r.openUploads],
        ] as const) {
          this.inc({ reason }, Math.max(0, now - refusalsSeen[reason]));
          refusalsSeen[reason] = Math.max(now, refusalsSeen[reason]);
        }
      },
    });
    // Read at scrape time: the collector is made after the metrics.
    const gc = () => sources.gc?.();
    monotonic(
      registers,
      "cacheroach_gc_runs_total",
      "Garbage collection runs finished.",
      () => gc()?.runs ?? 0,
    );
    monotonic(
      registers,
      "cacheroach_gc_failures_total",
      "Garbage collection runs or tenants of a run that failed (the next run tries again).",
      () => gc()?.failures ?? 0,
    );
    for (const [what, help] of [
      ["versions", "File versions removed (past retention)."],
      ["uploads", "Expired or idle uploads removed."],
      ["ropes", "Unreferenced contents (ropes) removed."],
      ["chunks", "Unreferenced chunks removed."],
      ["bytes", "Physical bytes of the chunks removed."],
    ] as const) {
      monotonic(
        registers,
        `cacheroach_gc_reclaimed_${what}_total`,
        `Garbage collection: ${help}`,
        () => gc()?.[what] ?? 0,
      );
    }
    new Gauge({
      name: "cacheroach_gc_last_run_timestamp_seconds",
      help: "When the last garbage collection run finished (Unix seconds; 0: none yet).",
      registers,
      collect() {
        const c = gc();
        if (c) this.set(c.lastRunEnd);
      },
    });
    new Gauge({
      name: "cacheroach_gc_last_run_duration_seconds",
      help: "How long the last garbage collection run took.",
      registers,
      collect() {
        const c = gc();
        if (c) this.set(c.lastRunSeconds);
      },
    });
    monotonic(
      registers,
      "cacheroach_chunk_corrupt_reads_total",
      "Chunk reads refused (DATA_LOSS) because the bytes from the database did not match their hash.",
      () => sources.corruptReads?.() ?? 0,
    );
    monotonic(registers, "cacheroach_scrub_chunks_total", "Chunks an integrity scrub re-hashed.", () =>
      sources.scrub ? sources.scrub().chunks : 0,
    );
    monotonic(
      registers,
      "cacheroach_scrub_bytes_total",
      "Bytes of the chunks an integrity scrub re-hashed.",
      () => (sources.scrub ? sources.scrub().bytes : 0),
    );
    monotonic(
      registers,
      "cacheroach_scrub_ropes_total",
      "Ropes (contents) whose chunk lists an integrity scrub checked.",
      () => (sources.scrub ? sources.scrub().ropes : 0),
    );
    monotonic(
      registers,
      "cacheroach_scrub_problems_total",
      "Damaged or missing chunks and broken ropes an integrity scrub found.",
      () => (sources.scrub ? sources.scrub().problems : 0),
    );
    new Gauge({
      name: "cacheroach_scrub_last_run_timestamp_seconds",
      help: "When the last complete scrub of every tenant ended (Unix time; 0: none yet).",
      registers,
      collect() {
        if (sources.scrub) this.set(sources.scrub().lastRunEndedAt / 1000);
      },
    });
    new Gauge({
      name: "cacheroach_scrub_last_run_problems",
      help: "Problems the last complete scrub of every tenant found (alert when above 0).",
      registers,
      collect() {
        if (sources.scrub) this.set(sources.scrub().lastRunProblems);
      },
    });
    new Gauge({
      name: "cacheroach_uploads_open",
      help: "Uploads begun and neither committed nor expired.",
      registers,
      async collect() {
        if (sources.uploadsOpen) this.set(await sources.uploadsOpen());
      },
    });
  }

  /** Records a finished RPC: `method` is "Service/Method"; `code` a Connect code name or "ok". */
  rpc(method: string, code: string, seconds: number): void {
    this.rpcRequests.inc({ method, code });
    this.rpcDuration.observe({ method }, seconds);
  }

  /** Records an answered plain HTTP request. */
  http(route: HttpRoute, method: string, status: number, seconds: number): void {
    const m = HTTP_METHODS.has(method) ? method : "other";
    this.httpRequests.inc({ route, method: m, status: String(status) });
    this.httpDuration.observe({ route, method: m }, seconds);
  }

  /** Records one re-validation of an OIDC login at the provider. */
  oidcRefresh(outcome: "ok" | "refused" | "unavailable"): void {
    this.oidcRefreshes.inc({ outcome });
  }

  /** Records one database statement or transaction. */
  query(seconds: number, ok: boolean): void {
    this.dbQuery.observe({ outcome: ok ? "ok" : "error" }, seconds);
  }

  /** The text exposition format, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Route classes of plain HTTP, the `route` label. */
export type HttpRoute = "file" | "signed" | "special" | "healthz" | "readyz" | "metrics";

/** The route class of a plain HTTP request's path and query. */
export function httpRouteOf(url: string): HttpRoute {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (path === "/healthz") return "healthz";
  if (path === "/readyz") return "readyz";
  if (path === "/metrics") return "metrics";
  if (path.startsWith("/_/v0/retrieve/")) return "signed";
  if (path.startsWith("/_/")) return "special";
  return "file";
}

/**
 * A counter whose value is read from a source that only grows (a field of another module):
 * each scrape adds what was added since the last one.
 */
function monotonic(registers: Registry[], name: string, help: string, read: () => number): void {
  let reported = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      if (now > reported) {
        this.inc(now - reported);
        reported = now;
      }
    },
  });
}

/** `read` at most once per `ms`: a scrape every few seconds must not cost a query each time. */
export function cachedFor(ms: number, read: () => Promise<number>): () => Promise<number> {
  let last = 0;
  let value: Promise<number> | undefined;
  return () => {
    const now = Date.now();
    if (!value || now - last >= ms) {
      last = now;
      value = read().catch(() => {
        last = 0; // try again at the next scrape
        return 0;
      });
    }
    return value;
  };
}
