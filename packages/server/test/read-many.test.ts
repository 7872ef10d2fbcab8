/**
 * Files.ReadMany's fast path: the hand-written ReadManyResponse encoder (byte-identical to
 * protobuf-es), the one-statement read of heads with small contents (the portable query and
 * PostgreSQL's binary COPY give the same answer), and the same answer over every protocol.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  Files,
  ReadManyRequestSchema,
  ReadManyResponseSchema,
  type ReadManyResultSchema,
  Tenants,
  Uploads,
} from "@cacheroach/proto";
import { createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import pg from "pg";
import { Db, type Dialect } from "../src/db/db.js";
import { CacheroachError } from "../src/errors.js";
import { toFileMeta } from "../src/rpc/convert.js";
import { preEncoded } from "../src/rpc/pre-encoded.js";
import { readMany } from "../src/rpc/read-many.js";
import { encodeReadManyResponse, type ReadManyItem } from "../src/rpc/read-many-encoding.js";
import { ChunkStore } from "../src/store/chunk-store.js";
import type { FileRecord } from "../src/store/file-meta.js";
import { readLiveHeads } from "../src/store/live-heads.js";
import { RopeStore } from "../src/store/rope-store.js";
import { startTestServer, type TestServer } from "../src/testing.js";

/** PostgreSQL reads through binary COPY, synchronous bulk writes. */
const BINARY_COPY: Dialect = { name: "postgres", asyncBulkCommit: false, binaryCopyReads: true };

function record(over: Partial<FileRecord> = {}): FileRecord {
  const t = new Date(1_795_447_543_324);
  return {
    tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    path: "/a/b.txt",
    version: 1,
    ropeHash: randomBytes(32),
    size: 12_345,
    chunkSize: 512 << 10,
    contentType: "application/octet-stream",
    meta: {},
    ctime: t,
    mtime: t,
    dtime: null,
    ...over,
  };
}

/** The message read-many.ts returns for JSON answers, built independently of the encoder. */
function message(items: ReadManyItem[]) {
  return create(ReadManyResponseSchema, {
    results: items.map((it): MessageInitShape<typeof ReadManyResultSchema> => {
      if ("error" in it) return { error: it.error };
      if (it.contents === undefined) return { file: toFileMeta(it.file) };
      return { file: toFileMeta(it.file), contents: it.contents, contentsIncluded: true };
    }),
  });
}

function assertSameBytes(items: ReadManyItem[], name = "") {
  const mine = encodeReadManyResponse(items);
  const ref = toBinary(ReadManyResponseSchema, message(items));
  assert.equal(mine.length, ref.length, `${name}: length`);
  assert.ok(Buffer.from(ref).equals(mine), `${name}: bytes differ`);
}

