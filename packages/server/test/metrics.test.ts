/** The metrics module: names, labels and values, and the exposition format promtool accepts. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { WELL_KNOWN } from "@cacheroach/core";
import { Files, Uploads } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { httpRouteOf, Metrics } from "../src/metrics/metrics.js";
import { TrafficCounter } from "../src/metrics/traffic.js";
import { codeName } from "../src/rpc/metrics-interceptor.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

/** `promtool check metrics` on a scrape; undefined when promtool is not installed. */
export function promtoolProblems(body: string): string | undefined {
  const r = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  return r.status === 0 ? "" : `${r.stdout}${r.stderr}`;
}

/** Skips (outside CI) or fails (in CI, which installs it) when promtool is missing. */
export function needPromtool(t: { skip: (why: string) => void }): boolean {
  if (promtoolProblems("") !== undefined) return true;
  if (process.env.CI) assert.fail("promtool is missing: .ci/run installs Debian's prometheus package");
  t.skip("promtool not installed (apt-get install prometheus); CI installs it");
  return false;
}

/** The value of one sample line `name{labels} value` in a scrape, or undefined. */
export function sample(body: string, name: string, labels = ""): number | undefined {
  for (const line of body.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const key = line.slice(0, sp);
    if (key === (labels ? `${name}{${labels}}` : name)) return Number(line.slice(sp + 1));
  }
  return undefined;
}

test("recorded requests, queries and pulled sources appear with bounded labels", async () => {
  let hits = 10;
  const m = new Metrics(
    { version: "1.2.3" },
    {
      chunkCache: () => ({ hits, misses: 3, bytes: 4096, entries: 2 }),
      dbPools: () => [{ pool: "main", total: 5, idle: 2, waiting: 1 }],
      traffic: () => ({ received: 100, sent: 200 }),
      uploadsOpen: async () => 7,
      dedup: () => ({ chunksSkipped: 4, bytesSkipped: 4 << 19, chunksWritten: 6, bytesWritten: 6 << 19 }),
    },
  );
  m.rpc("cacheroach.v1.Files/Get", "ok", 0.002);
  m.rpc("cacheroach.v1.Files/Get", "not_found", 0.001);
  m.http("file", "GET", 200, 0.01);
  m.http("file", "BREW", 405, 0.01);
  m.query(0.0007, true);
  const body = (await m.scrape()).body;
  assert.equal(sample(body, "cacheroach_build_info", `version="1.2.3",node="${process.version}"`), 1);
  assert.equal(
    sample(body, "cacheroach_rpc_requests_total", 'method="cacheroach.v1.Files/Get",code="ok"'),
    1,
  );
  assert.equal(
    sample(body, "cacheroach_rpc_requests_total", 'method="cacheroach.v1.Files/Get",code="not_found"'),
    1,
  );
  assert.equal(sample(body, "cacheroach_http_requests_total", 'route="file",method="other",status="405"'), 1);
  assert.equal(sample(body, "cacheroach_db_query_duration_seconds_count", 'outcome="ok"'), 1);
  assert.equal(sample(body, "cacheroach_chunk_cache_hits_total"), 10);
  assert.equal(sample(body, "cacheroach_chunk_cache_bytes"), 4096);
  assert.equal(sample(body, "cacheroach_db_pool_connections", 'pool="main",state="in_use"'), 3);
  assert.equal(sample(body, "cacheroach_db_pool_connections", 'pool="main",state="waiting"'), 1);
  assert.equal(sample(body, "cacheroach_uploads_open"), 7);
  assert.equal(sample(body, "cacheroach_dedup_chunks_skipped_total"), 4);
  assert.equal(sample(body, "cacheroach_network_sent_bytes_total"), 200);
  assert.ok(sample(body, "process_resident_memory_bytes") !== undefined, "process metrics");
  hits = 15;
  assert.equal(
    sample((await m.scrape()).body, "cacheroach_chunk_cache_hits_total"),
    15,
    "pulled counters follow",
  );
});

test("the exposition passes promtool check metrics", async (t) => {
  if (!needPromtool(t)) return;
  const m = new Metrics({ version: "0.0.0" }, { traffic: () => ({ received: 1, sent: 2 }) });
  m.rpc("cacheroach.v1.Files/Get", "ok", 0.002);
  m.http("healthz", "GET", 200, 0.0001);
  assert.equal(promtoolProblems((await m.scrape()).body), "");
});

test("routes are classes, never paths; codes use Connect's wire names", () => {
  assert.equal(httpRouteOf("/healthz"), "healthz");
  assert.equal(httpRouteOf("/readyz?x=1"), "readyz");
  assert.equal(httpRouteOf("/metrics"), "metrics");
  assert.equal(httpRouteOf("/_/v0/config"), "special");
  assert.equal(httpRouteOf("/_/v0/retrieve/a.txt?access_token=x"), "signed");
  assert.equal(httpRouteOf("/tenant/some/deep/file.txt"), "file");
  assert.equal(codeName(Code.NotFound), "not_found");
  assert.equal(codeName(Code.ResourceExhausted), "resource_exhausted");
  assert.equal(codeName(ConnectError.from(new Error("x")).code), "unknown");
});

