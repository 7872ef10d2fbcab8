/**
 * The integrity scrub (Scrub.Run, lifecycle/scrub.ts) and the read path's hash check: a byte
 * flipped in a chunk row is named by the scrub with the files (path, version) it breaks, and a GET,
 * Files.Read or Files.ReadMany of such a file fails loudly (never a complete 200 of wrong bytes);
 * a deleted chunk row or chunk-list row is reported; a clean tenant reports nothing; only super
 * sessions may scrub; the scheduled scrub runs, exports its metrics and stops with the server.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  Files,
  Scrub,
  type ScrubEvent,
  ScrubProblemKind,
  SessionSchema,
  Tenants,
  Tokens,
  Uploads,
  VHosts,
} from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

const CHUNK = 64 * 1024;
let ts: TestServer;
let sql: pg.Client;

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK });
  sql = new pg.Client({ connectionString: ts.databaseUrl });
  await sql.connect();
});
after(async () => {
  await sql?.end();
  await ts?.close();
});

async function newTenant(label: string): Promise<string> {
  return (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label } })).tenant!.id;
}

/** Writes a whole file of any size (Begin → Transfer* → Commit). */
async function put(tenantId: string, path: string, data: Buffer): Promise<void> {
  const uploads = ts.client(Uploads, ts.superToken);
  const b = await uploads.begin({ tenantId, path });
  let state = b.state;
  for (let off = 0; off < data.length; off += b.maxTransferSize) {
    state = (await uploads.transfer({ state, data: data.subarray(off, off + b.maxTransferSize) })).state;
  }
  await uploads.commit({ state });
}

/** Every event of a scrub, as the super session. */
async function scrub(req: { tenantId?: string; maxBytesPerSecond?: bigint } = {}, token = ts.superToken) {
  const events: ScrubEvent[] = [];
  for await (const e of ts.client(Scrub, token).run(req)) events.push(e);
  const problems = events.flatMap((e) => (e.kind.case === "problem" ? [e.kind.value] : []));
  const done = events.flatMap((e) => (e.kind.case === "tenantDone" ? [e.kind.value] : []));
  return { events, problems, done };
}

/** The hash of the chunk at `offset` of the file's content. */
async function chunkAt(tenantId: string, path: string, offset: number): Promise<Buffer> {
  const rope = (await ts.client(Files, ts.superToken).stat({ tenantId, path })).file!.contentHash;
  const r = await sql.query(
    "SELECT chunk_hash FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = $3",
    [tenantId, Buffer.from(rope), offset],
  );
  return r.rows[0].chunk_hash;
}

/** Flips one byte of a stored chunk, in SQL, as bit rot would. */
async function flipByte(tenantId: string, hash: Buffer, at = 100): Promise<void> {
  const r = await sql.query(
    "UPDATE chunks SET data = set_byte(data, $3, (get_byte(data, $3) + 1) % 256) WHERE tenant_id = $1 AND hash = $2",
    [tenantId, hash, at],
  );
  assert.equal(r.rowCount, 1);
}

/** GET as the super session through a vhost mapped to the tenant. */
async function get(tenantId: string, path: string) {
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId } });
  return fetch(`${ts.url}${path}`, { headers: { authorization: `Bearer ${ts.superToken}` } });
}

describe("a clean tenant", () => {
  test("reports nothing, with what it checked", async () => {
    const t = await newTenant("clean");
    await put(t, "/a.bin", randomBytes(3 * CHUNK + 5));
    await put(t, "/b.txt", Buffer.from("small"));
    await put(t, "/empty", Buffer.alloc(0));
    const r = await scrub({ tenantId: t });
    assert.deepEqual(r.problems, []);
    assert.equal(r.done.length, 1);
    const s = r.done[0]!;
    assert.equal(s.tenantId, t);
    assert.equal(s.chunksChecked, 5n);
    assert.equal(s.bytesChecked, BigInt(3 * CHUNK + 5 + 5));
    assert.equal(s.ropesChecked, 3n);
    assert.equal(s.problems, 0n);
  });
});