describe("encodeReadManyResponse", () => {
  test("writes exactly what protobuf-es writes, case by case", () => {
    const file = (over: Partial<FileRecord> = {}, contents?: Uint8Array): ReadManyItem => ({
      file: record(over),
      contents,
    });
    const cases: [string, ReadManyItem[]][] = [
      ["nothing", []],
      ["contents included", [file({ size: 5 }, Buffer.from("hello"))]],
      ["empty contents included", [file({ size: 0, ropeHash: randomBytes(32) }, Buffer.alloc(0))]],
      ["contents not included", [file({ size: 2 << 20 })]],
      ["not found", [{ error: { code: "not_found", message: "no file at /x" } }]],
      [
        "with its stable code",
        [{ error: { code: "not_found", message: "no file at /x", errorCode: "ERR_NOT_FOUND" } }],
      ],
      ["error without message", [{ error: { code: "unavailable", message: "" } }]],
      ["error without code", [{ error: { code: "", message: "?" } }]],
      ["error with nothing", [{ error: { code: "", message: "" } }]],
      ["unicode error", [{ error: { code: "not_found", message: "no file at /日本語/🙂.txt" } }]],
      ["unicode path", [file({ path: "/日本語/ファイル 🙂.txt", size: 3 }, Buffer.from("abc"))]],
      ["path of 1024 bytes", [file({ path: `/${"é".repeat(511)}x`, size: 1 }, Buffer.from("x"))]],
      ["large sizes", [file({ size: 5 * 2 ** 40 + 3, version: 2 ** 31 + 1 })]],
      ["largest safe integer", [file({ size: Number.MAX_SAFE_INTEGER, version: Number.MAX_SAFE_INTEGER })]],
      ["defaults omitted", [file({ version: 0, chunkSize: 0, contentType: "", size: 0 }, new Uint8Array(0))]],
      ["before 1970", [file({ ctime: new Date(-1), mtime: new Date(-62_135_596_800_000) })]],
      [
        "meta",
        [file({ meta: { b: "2", a: "", ключ: "значение", long: "v".repeat(4096) } }, Buffer.from("m"))],
      ],
      ["FileMeta past 16 KiB", [file({ meta: { k: "€".repeat(6000) } }, randomBytes(10))]],
      ["contents of 127 and 128 bytes", [file({}, randomBytes(127)), file({}, randomBytes(128))]],
      ["contents past 16 KiB (3-byte lengths)", [file({}, randomBytes(20_000))]],
      ["contents past 2 MiB (4-byte lengths)", [file({}, randomBytes((2 << 20) + 1))]],
      [
        "a mix, as a batch answers",
        [
          file({ path: "/m/0" }, randomBytes(4096)),
          { error: { code: "not_found", message: "no file at /m/1" } },
          file({ path: "/m/2", size: 1 << 20 }),
          file({ path: "/m/3", size: 0 }, new Uint8Array(0)),
          file({ path: "/m/0" }, randomBytes(4096)),
        ],
      ],
    ];
    for (const [name, items] of cases) assertSameBytes(items, name);
  });

  test("1000 results with contents (a full batch), and contents that are views of a larger buffer", () => {
    const big = randomBytes(1000 * 4096 + 17);
    const items: ReadManyItem[] = Array.from({ length: 1000 }, (_, i) =>
      i % 97 === 5
        ? { error: { code: "not_found", message: `no file at /f/${i}` } }
        : {
            file: record({ path: `/f/${String(i).padStart(6, "0")}.bin`, size: 4096, version: i + 1 }),
            contents: big.subarray(17 + i * 4096, 17 + (i + 1) * 4096),
          },
    );
    assertSameBytes(items, "full batch");
  });

  test("decodes back to the message, and goes out unchanged through preEncoded", () => {
    const items: ReadManyItem[] = [
      { file: record({ meta: { x: "y" } }), contents: randomBytes(300) },
      { file: record({ path: "/ü", size: 2 ** 45 }), contents: undefined },
      { error: { code: "not_found", message: "no file at /z" } },
    ];
    const bytes = encodeReadManyResponse(items);
    assert.deepEqual(fromBinary(ReadManyResponseSchema, bytes), message(items));
    assert.ok(
      Buffer.from(toBinary(ReadManyResponseSchema, preEncoded(ReadManyResponseSchema, bytes))).equals(bytes),
    );
  });
});

