/**
 * Lengths and contents come from the server, never from the client: Uploads.Append takes chunk
 * lengths from the stored chunks (a claimed length that differs is refused), and content that is
 * damaged in the database (a chunk missing or shorter than its rope says) is reported as such: a
 * ReadMany item error (never the whole batch), a clear 5xx over HTTP, DATA_LOSS over Files.Read.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chunkHash, contentHash, RopeHasher } from "@cacheroach/core";
import { Files, Tenants, Uploads, VHosts } from "@cacheroach/proto";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

const CHUNK = 64 * 1024;
let ts: TestServer;
let sql: pg.Client;
let tenant: string;
let uploads: ReturnType<typeof ts.client<typeof Uploads>>;
let files: ReturnType<typeof ts.client<typeof Files>>;

async function count(table: string, where = "true", params: unknown[] = []): Promise<number> {
  const r = await sql.query(`SELECT count(*)::INT8 AS n FROM ${table} WHERE ${where}`, params);
  return Number(r.rows[0].n);
}

/** Everything an upload could have written: its chunk list, ropes and file versions. */
async function snapshot() {
  return {
    uploadChunks: await count("upload_chunks"),
    ropes: await count("ropes"),
    versions: await count("file_versions"),
  };
}

/** Writes a file of any size through Begin → Transfer* → Commit. */
async function put(path: string, data: Buffer) {
  const b = await uploads.begin({ tenantId: tenant, path });
  let state = b.state;
  for (let off = 0; off < data.length; off += b.maxTransferSize) {
    state = (await uploads.transfer({ state, data: data.subarray(off, off + b.maxTransferSize) })).state;
  }
  return (await uploads.commit({ state })).file!;
}

async function readAll(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of files.read({ tenantId: tenant, path })) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

/** GET over plain HTTP with the super token (the tenant is the vhost of 127.0.0.1). */
function get(path: string, headers: Record<string, string> = {}) {
  return fetch(`${ts.url}${path}`, { headers: { authorization: `Bearer ${ts.superToken}`, ...headers } });
}

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK });
  sql = new pg.Client({ connectionString: ts.databaseUrl });
  await sql.connect();
  uploads = ts.client(Uploads, ts.superToken);
  files = ts.client(Files, ts.superToken);
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "integrity" } })).tenant!.id;
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
});
after(async () => {
  await sql?.end();
  await ts?.close();
});

describe("Uploads.Append takes lengths from the stored chunks", () => {
  test("a length that differs from the stored chunk's is refused and appends nothing", async () => {
    const tiny = Buffer.from("four");
    const full = randomBytes(CHUNK);
    const b = await uploads.begin({ tenantId: tenant, path: "/lie/a" });
    await uploads.putChunks({
      state: b.state,
      chunks: [
        { hash: chunkHash(tiny), data: tiny },
        { hash: chunkHash(full), data: full },
      ],
    });
    const before = await snapshot();
    const lies = [
      // A 4-byte chunk claimed as a whole chunk (the size and hash of the file would cover
      // bytes that do not exist), as a longer short chunk, and as a shorter one.
      [{ hash: chunkHash(tiny), length: CHUNK }],
      [{ hash: chunkHash(tiny), length: 5 }],
      [{ hash: chunkHash(tiny), length: 2 }],
      // A whole chunk claimed short, as the last reference.
      [{ hash: chunkHash(full), length: CHUNK - 1 }],
      // One honest reference and one lie: nothing of the call is appended.
      [
        { hash: chunkHash(full), length: CHUNK },
        { hash: chunkHash(tiny), length: 3 },
      ],
    ];
    for (const chunks of lies) {
      await rejects(
        uploads.append({ state: b.state, chunks }),
        Code.InvalidArgument,
        /chunk at offset \d+ is \d+ bytes, not the \d+ the request says; nothing was appended/,
      );
      assert.deepEqual(await snapshot(), before, JSON.stringify(chunks.map((c) => c.length)));
    }
    // A lie cannot be committed either: the state was never advanced.
    const empty = await uploads.commit({ state: b.state });
    assert.equal(empty.file!.size, 0n);
  });

  test("the honest list still appends, and the content hash covers the real bytes", async () => {
    const data = randomBytes(2 * CHUNK + 4);
    const pieces = [data.subarray(0, CHUNK), data.subarray(CHUNK, 2 * CHUNK), data.subarray(2 * CHUNK)];
    const b = await uploads.begin({ tenantId: tenant, path: "/lie/honest" });
    await uploads.putChunks({ state: b.state, chunks: pieces.map((p) => ({ hash: chunkHash(p), data: p })) });
    const a = await uploads.append({
      state: b.state,
      chunks: pieces.map((p) => ({ hash: chunkHash(p), length: p.length })),
    });
    assert.equal(a.offset, BigInt(data.length));
    // Retrying the same call is a no-op; a retry that names other chunks at those offsets is refused.
    const again = await uploads.append({
      state: b.state,
      chunks: pieces.map((p) => ({ hash: chunkHash(p), length: p.length })),
    });
    assert.equal(again.offset, a.offset);
    const other = randomBytes(CHUNK);
    await uploads.putChunks({ state: b.state, chunks: [{ hash: chunkHash(other), data: other }] });
    await rejects(
      uploads.append({ state: b.state, chunks: [{ hash: chunkHash(other), length: CHUNK }] }),
      Code.FailedPrecondition,
      /already holds different data/,
    );
    const c = await uploads.commit({ state: a.state, expectedContentHash: contentHash(data, CHUNK) });
    assert.equal(c.file!.size, BigInt(data.length));
    assert.deepEqual(await readAll("/lie/honest"), data);
  });

  test("a chunk the tenant lacks is still FailedPrecondition, and appends nothing", async () => {
    const b = await uploads.begin({ tenantId: tenant, path: "/lie/missing" });
    const before = await snapshot();
    await rejects(
      uploads.append({ state: b.state, chunks: [{ hash: randomBytes(32), length: CHUNK }] }),
      Code.FailedPrecondition,
      /not stored; send them with PutChunks first/,
    );
    assert.deepEqual(await snapshot(), before);
  });
});

