import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { contentHash } from "@cacheroach/core";
import { Files, Tenants, Uploads } from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

const CHUNK = 64 * 1024; // smallest allowed chunk size keeps test data small
let ts: TestServer;
let db: pg.Client;
let tenant: string;
let other: string;
let uploads: ReturnType<typeof ts.client<typeof Uploads>>;
let files: ReturnType<typeof ts.client<typeof Files>>;

async function count(table: string, where = "true", params: unknown[] = []): Promise<number> {
  const r = await db.query(`SELECT count(*)::INT8 AS n FROM ${table} WHERE ${where}`, params);
  return Number(r.rows[0].n);
}

async function put(path: string, data: Buffer, tenantId = tenant) {
  const b = await uploads.begin({ tenantId, path });
  let state = b.state;
  for (let off = 0; off < data.length; off += b.maxTransferSize) {
    state = (await uploads.transfer({ state, data: data.subarray(off, off + b.maxTransferSize) })).state;
  }
  return (await uploads.commit({ state })).file!;
}

async function read(path: string, offset = 0, length = 0, version = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of files.read({
    tenantId: tenant,
    path,
    offset: BigInt(offset),
    length: BigInt(length),
    version: BigInt(version),
  })) {
    parts.push(Buffer.from(m.data));
  }
  return Buffer.concat(parts);
}

