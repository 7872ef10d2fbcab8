/**
 * The benchmark's cacheroach server, run as a child process of bench/run.ts so that its memory can
 * be read from /proc/<pid>/status and its CPU is not shared with the benchmark driver's event loop:
 *
 *   BENCH_SERVE='{"databaseUrl":…,"signingKey":"<base64>","cacheBytes":…,"dataDir":…,"port":0}' \
 *     node --import tsx bench/serve.ts
 *
 * It calls the same `startServer` as `cacheroach start` (which has no flag for the cache size), binds
 * 127.0.0.1 (a free port, or the given one on a restart), prints one JSON line `{"url":…,"pid":…}` on stdout once it listens, and on
 * SIGTERM/SIGINT closes cleanly (so `node --cpu-prof`, passed through BENCH_SERVER_NODE_ARGS, can write
 * its profile) and exits 0. On SIGUSR2 it prints `{"memory": process.memoryUsage()}` as one line.
 */
import { startServer } from "@cacheroach/server";

interface ServeConfig {
  databaseUrl: string;
  signingKey: string;
  cacheBytes: number;
  dataDir: string;
  /** 0 = a free port (first start); a restart passes the previous port so URLs stay valid. */
  port: number;
  /** Garbage collection's safety margin (ms); rows 8–9 subtract it from a collection's time. */
  gcMarginMs: number;
}

const cfg = JSON.parse(process.env["BENCH_SERVE"] ?? "null") as ServeConfig | null;
if (!cfg) {
  process.stderr.write("bench/serve.ts: BENCH_SERVE is not set (run through bench/run.ts)\n");
  process.exit(2);
}

const server = await startServer({
  bind: `127.0.0.1:${cfg.port}`,
  databaseUrl: cfg.databaseUrl,
  dataDir: cfg.dataDir,
  signingKeys: [new Uint8Array(Buffer.from(cfg.signingKey, "base64"))],
  cacheBytes: cfg.cacheBytes,
  logLevel: "warn",
  // New vhost mappings are served within half a second (the benchmark maps its hosts at start).
  vhostRefreshMs: 500,
  // Garbage collection runs only when rows 8–9 ask for it (Collect), never on a schedule.
  gcIntervalMs: 0,
  gcMarginMs: cfg.gcMarginMs,
});
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);

let closing = false;
const stop = () => {
  if (closing) process.exit(1);
  closing = true;
  server.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The benchmark asks where the memory is (V8 heap vs. Buffers) with SIGUSR2.
process.on("SIGUSR2", () => {
  process.stdout.write(`${JSON.stringify({ memory: process.memoryUsage() })}\n`);
});