/** Damages stored content in SQL the ways a database can lose it; returns the damaged paths. */
async function damage(): Promise<{ short: string; unlisted: string; lost: string; legacy: string }> {
  const paths = {
    short: "/damaged/short-chunk.bin",
    unlisted: "/damaged/unlisted-chunk.bin",
    lost: "/damaged/lost-chunk.bin",
    legacy: "/damaged/legacy-append.bin",
  };
  await uploads.putFiles({
    tenantId: tenant,
    files: [
      { path: paths.short, contents: randomBytes(2 * CHUNK + 1) },
      { path: paths.unlisted, contents: randomBytes(2 * CHUNK + 2) },
      { path: paths.lost, contents: randomBytes(CHUNK + 3) },
    ],
  });
  const ropeOf = async (path: string) =>
    Buffer.from((await files.stat({ tenantId: tenant, path })).file!.contentHash);
  // A chunk shorter than its rope row says.
  await sql.query(
    `UPDATE chunks SET data = substring(data FROM 1 FOR 4)
     WHERE tenant_id = $1 AND hash = (SELECT chunk_hash FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = $3)`,
    [tenant, await ropeOf(paths.short), CHUNK],
  );
  // A chunk-list row gone.
  await sql.query("DELETE FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = $3", [
    tenant,
    await ropeOf(paths.unlisted),
    CHUNK,
  ]);
  // A chunk row gone (the foreign key bypassed, as a damaged database would).
  const lost = await sql.query(
    "SELECT chunk_hash FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = 0",
    [tenant, await ropeOf(paths.lost)],
  );
  await sql.query("BEGIN");
  await sql.query("SET LOCAL session_replication_role = replica");
  await sql.query("DELETE FROM chunks WHERE tenant_id = $1 AND hash = $2", [tenant, lost.rows[0].chunk_hash]);
  await sql.query("COMMIT");
  // What the old Append wrote: a 4-byte chunk listed as a whole chunk, rope and file built on it.
  const tiny = Buffer.from("tiny");
  await sql.query("INSERT INTO chunks (tenant_id, hash, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [
    tenant,
    chunkHash(tiny),
    tiny,
  ]);
  const rope = new RopeHasher().add(chunkHash(tiny), CHUNK).digest();
  await sql.query(
    "INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) VALUES ($1, $2, 0, $3, $4)",
    [tenant, rope, chunkHash(tiny), CHUNK],
  );
  await sql.query(
    "INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size) VALUES ($1, $2, $3, 1, $4)",
    [tenant, rope, CHUNK, CHUNK],
  );
  for (const table of ["file_versions", "files"]) {
    await sql.query(
      `INSERT INTO ${table} (tenant_id, path, version, rope_hash, size, chunk_size, ctime, mtime)
       VALUES ($1, $2, 1, $3, $4, $5, now(), now())`,
      [tenant, Buffer.from(paths.legacy), rope, CHUNK, CHUNK],
    );
  }
  return paths;
}

