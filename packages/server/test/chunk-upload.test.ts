/**
 * POST /_/v0/uploads/chunks: PutChunks as a streamed body of chunk frames (http/chunk-upload.ts,
 * uploads/chunk-stream.ts). What it stores is exactly what the frames carry, verified, counted in
 * the tenant's usage and within its quota; bad bodies, states and sessions are refused with a
 * clear 4xx and store nothing of the refused chunk.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { chunkHash, contentHash } from "@cacheroach/core";
import { Files, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import pg from "pg";
import { CHUNK_UPLOAD_ROUTE, CHUNK_UPLOAD_TYPE, UPLOAD_STATE_HEADER } from "../src/http/chunk-upload.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import { BlockPool } from "../src/uploads/block-pool.js";
import { ChunkFrameReader } from "../src/uploads/chunk-frames.js";

const CHUNK = 64 * 1024;
/** The server's max_transfer_size at this chunk size (8 chunks), so a batch is 8 chunks. */
const TRANSFER = 8 * CHUNK;
let ts: TestServer;
let db: pg.Client;
let uploads: ReturnType<typeof ts.client<typeof Uploads>>;

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  uploads = ts.client(Uploads, ts.superToken);
});
after(async () => {
  await db?.end();
  await ts?.close();
});

async function newTenant(label: string, policy?: Record<string, bigint>): Promise<string> {
  const tenants = ts.client(Tenants, ts.superToken);
  return (await tenants.ensure({ tenant: { label, version: 0n, policy } })).tenant!.id;
}

/** What tenant_usage records for a tenant, checked against the chunks it really holds. */
async function usage(tenantId: string): Promise<{ chunks: number; bytes: number }> {
  const u = await db.query(
    "SELECT coalesce(sum(chunks), 0)::INT8 AS c, coalesce(sum(bytes), 0)::INT8 AS b FROM tenant_usage WHERE tenant_id = $1",
    [tenantId],
  );
  const real = await db.query(
    "SELECT count(*)::INT8 AS c, coalesce(sum(length(data)), 0)::INT8 AS b FROM chunks WHERE tenant_id = $1",
    [tenantId],
  );
  const recorded = { chunks: Number(u.rows[0].c), bytes: Number(u.rows[0].b) };
  assert.deepEqual(recorded, { chunks: Number(real.rows[0].c), bytes: Number(real.rows[0].b) });
  return recorded;
}

/** The stored bytes of a chunk, or undefined. */
async function stored(tenantId: string, hash: Buffer): Promise<Buffer | undefined> {
  const r = await db.query("SELECT data FROM chunks WHERE tenant_id = $1 AND hash = $2", [tenantId, hash]);
  return r.rows[0]?.data as Buffer | undefined;
}

/** `data` cut into chunks, each with its hash. */
function chunksOf(data: Buffer): { hash: Buffer; data: Buffer }[] {
  const out = [];
  for (let off = 0; off < data.length; off += CHUNK) {
    const piece = data.subarray(off, off + CHUNK);
    out.push({ hash: chunkHash(piece), data: piece });
  }
  return out;
}

/** A body of frames: each chunk's hash, its length (uint32 BE), its bytes. */
function frames(chunks: readonly { hash: Buffer; data: Buffer; length?: number }[]): Buffer {
  return Buffer.concat(
    chunks.flatMap((c) => {
      const head = Buffer.alloc(36);
      c.hash.copy(head);
      head.writeUInt32BE(c.length ?? c.data.length, 32);
      return [head, c.data];
    }),
  );
}

function post(
  state: Uint8Array | string,
  body: Buffer,
  opts: { token?: string | null; type?: string; method?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    "content-type": opts.type ?? CHUNK_UPLOAD_TYPE,
    [UPLOAD_STATE_HEADER]: typeof state === "string" ? state : Buffer.from(state).toString("base64"),
  };
  const token = opts.token === undefined ? ts.superToken : opts.token;
  if (token) headers["authorization"] = `Bearer ${token}`;
  return fetch(`${ts.url}${CHUNK_UPLOAD_ROUTE}`, {
    method: opts.method ?? "POST",
    headers,
    ...(opts.method === "GET" ? {} : { body }),
  });
}