describe("a flipped byte", () => {
  let t: string;
  const big = randomBytes(3 * CHUNK);
  before(async () => {
    t = await newTenant("bit rot");
    const shared = randomBytes(CHUNK + 10);
    await put(t, "/docs/report.bin", shared); // version 1: the damaged content
    await put(t, "/docs/report.bin", randomBytes(100)); // version 2: other content, live
    await put(t, "/copy/report.bin", shared); // the same content, live
    await put(t, "/big.bin", big);
    await flipByte(t, await chunkAt(t, "/copy/report.bin", 0));
    await flipByte(t, await chunkAt(t, "/big.bin", 2 * CHUNK));
  });

  test("scrub names every file version the damaged chunk breaks", async () => {
    const r = await scrub({ tenantId: t });
    const corrupt = r.problems.filter((p) => p.kind === ScrubProblemKind.CHUNK_CORRUPT);
    assert.equal(corrupt.length, 2);
    const files = corrupt.map((p) => p.files.map((f) => `${f.path}@${f.version}${f.live ? " live" : ""}`));
    assert.deepEqual(files.sort(), [["/big.bin@1 live"], ["/copy/report.bin@1 live", "/docs/report.bin@1"]]);
    const bigProblem = corrupt.find((p) => p.files[0]!.path === "/big.bin")!;
    assert.equal(bigProblem.offset, BigInt(2 * CHUNK));
    assert.match(bigProblem.detail, new RegExp(`offset ${2 * CHUNK} .* does not match its hash`));
    assert.equal(r.problems.length, 2, "the ropes themselves are intact");
    assert.equal(r.done[0]!.problems, 2n);
  });

  test("HTTP GET fails loudly: a 500 with ERR_DATA_LOSS before any byte, or a cut body", async () => {
    for (let i = 0; i < 2; i++) {
      // Twice: the damaged bytes must not have been cached by the first read.
      const res = await get(t, "/copy/report.bin");
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("cacheroach-error-code"), "ERR_DATA_LOSS");
      assert.match(await res.text(), /does not match its hash/);
    }
    // The damaged chunk is the third: the first is sent before it is read, so the body is cut.
    const res = await get(t, "/big.bin");
    if (res.status === 200) {
      await assert.rejects(res.arrayBuffer(), "a 200 whose body ends early, never a complete one");
    } else {
      assert.equal(res.status, 500);
    }
    // An older version that is not damaged still reads.
    const v2 = await get(t, "/docs/report.bin");
    assert.equal(v2.status, 200);
    assert.equal((await v2.arrayBuffer()).byteLength, 100);
  });

  test("Files.Read is DATA_LOSS, and Files.ReadMany an item error", async () => {
    const files = ts.client(Files, ts.superToken);
    for (const path of ["/copy/report.bin", "/big.bin"]) {
      const read = async () => {
        for await (const _ of files.read({ tenantId: t, path })) {
          // drained
        }
      };
      await rejects(
        read(),
        Code.DataLoss,
        /content is damaged: the chunk at offset \d+ does not match its hash/,
      );
    }
    await rejects(
      (async () => {
        for await (const _ of files.read({ tenantId: t, path: "/docs/report.bin", version: 1n })) {
          // drained
        }
      })(),
      Code.DataLoss,
      /does not match its hash/,
    );
    const many = await files.readMany({
      tenantId: t,
      paths: ["/copy/report.bin", "/big.bin", "/docs/report.bin"],
    });
    assert.deepEqual(
      many.results.map((x) => x.error?.code ?? "ok"),
      ["data_loss", "data_loss", "ok"],
    );
  });
});

describe("missing chunk-list entries and chunks", () => {
  test("a deleted chunk row is reported as missing, with the file it breaks", async () => {
    const t = await newTenant("lost chunk");
    await put(t, "/lost.bin", randomBytes(2 * CHUNK + 1));
    const hash = await chunkAt(t, "/lost.bin", CHUNK);
    // The foreign key from rope_chunks bypassed, as a damaged database would.
    await sql.query("BEGIN");
    await sql.query("SET LOCAL session_replication_role = replica");
    await sql.query("DELETE FROM chunks WHERE tenant_id = $1 AND hash = $2", [t, hash]);
    await sql.query("COMMIT");
    const r = await scrub({ tenantId: t });
    assert.equal(r.problems.length, 1);
    const p = r.problems[0]!;
    assert.equal(p.kind, ScrubProblemKind.CHUNK_MISSING);
    assert.deepEqual(Buffer.from(p.chunkHash), hash);
    assert.equal(p.offset, BigInt(CHUNK));
    assert.match(p.detail, /is missing/);
    assert.deepEqual(
      p.files.map((f) => [f.path, f.version, f.live]),
      [["/lost.bin", 1n, true]],
    );
    assert.equal(r.done[0]!.chunksChecked, 2n);
  });

  test("a deleted chunk-list row breaks the rope: its key no longer matches", async () => {
    const t = await newTenant("lost list row");
    await put(t, "/gap.bin", randomBytes(3 * CHUNK));
    await put(t, "/gap.bin", Buffer.from("newer"));
    const rope = (await ts.client(Files, ts.superToken).stat({ tenantId: t, path: "/gap.bin", version: 1n }))
      .file!.contentHash;
    await sql.query("DELETE FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = $3", [
      t,
      Buffer.from(rope),
      CHUNK,
    ]);
    const r = await scrub({ tenantId: t });
    assert.equal(r.problems.length, 1);
    const p = r.problems[0]!;
    assert.equal(p.kind, ScrubProblemKind.ROPE_MISMATCH);
    assert.deepEqual(Buffer.from(p.contentHash), Buffer.from(rope));
    assert.match(p.detail, new RegExp(`no chunk at offset ${CHUNK}`));
    assert.deepEqual(
      p.files.map((f) => [f.path, f.version, f.live]),
      [["/gap.bin", 1n, false]],
    );
  });
});