describe("Files.ReadMany against the database", () => {
  const CHUNK = 64 * 1024;
  let ts: TestServer;
  let sql: pg.Client;
  let tenant: string;
  const contents = new Map<string, Buffer>([
    ["/h/small", randomBytes(100)],
    ["/h/empty", Buffer.alloc(0)],
    ["/h/one-chunk", randomBytes(CHUNK)],
    ["/h/three-chunks", randomBytes(CHUNK * 2 + 7)],
    ["/h/日本語 🙂", randomBytes(33)],
    ["/h/same-as-small", Buffer.alloc(0)],
    ["/h/deleted", randomBytes(10)],
  ]);
  contents.set("/h/same-as-small", contents.get("/h/small")!);

  before(async () => {
    ts = await startTestServer({ chunkSize: CHUNK });
    sql = new pg.Client({ connectionString: ts.databaseUrl });
    await sql.connect();
    tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "read-many" } })).tenant!.id;
    for (const [path, c] of contents) {
      await ts.client(Uploads, ts.superToken).putFiles({
        tenantId: tenant,
        files: [{ path, contents: c, meta: { p: path } }],
      });
    }
    await ts.client(Files, ts.superToken).delete({ tenantId: tenant, path: "/h/deleted" });
  });
  after(async () => {
    await sql?.end();
    await ts?.close();
  });

  test("the portable query and the binary COPY read the same heads and contents", async () => {
    const portable = new Db({ url: ts.databaseUrl });
    const copy = new Db({ url: ts.databaseUrl, dialect: BINARY_COPY });
    try {
      const paths = [...contents.keys(), "/h/nope"];
      for (const inlineMax of [0, 100, CHUNK, CHUNK * 3, CHUNK * 16]) {
        const a = await readLiveHeads(portable, tenant, paths, inlineMax);
        const b = await readLiveHeads(copy, tenant, paths, inlineMax);
        assert.deepEqual(b, a, `inlineMax ${inlineMax}`);
        assert.deepEqual(
          [...a.keys()].sort(),
          [...contents.keys()].filter((p) => p !== "/h/deleted").sort(),
          "live heads only",
        );
        for (const [path, head] of a) {
          assert.equal(head.file.path, path);
          assert.equal(head.file.size, contents.get(path)!.length);
          assert.deepEqual(head.file.meta, { p: path });
          if (head.file.size <= inlineMax) assert.deepEqual(head.contents, contents.get(path), path);
          else assert.equal(head.contents, undefined, path);
        }
      }
    } finally {
      await portable.close();
      await copy.close();
    }
  });

  test("answers the same over Connect (binary and JSON), gRPC and gRPC-web", async () => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${ts.superToken}`);
      return next(req);
    };
    const base = { baseUrl: ts.url, interceptors: [auth] };
    const transports = {
      connectBinary: createConnectTransport({ ...base, httpVersion: "1.1", useBinaryFormat: true }),
      connectJson: createConnectTransport({ ...base, httpVersion: "1.1", useBinaryFormat: false }),
      grpc: createGrpcTransport({ ...base }),
      grpcWeb: createGrpcWebTransport({ ...base, httpVersion: "1.1", useBinaryFormat: true }),
      grpcWebJson: createGrpcWebTransport({ ...base, httpVersion: "1.1", useBinaryFormat: false }),
    };
    const paths = [...contents.keys(), "/h/nope", "/h/small"];
    for (const maxSize of [0n, 50n, BigInt(CHUNK * 3)]) {
      const answers = await Promise.all(
        Object.values(transports).map((t) =>
          createClient(Files, t).readMany({ tenantId: tenant, paths, maxSize }),
        ),
      );
      for (const [i, a] of answers.entries())
        assert.deepEqual(a, answers[0], `transport ${i}, max_size ${maxSize}`);
      const res = answers[0]!;
      const limit = maxSize === 0n ? 1 << 20 : Number(maxSize);
      res.results.forEach((r, i) => {
        const want = contents.get(paths[i]!);
        if (!want || paths[i] === "/h/deleted") {
          assert.equal(r.error?.code, "not_found", paths[i]);
          return;
        }
        assert.equal(r.file?.path, paths[i]);
        assert.equal(r.contentsIncluded, want.length <= limit, paths[i]);
        assert.deepEqual(Buffer.from(r.contents), r.contentsIncluded ? want : Buffer.alloc(0), paths[i]);
      });
    }
  });

  test("budget: files over budget / paths come from the second read, in request order", async () => {
    // 600 paths: the one statement inlines files of at most 16 MiB / 600 (27 KiB); the 64 KiB and
    // 128 KiB ones are read afterwards. (The whole answer stays below the server's message limit.)
    const small = ["/h/small", "/h/empty", "/h/日本語 🙂", "/h/same-as-small", "/h/deleted", "/h/nope"];
    const paths = Array.from({ length: 600 }, (_, i) => small[i % small.length]!);
    paths[17] = "/h/one-chunk";
    paths[599] = "/h/three-chunks";
    const res = await ts.client(Files, ts.superToken).readMany({ tenantId: tenant, paths });
    assert.equal(res.results.length, paths.length);
    for (const [i, r] of res.results.entries()) {
      const path = paths[i]!;
      if (path === "/h/deleted" || path === "/h/nope") {
        assert.equal(r.error?.code, "not_found");
        continue;
      }
      assert.equal(r.file?.path, path);
      assert.ok(r.contentsIncluded, path);
      assert.deepEqual(Buffer.from(r.contents), contents.get(path), path);
    }
  });

  test("answers stay under the server's response limit: 6 MiB of small files come back whole", async () => {
    // 300 files of 20 KiB: more than one transfer (the old response limit), within the budget.
    const files = Array.from({ length: 300 }, (_, i) => ({
      path: `/big-answer/f${i}`,
      contents: randomBytes(20 << 10),
    }));
    for (let i = 0; i < files.length; i += 20) {
      // 20 × 20 KiB per call: requests are bounded by one transfer (8 chunks of 64 KiB here).
      await ts.client(Uploads, ts.superToken).putFiles({ tenantId: tenant, files: files.slice(i, i + 20) });
    }
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${ts.superToken}`);
      return next(req);
    };
    for (const useBinaryFormat of [true, false]) {
      const t = createConnectTransport({
        baseUrl: ts.url,
        interceptors: [auth],
        httpVersion: "1.1",
        useBinaryFormat,
      });
      const res = await createClient(Files, t).readMany({
        tenantId: tenant,
        paths: files.map((f) => f.path),
      });
      res.results.forEach((r, i) => {
        assert.ok(r.contentsIncluded, `${files[i]!.path} (binary ${useBinaryFormat})`);
        assert.deepEqual(Buffer.from(r.contents), files[i]!.contents);
      });
    }
  });

  test("with a small response limit the contents stop in time; the rest come as metadata", async () => {
    const db = new Db({ url: ts.databaseUrl });
    try {
      const ropes = new RopeStore(db, new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 1 }), 1);
      const paths = Array.from({ length: 300 }, (_, i) => `/big-answer/f${i}`);
      const limit = 1 << 20;
      const answer = (await readMany(
        create(ReadManyRequestSchema, { tenantId: tenant, paths }),
        ropes,
        undefined,
        limit,
      )) as MessageInitShape<typeof ReadManyResponseSchema>;
      const bytes = toBinary(ReadManyResponseSchema, create(ReadManyResponseSchema, answer));
      assert.ok(bytes.length <= limit, `answer of ${bytes.length} bytes`);
      const included = answer.results!.filter((r) => r.contentsIncluded).length;
      assert.ok(included > 30 && included < 50, `${included} files carried`);
      // In request order: a prefix carries contents, everything after it only metadata.
      answer.results!.forEach((r, i) => {
        assert.equal(r.file?.path, paths[i]);
        assert.equal(Boolean(r.contentsIncluded), i < included, paths[i]);
      });
    } finally {
      await db.close();
    }
  });

  test("content the database lost is that item's error, only when the answer would carry it", async () => {
    const other = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "read-many lost" } }))
      .tenant!.id;
    const files = ts.client(Files, ts.superToken);
    await ts.client(Uploads, ts.superToken).putFiles({
      tenantId: other,
      files: [
        { path: "/l/small", contents: randomBytes(10) },
        { path: "/l/broken", contents: randomBytes(CHUNK + 1) },
      ],
    });
    const head = (await files.stat({ tenantId: other, path: "/l/broken" })).file!;
    await sql.query("DELETE FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off > 0", [
      other,
      Buffer.from(head.contentHash),
    ]);
    for (const copy of [false, true]) {
      const db = new Db({ url: ts.databaseUrl, ...(copy ? { dialect: BINARY_COPY } : {}) });
      try {
        const heads = await readLiveHeads(db, other, ["/l/small", "/l/broken"], CHUNK * 2);
        assert.ok(heads.get("/l/broken")?.contents instanceof CacheroachError);
        const small = heads.get("/l/small")?.contents;
        assert.ok(Buffer.isBuffer(small) && small.length === 10);
      } finally {
        await db.close();
      }
    }
    // The damaged file is that item's error; the rest of the batch is answered.
    const both = await files.readMany({ tenantId: other, paths: ["/l/small", "/l/broken"] });
    assert.ok(both.results[0]!.contentsIncluded);
    assert.equal(both.results[0]!.contents.length, 10);
    assert.equal(both.results[1]!.error?.code, "data_loss");
    assert.match(both.results[1]!.error!.message, /^\/l\/broken: content is damaged/);
    const meta = await files.readMany({ tenantId: other, paths: ["/l/small", "/l/broken"], maxSize: 100n });
    assert.ok(meta.results[0]!.contentsIncluded);
    assert.equal(meta.results[1]!.contentsIncluded, false);
    assert.equal(meta.results[1]!.file?.size, BigInt(CHUNK + 1));
  });
});