test("traffic counts closed and live connections and never goes down", async () => {
  const { createServer, connect } = await import("node:net");
  const traffic = new TrafficCounter();
  const server = createServer((s) => {
    traffic.track(s);
    s.on("data", (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const c = connect(port, "127.0.0.1");
  await new Promise((r) => c.once("connect", r));
  c.write(Buffer.alloc(1000));
  await new Promise((r) => c.once("data", r));
  const live = traffic.read();
  assert.ok(live.received >= 1000 && live.sent >= 1, JSON.stringify(live));
  c.end();
  await new Promise((r) => c.once("close", r));
  await new Promise((r) => setTimeout(r, 50));
  const closed = traffic.read();
  assert.ok(closed.received >= live.received && closed.sent >= live.sent);
  server.close();
});

/** Metric names a scrape declares (`# TYPE name type`), with each histogram's series names. */
export function exportedNames(body: string): Set<string> {
  const names = new Set<string>();
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [name, type] = [m[1] as string, m[2] as string];
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_count", "_sum"]) names.add(name + s);
  }
  return names;
}

/** Metric names the Grafana dashboard queries. */
export async function dashboardNames(): Promise<Set<string>> {
  const { readFile } = await import("node:fs/promises");
  const dash = JSON.parse(
    await readFile(new URL("../../../docs/grafana/cacheroach.json", import.meta.url), "utf8"),
  ) as {
    panels: { targets: { expr: string }[] }[];
  };
  const names = new Set<string>();
  for (const p of dash.panels)
    for (const t of p.targets)
      for (const m of t.expr.matchAll(/([a-z_:][a-z0-9_:]*)\{/g)) names.add(m[1] as string);
  return names;
}

describe("a running server's /metrics", () => {
  let ts: TestServer;
  const tenant = WELL_KNOWN.scratchpadTenant;

  before(async () => {
    ts = await startTestServer();
  });
  after(async () => {
    await ts?.close();
  });

  test("counts what the server did: RPCs by method and code, HTTP by route and status, chunks, uploads", async () => {
    const uploads = ts.client(Uploads, ts.superToken);
    const files = ts.client(Files, ts.superToken);
    const data = randomBytes(3 << 19); // three chunks of 512 KiB
    await uploads.begin({
      tenantId: tenant,
      path: "/metrics/a",
      committed: { case: "contents", value: data.subarray(0, 100) },
    });
    await rejects(files.stat({ tenantId: tenant, path: "/metrics/none" }), Code.NotFound, /no file/);
    const put = await fetch(`${ts.url}/metrics/big`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ts.superToken}` },
      body: data,
    });
    assert.equal(put.status, 201);
    await put.arrayBuffer();
    const again = await fetch(`${ts.url}/metrics/big2`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ts.superToken}` },
      body: data,
    });
    assert.equal(again.status, 201);
    await again.arrayBuffer();
    const get = await fetch(`${ts.url}/metrics/big`, {
      headers: { authorization: `Bearer ${ts.superToken}` },
    });
    assert.equal((await get.arrayBuffer()).byteLength, data.length);
    await uploads.begin({ tenantId: tenant, path: "/metrics/open" });

    const r = await fetch(`${ts.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0.0.4/);
    const body = await r.text();
    assert.equal(
      sample(body, "cacheroach_rpc_requests_total", 'method="cacheroach.v1.Uploads/Begin",code="ok"'),
      2,
    );
    assert.equal(
      sample(body, "cacheroach_rpc_requests_total", 'method="cacheroach.v1.Files/Stat",code="not_found"'),
      1,
    );
    assert.equal(sample(body, "cacheroach_http_requests_total", 'route="file",method="PUT",status="201"'), 2);
    assert.equal(sample(body, "cacheroach_http_requests_total", 'route="file",method="GET",status="200"'), 1);
    assert.ok(
      (sample(body, "cacheroach_chunk_bytes_written_total") ?? 0) >= data.length,
      "new chunks counted",
    );
    assert.ok(
      (sample(body, "cacheroach_dedup_chunks_skipped_total") ?? 0) >= 3,
      "the second PUT stored nothing new",
    );
    assert.ok((sample(body, "cacheroach_network_received_bytes_total") ?? 0) >= 2 * data.length, "bytes in");
    assert.ok((sample(body, "cacheroach_network_sent_bytes_total") ?? 0) >= data.length, "bytes out");
    assert.ok((sample(body, "cacheroach_db_query_duration_seconds_count", 'outcome="ok"') ?? 0) > 5);
    assert.equal(sample(body, "cacheroach_uploads_open"), 1);
    assert.ok(sample(body, "cacheroach_db_pool_connections", 'pool="main",state="idle"') !== undefined);
    assert.ok(!body.includes("/metrics/big"), "no paths in labels");
    assert.ok(!body.includes(tenant), "no tenant ids in labels");
  });

  test("the scrape passes promtool check metrics", async (t) => {
    if (!needPromtool(t)) return;
    const body = await (await fetch(`${ts.url}/metrics`)).text();
    assert.equal(promtoolProblems(body), "");
  });

  test("every metric the Grafana dashboard queries is one the server exports", async () => {
    const body = await (await fetch(ts.server.metricsUrl)).text();
    const exported = exportedNames(body);
    const queried = await dashboardNames();
    assert.ok(queried.size >= 15, `the dashboard queries ${queried.size} metrics`);
    assert.deepEqual(
      [...queried].filter((n) => !exported.has(n)),
      [],
    );
  });
});

test("metrics-bind serves /metrics on its own port only", async () => {
  const ts = await startTestServer({ metricsBind: "127.0.0.1:0" });
  try {
    assert.notEqual(ts.server.metricsUrl, `${ts.url}/metrics`);
    const r = await fetch(ts.server.metricsUrl);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /cacheroach_build_info/);
    const other = await fetch(ts.server.metricsUrl.replace("/metrics", "/other"));
    assert.equal(other.status, 404);
    await other.arrayBuffer();
    // On the main port /metrics is an ordinary path now: no such file.
    const main = await fetch(`${ts.url}/metrics`);
    assert.equal(main.status, 404);
    assert.doesNotMatch(await main.text(), /cacheroach_build_info/);
  } finally {
    await ts.close();
  }
});