/** A refused request: its status, stable code and a message matching `pattern`. */
async function refused(res: Response, status: number, code: string, pattern: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get("cacheroach-error-code"), code, text);
  assert.match(text, pattern);
}

async function begin(tenantId: string, path = "/f.bin") {
  return uploads.begin({ tenantId, path });
}

/** Appends every chunk of `data` and commits; the file's content as read back. */
async function appendAndCommit(state: Uint8Array, data: Buffer): Promise<Buffer> {
  const a = await uploads.append({
    state,
    chunks: chunksOf(data).map((c) => ({ hash: c.hash, length: c.data.length })),
  });
  const file = (await uploads.commit({ state: a.state, expectedContentHash: contentHash(data, CHUNK) }))
    .file!;
  const parts: Buffer[] = [];
  for await (const m of ts.client(Files, ts.superToken).read({ tenantId: file.tenantId, path: file.path })) {
    parts.push(Buffer.from(m.data));
  }
  return Buffer.concat(parts);
}

describe("chunk upload bodies", () => {
  test("store exactly the chunks framed, counted in the usage; a repeated body stores nothing again", async () => {
    const t = await newTenant("bodies");
    const data = randomBytes(20 * CHUNK + 1234); // three batches, the last chunk short
    const chunks = chunksOf(data);
    const b = await begin(t);
    const res = await post(b.state, frames(chunks));
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { chunks: 21, bytes: data.length, stored: 21 });
    assert.deepEqual(await usage(t), { chunks: 21, bytes: data.length });
    for (const c of chunks) assert.deepEqual(await stored(t, c.hash), c.data);

    const again = await post(b.state, frames(chunks));
    assert.deepEqual(await again.json(), { chunks: 21, bytes: data.length, stored: 0 });
    assert.deepEqual(await usage(t), { chunks: 21, bytes: data.length });
    assert.deepEqual(await appendAndCommit(b.state, data), data);
  });

  test("an empty body stores nothing and says so", async () => {
    const t = await newTenant("empty body");
    const res = await post((await begin(t)).state, Buffer.alloc(0));
    assert.deepEqual(await res.json(), { chunks: 0, bytes: 0, stored: 0 });
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });
  });

  test("a chunk whose bytes do not match its hash is refused and not stored", async () => {
    const t = await newTenant("mismatch");
    const chunks = chunksOf(randomBytes(12 * CHUNK));
    const b = await begin(t);
    const first = chunks.map((c, i) => (i === 0 ? { ...c, hash: chunkHash(Buffer.from("other")) } : c));
    await refused(await post(b.state, frames(first)), 400, "ERR_BAD_REQUEST", /does not match its data/);
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 }, "nothing stored");

    // In the second batch: the first batch's verified chunks may be stored, the bad one never.
    const bad = { ...chunks[10]!, data: Buffer.from(chunks[10]!.data) };
    bad.data[5]! ^= 1;
    const later = chunks.map((c, i) => (i === 10 ? bad : c));
    await refused(await post(b.state, frames(later)), 400, "ERR_BAD_REQUEST", /does not match its data/);
    assert.equal(await stored(t, chunks[10]!.hash), undefined);
    assert.equal(await stored(t, chunkHash(bad.data)), undefined);
    const u = await usage(t);
    assert.ok(u.chunks <= 8, `at most the first batch is stored, not ${u.chunks} chunks`);
  });

  test("a body cut short inside a chunk stores nothing of it, and sending it again succeeds", async () => {
    const t = await newTenant("cut short");
    const data = randomBytes(6 * CHUNK);
    const body = frames(chunksOf(data));
    const b = await begin(t);
    const url = new URL(ts.url);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, "connect");
    const answer: Buffer[] = [];
    socket.on("data", (d: Buffer) => answer.push(d));
    socket.on("error", () => {});
    const head =
      `POST ${CHUNK_UPLOAD_ROUTE} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${ts.superToken}\r\n` +
      `content-type: ${CHUNK_UPLOAD_TYPE}\r\ncontent-length: ${body.length}\r\n` +
      `${UPLOAD_STATE_HEADER}: ${Buffer.from(b.state).toString("base64")}\r\n\r\n`;
    socket.write(head);
    socket.write(body.subarray(0, 3 * (36 + CHUNK) + 36 + 1000)); // into the fourth chunk
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await once(socket, "close");
    // The server gave up on the body; let it finish whatever it was doing.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(Buffer.concat(answer).length, 0, "no answer to a body that never ended");
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 }, "nothing stored");

    const res = await post(b.state, body);
    assert.deepEqual(await res.json(), { chunks: 6, bytes: data.length, stored: 6 });
    assert.deepEqual(await appendAndCommit(b.state, data), data);
  });

  test("malformed framing is refused with 400 and stores nothing", async () => {
    const t = await newTenant("framing");
    const chunks = chunksOf(randomBytes(3 * CHUNK));
    const b = await begin(t);
    const whole = frames(chunks);
    await refused(
      await post(b.state, whole.subarray(0, whole.length - 10)),
      400,
      "ERR_BAD_REQUEST",
      /ends inside a chunk frame \(after 2 whole chunks\)/,
    );
    await refused(
      await post(b.state, whole.subarray(0, 36 + CHUNK + 20)),
      400,
      "ERR_BAD_REQUEST",
      /ends inside a chunk frame/,
    );
    await refused(
      await post(b.state, frames([{ ...chunks[0]!, data: Buffer.alloc(0) }])),
      400,
      "ERR_BAD_REQUEST",
      /declares 0 bytes; chunks are 1\.\.65536 bytes/,
    );
    await refused(
      await post(b.state, frames([{ ...chunks[0]!, length: CHUNK + 1 }])),
      400,
      "ERR_BAD_REQUEST",
      /declares 65537 bytes/,
    );
    const short = Buffer.from("short");
    await refused(
      await post(b.state, frames([{ hash: chunkHash(short), data: short }, chunks[0]!])),
      400,
      "ERR_BAD_REQUEST",
      /only the last chunk of a body may be short/,
    );
    await refused(
      await post(b.state, whole, { type: "application/octet-stream" }),
      400,
      "ERR_BAD_REQUEST",
      /Content-Type application\/vnd\.cacheroach\.chunks/,
    );
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });
  });

  test("a body over the limit is refused with 413 before it is read", async () => {
    const t = await newTenant("too large");
    const b = await begin(t);
    const limit = 16 * TRANSFER;
    const chunks = chunksOf(randomBytes(limit + CHUNK));
    await refused(await post(b.state, frames(chunks)), 413, "ERR_TOO_LARGE", /exceeds the \d+-byte limit/);
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });
  });

  test("bad, missing, foreign and committed upload states are refused", async () => {
    const t = await newTenant("states");
    const chunks = chunksOf(randomBytes(CHUNK));
    const body = frames(chunks);
    const b = await begin(t);
    await refused(await post("", body), 400, "ERR_BAD_REQUEST", /cacheroach-upload-state header is missing/);
    await refused(await post("not base64!", body), 400, "ERR_BAD_UPLOAD_STATE", /not base64/);
    const tampered = Buffer.from(b.state);
    tampered[20]! ^= 1;
    await refused(await post(tampered, body), 400, "ERR_BAD_UPLOAD_STATE", /tampered/);
    const done = await begin(t, "/done.bin");
    await uploads.commit({ state: done.state });
    await refused(await post(done.state, body), 412, "ERR_PRECONDITION_FAILED", /already committed/);
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });
  });

  test("authorization is PutChunks': a bearer token with write on the upload's path", async () => {
    const t = await newTenant("authorization");
    const body = frames(chunksOf(randomBytes(2 * CHUNK)));
    const b = await begin(t, "/w/f.bin");
    const issue = async (caps: { read?: boolean; write?: boolean }, path: string) =>
      (
        await ts.client(Tokens, ts.superToken).issue({
          template: {
            principalId: ts.rootPrincipalId,
            capabilities: caps,
            scope: { kind: { case: "onLocation", value: { tenantId: t, path } } },
          },
        })
      ).token!.jwt;
    await refused(await post(b.state, body, { token: null }), 401, "ERR_UNAUTHENTICATED", /Bearer/);
    await refused(await post(b.state, body, { token: "nonsense" }), 401, "ERR_UNAUTHENTICATED", /./);
    const reader = await issue({ read: true }, "/*");
    await refused(await post(b.state, body, { token: reader }), 403, "ERR_PERMISSION_DENIED", /lacks write/);
    const elsewhere = await issue({ read: true, write: true }, "/other/*");
    await refused(
      await post(b.state, body, { token: elsewhere }),
      403,
      "ERR_PERMISSION_DENIED",
      /lacks write/,
    );
    await refused(await post(b.state, body, { method: "GET" }), 405, "ERR_METHOD_NOT_ALLOWED", /POST only/);
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });

    const writer = await issue({ read: true, write: true }, "/w/*");
    const ok = await post(b.state, body, { token: writer });
    assert.deepEqual(await ok.json(), { chunks: 2, bytes: 2 * CHUNK, stored: 2 });
  });

  test("the tenant's quota refuses a body that would exceed it (507), storing nothing of it", async () => {
    const t = await newTenant("quota", { quotaBytes: BigInt(4 * CHUNK) });
    const b = await begin(t);
    const chunks = chunksOf(randomBytes(6 * CHUNK));
    await refused(await post(b.state, frames(chunks)), 507, "ERR_QUOTA_EXCEEDED", /quota/);
    assert.deepEqual(await usage(t), { chunks: 0, bytes: 0 });
    const fits = await post(b.state, frames(chunks.slice(0, 4)));
    assert.deepEqual(await fits.json(), { chunks: 4, bytes: 4 * CHUNK, stored: 4 });
    assert.deepEqual(await usage(t), { chunks: 4, bytes: 4 * CHUNK });
  });
});

