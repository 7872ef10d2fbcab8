/**
 * The serving load of row 9: plain HTTP GETs of small files on a virtual host (bearer token, keep-
 * alive), from `concurrency` workers each sending its next GET as soon as the previous answer's
 * body has been read, and the latency of every GET (request sent → whole body read), stamped with
 * when it started so that a run can be cut into phases afterwards.
 *
 * The client is node:http in the benchmark process (a curl process per request would measure
 * curl's start-up). Every answer must be 200 with the file's exact length, or the load fails.
 */
import http from "node:http";

/** One GET: when it started (performance.now(), ms) and how long it took (ms). */
export interface Sample {
  at: number;
  ms: number;
}

/** Percentiles of a set of latencies (ms). */
export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Seconds the samples span (first start to last end) and GETs per second over it. */
  seconds: number;
  perSecond: number;
}

/** What the load GETs. */
export interface GetTarget {
  /** Base URL of the server (http://127.0.0.1:port). */
  url: string;
  /** Virtual host mapped to the tenant holding the files. */
  host: string;
  token: string;
  /** Paths of the files, every one `size` bytes. */
  paths: string[];
  size: number;
}

/** A running GET load; {@link stop} ends it and returns every sample. */
export class GetLoad {
  private stopping = false;
  private readonly samples: Sample[] = [];
  private readonly workers: Promise<void>[];
  private readonly agent: http.Agent;
  private next = 0;

  /** Starts `concurrency` workers; with `count`, they stop after that many GETs in all. */
  constructor(
    private readonly target: GetTarget,
    concurrency: number,
    private readonly count?: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    this.workers = Array.from({ length: concurrency }, () => this.worker());
  }

  /** Resolves when a load started with a `count` has sent them all. */
  async done(): Promise<Sample[]> {
    try {
      await Promise.all(this.workers);
    } finally {
      this.agent.destroy();
    }
    return this.samples;
  }

  /** Stops the workers after their GET in flight; every sample. */
  stop(): Promise<Sample[]> {
    this.stopping = true;
    return this.done();
  }

  private async worker(): Promise<void> {
    const { paths } = this.target;
    while (!this.stopping && (this.count === undefined || this.next < this.count)) {
      const path = paths[this.next++ % paths.length]!;
      const at = performance.now();
      await this.get(path);
      this.samples.push({ at, ms: performance.now() - at });
    }
  }

  private get(path: string): Promise<void> {
    const { url, host, token, size } = this.target;
    return new Promise((resolve, reject) => {
      const req = http.get(
        `${url}${path}`,
        { agent: this.agent, headers: { host, authorization: `Bearer ${token}` } },
        (res) => {
          let n = 0;
          res.on("data", (d: Buffer) => {
            n += d.length;
          });
          res.on("error", reject);
          res.on("end", () => {
            if (res.statusCode !== 200) reject(new Error(`GET ${path} on ${host}: HTTP ${res.statusCode}`));
            else if (n !== size) reject(new Error(`GET ${path} on ${host}: ${n} bytes, expected ${size}`));
            else resolve();
          });
        },
      );
      req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path} on ${host}: no answer in 60 s`)));
      req.on("error", reject);
    });
  }
}

/**
 * Nearest-rank percentiles of `samples` (which must not be empty). `spanSeconds` gives the time
 * they span when they come from separate periods (default: first start to last end).
 */
export function latencyStats(samples: readonly Sample[], spanSeconds?: number): LatencyStats {
  if (samples.length === 0) throw new Error("no GET samples to summarize");
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const rank = (p: number) => ms[Math.min(ms.length - 1, Math.max(0, Math.ceil((p / 100) * ms.length) - 1))]!;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const s of samples) {
    first = Math.min(first, s.at);
    last = Math.max(last, s.at + s.ms);
  }
  const seconds = spanSeconds ?? (last - first) / 1000;
  return {
    count: ms.length,
    p50: rank(50),
    p90: rank(90),
    p99: rank(99),
    max: ms[ms.length - 1]!,
    seconds,
    perSecond: seconds > 0 ? ms.length / seconds : 0,
  };
}