describe("damaged content is reported, never served as something else", () => {
  let paths: Awaited<ReturnType<typeof damage>>;
  const good = "/damaged/good.txt";
  before(async () => {
    await uploads.putFiles({ tenantId: tenant, files: [{ path: good, contents: Buffer.from("fine") }] });
    paths = await damage();
  });

  const transports = () => {
    const auth: Interceptor = (next) => (r) => {
      r.header.set("authorization", `Bearer ${ts.superToken}`);
      return next(r);
    };
    const common = { baseUrl: ts.url, interceptors: [auth], acceptCompression: [] };
    return {
      "connect binary": createConnectTransport({ ...common, httpVersion: "1.1", useBinaryFormat: true }),
      "connect JSON": createConnectTransport({ ...common, httpVersion: "1.1" }),
      grpc: createGrpcTransport(common),
      "grpc-web": createGrpcWebTransport({ ...common, httpVersion: "1.1" }),
    };
  };

  test("ReadMany: each damaged file is its own item error; the rest of the batch is answered", async () => {
    const all = [good, paths.short, "/damaged/none", paths.unlisted, paths.lost, paths.legacy];
    for (const [name, transport] of Object.entries(transports())) {
      const r = await createClient(Files, transport).readMany({ tenantId: tenant, paths: all });
      const got = r.results.map((x) => (x.error ? x.error.code : x.contentsIncluded ? "contents" : "meta"));
      assert.deepEqual(
        got,
        ["contents", "data_loss", "not_found", "data_loss", "data_loss", "data_loss"],
        name,
      );
      assert.equal(Buffer.from(r.results[0]!.contents).toString(), "fine", name);
      for (const i of [1, 3, 4, 5]) {
        assert.match(r.results[i]!.error!.message, new RegExp(`^${all[i]}: content is damaged`), name);
      }
    }
  });

  test("ReadMany: damaged files read in the second pass (over the inline budget) are item errors too", async () => {
    // 17 paths: each path's inline share (16 MiB / 17) is below these files' sizes, so their
    // contents come from the second read.
    const big = "/damaged/big-good.bin";
    const bigData = randomBytes(1000 * 1024);
    const bigBad = "/damaged/big-short.bin";
    await put(big, bigData);
    await put(bigBad, randomBytes(1000 * 1024));
    const bad = Buffer.from((await files.stat({ tenantId: tenant, path: bigBad })).file!.contentHash);
    await sql.query(
      `UPDATE chunks SET data = substring(data FROM 1 FOR 9)
       WHERE tenant_id = $1 AND hash = (SELECT chunk_hash FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off = $3)`,
      [tenant, bad, 3 * CHUNK],
    );
    const fillers = Array.from({ length: 15 }, (_, i) => `/damaged/none-${i}`);
    const r = await files.readMany({
      tenantId: tenant,
      paths: [big, bigBad, ...fillers],
      maxSize: 2n << 20n,
    });
    assert.ok(r.results[0]!.contentsIncluded);
    assert.ok(Buffer.from(r.results[0]!.contents).equals(bigData));
    assert.equal(r.results[1]!.error?.code, "data_loss");
    assert.match(r.results[1]!.error!.message, /^\/damaged\/big-short\.bin: content is damaged/);
    assert.ok(r.results.slice(2).every((x) => x.error?.code === "not_found"));
  });

  test("HTTP GET and HEAD: a clear 500 before any byte, never an empty or short 200", async () => {
    assert.equal(await (await get(good)).text(), "fine");
    for (const path of Object.values(paths)) {
      for (const init of [{}, { range: "bytes=0-0" }] as Record<string, string>[]) {
        const res = await get(path, init);
        const body = await res.text();
        assert.equal(res.status, 500, `${path} ${JSON.stringify(init)}: ${body}`);
        assert.match(body, /content is damaged/);
      }
      const head = await fetch(`${ts.url}${path}`, {
        method: "HEAD",
        headers: { authorization: `Bearer ${ts.superToken}` },
      });
      assert.equal(head.status, 500, path);
    }
  });

  test("Files.Read and Files.Chunks: DATA_LOSS before any message", async () => {
    for (const path of Object.values(paths)) {
      const messages: unknown[] = [];
      const read = async () => {
        for await (const m of files.read({ tenantId: tenant, path })) messages.push(m);
      };
      await rejects(read(), Code.DataLoss, /content is damaged/);
      assert.equal(messages.length, 0, path);
      await rejects(files.chunks({ tenantId: tenant, path }), Code.DataLoss, /content is damaged/);
    }
    assert.equal((await readAll(good)).toString(), "fine");
  });
});