describe("ChunkFrameReader", () => {
  test("pieces of any size, heads split anywhere: the same chunks, in blocks that are reused", () => {
    const data = randomBytes(9 * CHUNK + 100);
    const body = frames(chunksOf(data));
    const pool = new BlockPool(4 * CHUNK, 4);
    const verify = (hash: Buffer, d: Buffer) => assert.deepEqual(chunkHash(d), hash);
    for (const sizes of [[1], [7, 36, 35, 37], [CHUNK + 36], [body.length]]) {
      const reader = new ChunkFrameReader(CHUNK, pool, verify);
      const got: Buffer[] = [];
      const blocks = new Set<Buffer>();
      const drain = (batches: { block: Buffer; chunks: { data: Buffer }[] }[]) => {
        for (const b of batches) {
          got.push(...b.chunks.map((c) => Buffer.from(c.data)));
          blocks.add(b.block);
          pool.give(b.block);
        }
      };
      for (let off = 0, i = 0; off < body.length; i++) {
        const n = sizes[i % sizes.length]!;
        reader.push(body.subarray(off, off + n));
        off += n;
        drain(reader.takeSealed());
      }
      drain(reader.finish());
      assert.deepEqual(Buffer.concat(got), data, `pieces of ${sizes.join(", ")} bytes`);
      assert.equal(reader.count, 10);
      // Pieces smaller than a block seal at most one batch each, given back before the next.
      if (Math.max(...sizes) < pool.blockBytes)
        assert.ok(blocks.size <= 2, `${blocks.size} blocks for three batches given back in turn`);
    }
  });
});