describe("who may scrub, and what", () => {
  test("every tenant when none is named", async () => {
    const r = await scrub();
    const tenants = new Set(r.done.map((d) => d.tenantId));
    assert.ok(tenants.has("0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a"), "the scratchpad");
    assert.ok(tenants.size >= 5);
    assert.ok(r.problems.length >= 4);
  });

  test("a bad tenant id is invalid_argument, an unknown one not_found, a negative rate invalid", async () => {
    await rejects(scrub({ tenantId: "nope" }), Code.InvalidArgument, /tenant_id "nope" is not a UUID/);
    await rejects(
      scrub({ tenantId: "6f1c0000-0000-4000-8000-000000000000" }),
      Code.NotFound,
      /tenant 6f1c0000-0000-4000-8000-000000000000 does not exist/,
    );
    await rejects(scrub({ maxBytesPerSecond: -1n }), Code.InvalidArgument, /must not be negative/);
  });

  test("a session that is not super is refused", async () => {
    const t = await newTenant("not super");
    const issued = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
        scope: { kind: { case: "onLocation", value: { tenantId: t, path: "/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 600_000)),
      }),
    });
    await rejects(scrub({ tenantId: t }, issued.token!.jwt), Code.PermissionDenied, /needs a super session/);
    await rejects(scrub({ tenantId: t }, ""), Code.Unauthenticated, /not logged in/);
  });

  test("the metrics count what scrubs checked and found", async () => {
    const text = await (await fetch(`${ts.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    assert.ok(value("cacheroach_scrub_chunks_total") > 0);
    assert.ok(value("cacheroach_scrub_bytes_total") > 0);
    assert.ok(value("cacheroach_scrub_ropes_total") > 0);
    assert.ok(value("cacheroach_scrub_problems_total") >= 4);
    assert.ok(value("cacheroach_chunk_corrupt_reads_total") >= 1);
    // The run over every tenant above was complete.
    assert.ok(value("cacheroach_scrub_last_run_timestamp_seconds") > 0);
    assert.ok(value("cacheroach_scrub_last_run_problems") >= 4);
  });
});

describe("shutdown", () => {
  test("an on-demand scrub in progress ends UNAVAILABLE at once, not after the grace period", async () => {
    const s = await startTestServer({ chunkSize: CHUNK, gracePeriodMs: 60_000 });
    let closed: Promise<void> | undefined;
    try {
      const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";
      await s.client(Uploads, s.superToken).begin({
        tenantId: scratch,
        path: "/x.bin",
        committed: { case: "contents", value: randomBytes(5000) },
      });
      // One byte a second: after its first chunk the scrub rests for over an hour.
      const run = (async () => {
        for await (const _ of s.client(Scrub, s.superToken).run({ maxBytesPerSecond: 1n })) {
          // nothing comes before the server stops
        }
      })();
      run.catch(() => {});
      const checked = async () => {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        return Number(/^cacheroach_scrub_chunks_total (\S+)$/m.exec(text)?.[1] ?? 0);
      };
      while ((await checked()) === 0) await new Promise((r) => setTimeout(r, 50));
      closed = s.close();
      await rejects(run, Code.Unavailable, /scrub stopped: the server is shutting down; run it again/);
      await closed;
    } finally {
      await (closed ?? s.close());
    }
  });
});

describe("the scheduled scrub", () => {
  test("runs every interval, exports its last run, and stops with the server", async () => {
    const s = await startTestServer({ chunkSize: CHUNK, scrubIntervalMs: 1000 });
    try {
      const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";
      await s.client(Uploads, s.superToken).begin({
        tenantId: scratch,
        path: "/x.bin",
        committed: { case: "contents", value: randomBytes(1000) },
      });
      const lastRun = async () => {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        return Number(/^cacheroach_scrub_last_run_timestamp_seconds (\S+)$/m.exec(text)?.[1]);
      };
      const deadline = Date.now() + 20_000;
      while ((await lastRun()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.ok((await lastRun()) > 0, "a scheduled run completed");
    } finally {
      await s.close();
    }
  });
});