before(async () => {
  ts = await startTestServer({ chunkSize: CHUNK });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  uploads = ts.client(Uploads, ts.superToken);
  files = ts.client(Files, ts.superToken);
  const tenants = ts.client(Tenants, ts.superToken);
  tenant = (await tenants.ensure({ tenant: { label: "uploads test" } })).tenant!.id;
  other = (await tenants.ensure({ tenant: { label: "other tenant" } })).tenant!.id;
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("chunks", () => {
  test("dedup within a tenant, never across tenants", async () => {
    const data = randomBytes(3 * CHUNK + 100);
    const before = await count("chunks");
    await put("/dedup/a.bin", data);
    assert.equal(await count("chunks"), before + 4);
    await put("/dedup/b.bin", data);
    assert.equal(await count("chunks"), before + 4, "same content in the same tenant stores no new chunk");
    await put("/dedup/c.bin", data, other);
    assert.equal(await count("chunks"), before + 8, "another tenant stores its own copy");
    assert.equal(await count("chunks", "tenant_id = $1", [other]), 4);
  });
});

describe("ropes", () => {
  test("identical contents share one immutable rope; new versions never rewrite it", async () => {
    const data = randomBytes(2 * CHUNK + 7);
    const f1 = await put("/rope/x", data);
    const rowsBefore = await db.query(
      "SELECT off, chunk_hash, length FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 ORDER BY off",
      [tenant, Buffer.from(f1.contentHash)],
    );
    const f2 = await put("/rope/y", data);
    assert.deepEqual(Buffer.from(f2.contentHash), Buffer.from(f1.contentHash));
    assert.equal(
      await count("ropes", "tenant_id = $1 AND hash = $2", [tenant, Buffer.from(f1.contentHash)]),
      1,
    );
    // Overwrite /rope/x with other content; version 1 must still read back unchanged.
    const f3 = await put("/rope/x", randomBytes(CHUNK));
    assert.equal(f3.version, 2n);
    const rowsAfter = await db.query(
      "SELECT off, chunk_hash, length FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 ORDER BY off",
      [tenant, Buffer.from(f1.contentHash)],
    );
    assert.deepEqual(rowsAfter.rows, rowsBefore.rows);
    assert.deepEqual(await read("/rope/x", 0, 0, 1), data);
  });

  test("content hash is the BLAKE3 Merkle root of the chunk list", async () => {
    const data = randomBytes(CHUNK + 1);
    const f = await put("/rope/hash", data);
    assert.deepEqual(Buffer.from(f.contentHash), contentHash(data, CHUNK));
  });
});

describe("versions and preconditions", () => {
  test("versions count up and are never reused, even after delete", async () => {
    const v1 = await uploads.begin({
      tenantId: tenant,
      path: "/v/file",
      committed: { case: "contents", value: Buffer.from("one") },
    });
    assert.equal(v1.file!.version, 1n);
    const v2 = await uploads.begin({
      tenantId: tenant,
      path: "/v/file",
      committed: { case: "contents", value: Buffer.from("two") },
    });
    assert.equal(v2.file!.version, 2n);
    assert.equal((await read("/v/file", 0, 0, 1)).toString(), "one", "old versions stay readable");
    assert.equal((await files.delete({ tenantId: tenant, path: "/v/file" })).version, 2n);
    await rejects(files.delete({ tenantId: tenant, path: "/v/file" }), Code.NotFound, /no file at/);
    await rejects(files.stat({ tenantId: tenant, path: "/v/file" }), Code.NotFound, /no file at \/v\/file/);
    await rejects(read("/v/file", 0, 0, 1), Code.NotFound, /no version 1/);
    const v3 = await uploads.begin({
      tenantId: tenant,
      path: "/v/file",
      committed: { case: "empty", value: true },
    });
    assert.equal(v3.file!.version, 3n, "numbering resumes after a delete");
    assert.equal((await read("/v/file")).length, 0);
  });

  test("must-not-exist, version and content-hash conditions; a failed one writes nothing", async () => {
    const one = (value: string, precondition?: object) =>
      uploads.begin({
        tenantId: tenant,
        path: "/cas/f",
        committed: { case: "contents", value: Buffer.from(value) },
        precondition: precondition as never,
      });
    const created = await one("a", { kind: { case: "mustNotExist", value: true } });
    await rejects(
      one("b", { kind: { case: "mustNotExist", value: true } }),
      Code.FailedPrecondition,
      /already exists \(version 1\)/,
    );
    await rejects(
      one("b", { kind: { case: "version", value: 7n } }),
      Code.FailedPrecondition,
      /at version 1, not version 7/,
    );
    await rejects(
      one("b", { kind: { case: "contentHash", value: contentHash(Buffer.from("zzz"), CHUNK) } }),
      Code.FailedPrecondition,
      /not/,
    );
    await rejects(
      uploads.begin({
        tenantId: tenant,
        path: "/cas/none",
        committed: { case: "empty", value: true },
        precondition: { kind: { case: "mustExist", value: true } },
      }),
      Code.FailedPrecondition,
      /does not exist/,
    );
    const rows = await count("file_versions", "tenant_id = $1 AND path = $2", [
      tenant,
      Buffer.from("/cas/f"),
    ]);
    assert.equal(rows, 1, "failed preconditions wrote nothing");
    const ok = await one("b", { kind: { case: "contentHash", value: created.file!.contentHash } });
    assert.equal(ok.file!.version, 2n);
    const ok2 = await one("c", { kind: { case: "version", value: 2n } });
    assert.equal(ok2.file!.version, 3n);
  });

  test("a precondition at commit is checked atomically", async () => {
    const b = await uploads.begin({
      tenantId: tenant,
      path: "/cas/late",
      precondition: { kind: { case: "mustNotExist", value: true } },
    });
    const t = await uploads.transfer({ state: b.state, data: randomBytes(10) });
    await uploads.begin({ tenantId: tenant, path: "/cas/late", committed: { case: "empty", value: true } });
    await rejects(
      uploads.commit({ state: t.state, precondition: { kind: { case: "mustNotExist", value: true } } }),
      Code.FailedPrecondition,
      /already exists/,
    );
  });
});

describe("reads", () => {
  test("random access at chunk edges returns exactly the requested bytes", async () => {
    const data = randomBytes(3 * CHUNK + 5);
    await put("/read/edges", data);
    const cases: [number, number][] = [
      [0, 1],
      [CHUNK - 1, 1],
      [CHUNK - 1, 2],
      [CHUNK, 1],
      [CHUNK, CHUNK],
      [CHUNK - 3, CHUNK + 6],
      [2 * CHUNK - 1, CHUNK + 2],
      [3 * CHUNK, 5],
      [3 * CHUNK + 4, 1],
      [10, 0],
      [3 * CHUNK + 5, 0],
    ];
    for (const [off, len] of cases) {
      const want = data.subarray(off, len === 0 ? undefined : off + len);
      assert.deepEqual(await read("/read/edges", off, len), want, `offset ${off} length ${len}`);
    }
    assert.deepEqual(
      await read("/read/edges", 3 * CHUNK, 1000),
      data.subarray(3 * CHUNK),
      "length is clamped to the end",
    );
    await rejects(read("/read/edges", 3 * CHUNK + 6), Code.InvalidArgument, /outside the file/);
  });

  test("empty file", async () => {
    const r = await uploads.begin({
      tenantId: tenant,
      path: "/empty",
      committed: { case: "empty", value: true },
    });
    assert.equal(r.file!.size, 0n);
    assert.deepEqual(Buffer.from(r.file!.contentHash), contentHash(Buffer.alloc(0)));
    assert.equal((await read("/empty")).length, 0);
    const viaTransfer = await uploads.begin({ tenantId: tenant, path: "/empty2" });
    const c = await uploads.commit({ state: viaTransfer.state });
    assert.equal(c.file!.size, 0n);
  });
});

describe("upload protocol", () => {
  test("retried transfers and commits give identical results", async () => {
    const data = randomBytes(2 * CHUNK + 9);
    const b = await uploads.begin({ tenantId: tenant, path: "/retry/f" });
    const t1 = await uploads.transfer({ state: b.state, data: data.subarray(0, 2 * CHUNK) });
    const t1again = await uploads.transfer({ state: b.state, data: data.subarray(0, 2 * CHUNK) });
    assert.deepEqual(Buffer.from(t1again.state), Buffer.from(t1.state));
    const t2 = await uploads.transfer({ state: t1.state, data: data.subarray(2 * CHUNK) });
    const c1 = await uploads.commit({ state: t2.state, meta: { a: "b" } });
    const c2 = await uploads.commit({ state: t2.state, meta: { a: "b" } });
    assert.equal(c1.file!.version, 1n);
    assert.equal(c2.file!.version, 1n, "a repeated commit returns the same version");
    assert.deepEqual(c2.file!.meta, { a: "b" });
    assert.deepEqual(await read("/retry/f"), data);
  });

  test("a retry with different data at the same offset is refused", async () => {
    const b = await uploads.begin({ tenantId: tenant, path: "/retry/g" });
    await uploads.transfer({ state: b.state, data: randomBytes(CHUNK) });
    await rejects(
      uploads.transfer({ state: b.state, data: randomBytes(CHUNK) }),
      Code.FailedPrecondition,
      /already holds different data/,
    );
  });

  test("tampered, foreign and expired states are refused and store nothing", async () => {
    const b = await uploads.begin({ tenantId: tenant, path: "/state/f" });
    const chunksBefore = await count("chunks");
    const tampered = Buffer.from(b.state);
    tampered.writeUInt8(tampered.readUInt8(40) ^ 1, 40);
    await rejects(
      uploads.transfer({ state: tampered, data: randomBytes(100) }),
      Code.InvalidArgument,
      /upload state is invalid/,
    );
    await rejects(
      uploads.transfer({ state: Buffer.from(b.state).subarray(0, 20), data: randomBytes(100) }),
      Code.InvalidArgument,
      /invalid/,
    );
    await rejects(uploads.commit({ state: randomBytes(120) }), Code.InvalidArgument, /invalid/);
    // A state for another tenant, re-signed with a key the server does not know.
    const other = await startTestServer({ chunkSize: CHUNK });
    try {
      const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";
      const foreign = await other
        .client(Uploads, other.superToken)
        .begin({ tenantId: scratch, path: "/state/f" });
      await rejects(
        uploads.transfer({ state: foreign.state, data: randomBytes(100) }),
        Code.InvalidArgument,
        /invalid/,
      );
    } finally {
      await other.close();
    }
    assert.equal(await count("chunks"), chunksBefore, "nothing stored");
  });

  test("expired states are refused", async () => {
    // The shortest TTL a server accepts (the settings table's minimum), then let it pass.
    const short = await startTestServer({ chunkSize: CHUNK, uploadTtlSeconds: 1 });
    try {
      const up = short.client(Uploads, short.superToken);
      const b = await up.begin({ tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a", path: "/late" });
      await new Promise((r) => setTimeout(r, 2100));
      await rejects(
        up.transfer({ state: b.state, data: randomBytes(10) }),
        Code.FailedPrecondition,
        /expired/,
      );
    } finally {
      await short.close();
    }
  });

  test("oversize, empty and post-final transfers are refused", async () => {
    const b = await uploads.begin({ tenantId: tenant, path: "/big/f" });
    const before = await count("chunks");
    await rejects(
      uploads.transfer({ state: b.state, data: randomBytes(b.maxTransferSize + 1) }),
      Code.ResourceExhausted,
      /exceeds max_transfer_size/,
    );
    await rejects(
      uploads.transfer({ state: b.state, data: Buffer.alloc(0) }),
      Code.InvalidArgument,
      /no data/,
    );
    assert.equal(await count("chunks"), before);
    const short = await uploads.transfer({ state: b.state, data: randomBytes(10) });
    await rejects(
      uploads.transfer({ state: short.state, data: randomBytes(10) }),
      Code.FailedPrecondition,
      /last \(short\) transfer/,
    );
    await rejects(
      uploads.begin({
        tenantId: tenant,
        path: "/big/one",
        committed: { case: "contents", value: randomBytes(b.maxTransferSize + 1) },
      }),
      Code.ResourceExhausted,
      /limit/,
    );
  });

  test("commit with a wrong expected hash writes nothing", async () => {
    const b = await uploads.begin({ tenantId: tenant, path: "/hash/f" });
    const t = await uploads.transfer({ state: b.state, data: randomBytes(100) });
    await rejects(
      uploads.commit({ state: t.state, expectedContentHash: Buffer.alloc(32) }),
      Code.DataLoss,
      /content hash is/,
    );
    await rejects(files.stat({ tenantId: tenant, path: "/hash/f" }), Code.NotFound, /no file/);
  });

  test("dedup-aware path: find missing, put verified chunks, append references", async () => {
    const data = randomBytes(2 * CHUNK + 3);
    const pieces = [data.subarray(0, CHUNK), data.subarray(CHUNK, 2 * CHUNK), data.subarray(2 * CHUNK)];
    const { chunkHash } = await import("@cacheroach/core");
    const hashes = pieces.map((p) => chunkHash(p));
    const b = await uploads.begin({ tenantId: tenant, path: "/dedup-aware/f" });
    const missing = await uploads.findMissing({ state: b.state, hashes: [...hashes, hashes[0]!] });
    assert.equal(missing.missing.length, 3);
    await rejects(
      uploads.putChunks({ state: b.state, chunks: [{ hash: hashes[1], data: pieces[0] }] }),
      Code.InvalidArgument,
      /does not match/,
    );
    await rejects(
      uploads.append({
        state: b.state,
        chunks: hashes.map((hash, i) => ({ hash, length: pieces[i]!.length })),
      }),
      Code.FailedPrecondition,
      /not stored/,
    );
    const put1 = await uploads.putChunks({
      state: b.state,
      chunks: pieces.map((p, i) => ({ hash: hashes[i], data: p })),
    });
    assert.equal(put1.stored, 3);
    assert.equal((await uploads.findMissing({ state: b.state, hashes })).missing.length, 0);
    const a = await uploads.append({
      state: b.state,
      chunks: hashes.map((hash, i) => ({ hash, length: pieces[i]!.length })),
    });
    const c = await uploads.commit({ state: a.state, expectedContentHash: contentHash(data, CHUNK) });
    assert.deepEqual(await read("/dedup-aware/f"), data);
    assert.equal(c.file!.size, BigInt(data.length));
  });
});

describe("packed chunks", () => {
  test("PutChunks takes chunks packed in one bytes field, verified and stored like Chunk messages", async () => {
    const { chunkHash } = await import("@cacheroach/core");
    const data = randomBytes(5 * CHUNK + 17);
    const pieces = Array.from({ length: 6 }, (_, i) => data.subarray(i * CHUNK, (i + 1) * CHUNK));
    const hashes = pieces.map((p) => chunkHash(p));
    const b = await uploads.begin({ tenantId: tenant, path: "/packed/f" });
    assert.equal(b.packedChunks, true);
    const before = await count("chunks", "tenant_id = $1", [tenant]);
    // A hash count that does not fit the bytes, or a wrong hash: refused, nothing stored.
    await rejects(
      uploads.putChunks({ state: b.state, packedData: data, packedHashes: hashes.slice(1) }),
      Code.InvalidArgument,
      /packed_hashes/,
    );
    await rejects(
      uploads.putChunks({
        state: b.state,
        packedData: data,
        packedHashes: [...hashes.slice(0, 5), hashes[0]!],
      }),
      Code.InvalidArgument,
      /does not match/,
    );
    assert.equal(await count("chunks", "tenant_id = $1", [tenant]), before);
    // Packed and Chunk messages in one call: the first two as messages, the rest packed.
    const put = await uploads.putChunks({
      state: b.state,
      chunks: [0, 1].map((i) => ({ hash: hashes[i], data: pieces[i] })),
      packedData: data.subarray(2 * CHUNK),
      packedHashes: hashes.slice(2),
    });
    assert.equal(put.stored, 6);
    const a = await uploads.append({
      state: b.state,
      chunks: hashes.map((hash, i) => ({ hash, length: pieces[i]!.length })),
    });
    await uploads.commit({ state: a.state, expectedContentHash: contentHash(data, CHUNK) });
    assert.deepEqual(await read("/packed/f"), data);
  });
});

describe("writing content the tenant already stores", () => {
  test("Begin{content_hash} writes a version of stored content without bytes; anything else changes nothing", async () => {
    const data = randomBytes(2 * CHUNK + 9);
    const first = await put("/by-hash/a.bin", data);
    const hash = Buffer.from(first.contentHash);
    const rows = async () => [await count("file_versions"), await count("chunks"), await count("ropes")];
    const before = await rows();
    const r = await uploads.begin({
      tenantId: tenant,
      path: "/by-hash/b.bin",
      committed: { case: "contentHash", value: hash },
      contentType: "application/x-test",
      meta: { k: "v" },
    });
    assert.deepEqual(Buffer.from(r.file!.contentHash), hash);
    assert.equal(r.file!.size, BigInt(data.length));
    assert.equal(r.file!.version, 1n);
    assert.equal(r.file!.contentType, "application/x-test");
    assert.deepEqual(r.file!.meta, { k: "v" });
    assert.deepEqual(await read("/by-hash/b.bin"), data);
    const [versions, chunks, ropes] = await rows();
    assert.deepEqual(
      [versions, chunks, ropes],
      [before[0]! + 1, before[1], before[2]],
      "one version, no new content",
    );
    // A new version of the same path, with a precondition checked as for any write.
    const again = await uploads.begin({
      tenantId: tenant,
      path: "/by-hash/b.bin",
      committed: { case: "contentHash", value: hash },
      precondition: { kind: { case: "version", value: 1n } },
    });
    assert.equal(again.file!.version, 2n);
    const after = await rows();
    await rejects(
      uploads.begin({
        tenantId: tenant,
        path: "/by-hash/b.bin",
        committed: { case: "contentHash", value: hash },
        precondition: { kind: { case: "mustNotExist", value: true } },
      }),
      Code.FailedPrecondition,
      /already exists|exists/,
    );
    // Unknown content, another tenant's content, a malformed hash: refused, nothing written.
    await rejects(
      uploads.begin({
        tenantId: tenant,
        path: "/by-hash/c.bin",
        committed: { case: "contentHash", value: randomBytes(32) },
      }),
      Code.NotFound,
      /no file this session may read holds content [0-9a-f]{64}; upload the bytes/,
    );
    await rejects(
      uploads.begin({
        tenantId: other,
        path: "/by-hash/c.bin",
        committed: { case: "contentHash", value: hash },
      }),
      Code.NotFound,
      /no file this session may read holds content/,
    );
    await rejects(
      uploads.begin({
        tenantId: tenant,
        path: "/by-hash/c.bin",
        committed: { case: "contentHash", value: hash.subarray(0, 31) },
      }),
      Code.InvalidArgument,
      /content_hash must be 32 bytes/,
    );
    assert.deepEqual(await rows(), after);
    await rejects(files.stat({ tenantId: tenant, path: "/by-hash/c.bin" }), Code.NotFound, /no file at/);
    await rejects(files.stat({ tenantId: other, path: "/by-hash/c.bin" }), Code.NotFound, /no file at/);
  });
});

describe("paths and ids", () => {
  const badPaths = [
    "",
    "relative",
    "/",
    "/a/",
    "/a//b",
    "/a/../b",
    "/./a",
    "/a\u0000b",
    `/${"x".repeat(256)}`,
    `/${"a/".repeat(600)}z`,
  ];
  for (const path of badPaths) {
    test(`bad path ${JSON.stringify(path.slice(0, 20))} is refused and stores nothing`, async () => {
      const before = await count("file_versions");
      await rejects(
        uploads.begin({ tenantId: tenant, path, committed: { case: "contents", value: Buffer.from("x") } }),
        Code.InvalidArgument,
        /path|required/,
      );
      assert.equal(await count("file_versions"), before);
    });
  }

  test("unknown tenant is NotFound and stores nothing", async () => {
    const before = await count("chunks");
    const ghost = "12345678-1234-1234-1234-123456789abc";
    await rejects(uploads.begin({ tenantId: ghost, path: "/x" }), Code.NotFound, /tenant .* does not exist/);
    await rejects(
      uploads.begin({
        tenantId: ghost,
        path: "/x",
        committed: { case: "contents", value: Buffer.from("x") },
      }),
      Code.NotFound,
      /does not exist/,
    );
    assert.equal(await count("chunks"), before);
  });

  test("a tenant deleted after use is NotFound, not an internal error", async () => {
    const tenants = ts.client(Tenants, ts.superToken);
    const t = (await tenants.ensure({ tenant: { label: "short-lived" } })).tenant!;
    await uploads.begin({
      tenantId: t.id,
      path: "/a",
      committed: { case: "contents", value: Buffer.from("a") },
    });
    await tenants.ensure({ tenant: t, delete: true });
    await rejects(
      uploads.begin({ tenantId: t.id, path: "/b", committed: { case: "contents", value: Buffer.from("b") } }),
      Code.NotFound,
      /no longer exists|does not exist/,
    );
  });

  test("bad tenant id is refused", async () => {
    await rejects(
      files.stat({ tenantId: "not-a-uuid", path: "/x" }),
      Code.InvalidArgument,
      /tenant_id "not-a-uuid" is not a UUID/,
    );
  });
});

describe("listing", () => {
  test("recursive prefix listing pages through more than one page in stable order", async () => {
    const names: string[] = [];
    for (let i = 0; i < 25; i++) names.push(`/list/d${i % 3}/f${String(i).padStart(2, "0")}`);
    for (const n of names)
      await uploads.begin({
        tenantId: tenant,
        path: n,
        committed: { case: "contents", value: Buffer.from(n) },
      });
    await uploads.begin({ tenantId: tenant, path: "/listx", committed: { case: "empty", value: true } });
    const seen: string[] = [];
    let cursor = "";
    let pages = 0;
    do {
      const page = await files.list({ tenantId: tenant, path: "/list", cursor, pageSize: 7 });
      seen.push(...page.files.map((f) => f.path));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 4);
    assert.deepEqual(seen, [...names].sort());
    const sub = await files.list({ tenantId: tenant, path: "/list/d1/" });
    assert.equal(sub.files.length, 8);
    await rejects(
      files.list({ tenantId: tenant, path: "/list", cursor: "!!" }),
      Code.InvalidArgument,
      /cursor is invalid/,
    );
    await rejects(
      files.list({ tenantId: tenant, path: "/list", pageSize: 100_000 }),
      Code.InvalidArgument,
      /page_size/,
    );
  });
});
