import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { equals } from "@bufbuild/protobuf";
import { type FileMeta, FileMetaSchema, Files, Tenants, Uploads } from "@cacheroach/proto";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";

// Files.List encodes binary responses by hand (rpc/list-encoding.ts) from rows read as text
// (store/file-meta.ts LIST_COLUMNS). Every entry must still equal what Files.Stat returns for the
// same file, in every protocol and both encodings.

let ts: TestServer;
let db: pg.Client;
let tenant: string;
const transports: [string, Transport][] = [];

function clientsOf(t: Transport): { files: Client<typeof Files> } {
  return { files: createClient(Files, t) };
}

async function listAll(files: Client<typeof Files>, path: string, pageSize = 0): Promise<FileMeta[]> {
  const out: FileMeta[] = [];
  let cursor = "";
  do {
    const page = await files.list({ tenantId: tenant, path, cursor, pageSize });
    out.push(...page.files);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

before(async () => {
  ts = await startTestServer({ chunkSize: 64 * 1024 });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "listing" } })).tenant!.id;
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${ts.superToken}`);
    return next(req);
  };
  const common = { baseUrl: ts.url, interceptors: [auth], acceptCompression: [] };
  transports.push(
    ["connect binary", ts.transport(ts.superToken)],
    ["connect JSON", createConnectTransport({ ...common, httpVersion: "1.1", useBinaryFormat: false })],
    ["gRPC", createGrpcTransport(common)],
    ["gRPC-web binary", createGrpcWebTransport({ ...common, httpVersion: "1.1", useBinaryFormat: true })],
    ["gRPC-web JSON", createGrpcWebTransport({ ...common, httpVersion: "1.1", useBinaryFormat: false })],
  );

  const uploads = ts.client(Uploads, ts.superToken);
  const put = (
    path: string,
    body: string,
    extra: { meta?: Record<string, string>; contentType?: string } = {},
  ) =>
    uploads.begin({
      tenantId: tenant,
      path,
      committed: { case: "contents", value: Buffer.from(body) },
      ...extra,
    });
  await put("/d/plain.txt", "plain");
  await put("/d/ünïcödé 日本/🙂.bin", "unicode", {
    meta: { ключ: "значение", "2": "two", "10": "ten", a: "" },
  });
  await put("/d/typed", "typed", { contentType: "application/x-thing; charset=utf-8", meta: { k: "v" } });
  await put("/d/overwritten", "one");
  await new Promise((r) => setTimeout(r, 5)); // a later mtime for version 2
  await put("/d/overwritten", "two");
  await put("/d/deleted", "gone");
  await ts.client(Files, ts.superToken).delete({ tenantId: tenant, path: "/d/deleted" });
  // Values the API cannot make: sizes past 32 bits, microseconds, times before 1970 and after 2038.
  const rows: [string, string, string, string][] = [
    ["/d/big", String(5 * 2 ** 40 + 3), "2026-11-23 15:25:43.324999+00", "2026-11-23 15:25:43.324999+00"],
    ["/d/old", "0", "1969-07-20 20:17:40.000001+00", "2100-01-01 00:00:00.5+00"],
    ["/d/epoch", "1", "1970-01-01 00:00:00+00", "1970-01-01 00:00:00.001+00"],
  ];
  for (const [path, size, ctime, mtime] of rows) {
    await db.query(
      `INSERT INTO files (tenant_id, path, version, rope_hash, size, chunk_size, content_type, meta, ctime, mtime)
       SELECT tenant_id, convert_to($2, 'UTF8'), 7, rope_hash, $3, chunk_size, 'x/y', '{"m": "\\u00e9"}', $4, $5
         FROM files WHERE tenant_id = $1 AND path = convert_to('/d/plain.txt', 'UTF8')`,
      [tenant, path, size, ctime, mtime],
    );
  }
  // Siblings of /d that sort around "/d/" but are not below it, and /d itself.
  for (const path of ["/d", "/d-x", "/d.txt", "/d0", "/da", "/c/z"]) await put(path, path);
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("Files.List", () => {
  test("every entry equals Files.Stat of that file, in every protocol and encoding", async () => {
    const stat = ts.client(Files, ts.superToken);
    const expected = [
      "/d",
      "/d/big",
      "/d/epoch",
      "/d/old",
      "/d/overwritten",
      "/d/plain.txt",
      "/d/typed",
      "/d/ünïcödé 日本/🙂.bin",
    ];
    for (const [name, t] of transports) {
      const listed = await listAll(clientsOf(t).files, "/d");
      assert.deepEqual(
        listed.map((f) => f.path),
        expected,
        name,
      );
      for (const f of listed) {
        const s = (await stat.stat({ tenantId: tenant, path: f.path })).file!;
        assert.ok(equals(FileMetaSchema, f, s), `${name}: ${f.path}\n${JSON.stringify([f, s], replacer)}`);
      }
    }
  });

  test("carries every field: meta, versions, big sizes, millisecond timestamps", async () => {
    const byPath = new Map((await listAll(ts.client(Files, ts.superToken), "/d")).map((f) => [f.path, f]));
    const big = byPath.get("/d/big")!;
    assert.equal(big.size, 5n * 2n ** 40n + 3n);
    assert.equal(big.version, 7n);
    assert.deepEqual(big.meta, { m: "é" });
    assert.equal(big.createdAt!.seconds, 1_795_447_543n);
    assert.equal(big.createdAt!.nanos, 324_000_000); // truncated to milliseconds, as Stat does
    const old = byPath.get("/d/old")!;
    assert.equal(old.createdAt!.seconds, -14_182_940n);
    assert.equal(old.createdAt!.nanos, 0);
    assert.equal(old.modifiedAt!.seconds, 4_102_444_800n);
    assert.equal(old.modifiedAt!.nanos, 500_000_000);
    assert.equal(old.size, 0n);
    const epoch = byPath.get("/d/epoch")!;
    assert.equal(epoch.createdAt!.seconds, 0n);
    assert.equal(epoch.modifiedAt!.nanos, 1_000_000);
    const over = byPath.get("/d/overwritten")!;
    assert.equal(over.version, 2n);
    assert.ok(
      over.modifiedAt!.seconds * 1000n + BigInt(over.modifiedAt!.nanos / 1e6) >
        over.createdAt!.seconds * 1000n + BigInt(over.createdAt!.nanos / 1e6),
    );
    const uni = byPath.get("/d/ünïcödé 日本/🙂.bin")!;
    assert.deepEqual(uni.meta, { ключ: "значение", "2": "two", "10": "ten", a: "" });
    assert.equal(uni.tenantId, tenant);
    assert.equal(uni.contentHash.length, 32);
    assert.equal(byPath.get("/d/typed")!.contentType, "application/x-thing; charset=utf-8");
  });

  test("pages of any size walk the same files; the root lists the whole tenant", async () => {
    const files = ts.client(Files, ts.superToken);
    const all = (await listAll(files, "/d")).map((f) => f.path);
    for (const size of [1, 2, 3, 8])
      assert.deepEqual(
        (await listAll(files, "/d", size)).map((f) => f.path),
        all,
      );
    assert.deepEqual(
      (await listAll(files, "/d/")).map((f) => f.path),
      all,
    );
    const root = (await listAll(files, "/", 4)).map((f) => f.path);
    assert.deepEqual(
      root,
      [...root].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    for (const p of ["/c/z", "/d-x", "/d.txt", "/d0", "/da", ...all]) assert.ok(root.includes(p), p);
    assert.ok(!root.includes("/d/deleted"));
    assert.deepEqual(
      (await listAll(files, "/d/typed")).map((f) => f.path),
      ["/d/typed"],
    );
    assert.deepEqual(await listAll(files, "/nothing"), []);
  });

  test("a cursor only when more files follow: a listing that fills its last page costs no empty call", async () => {
    const files = ts.client(Files, ts.superToken);
    const all = await listAll(files, "/d");
    const exact = await files.list({ tenantId: tenant, path: "/d", pageSize: all.length });
    assert.equal(exact.files.length, all.length);
    assert.equal(exact.nextCursor, "");
    const short = await files.list({ tenantId: tenant, path: "/d", pageSize: all.length - 1 });
    assert.equal(short.files.length, all.length - 1);
    assert.notEqual(short.nextCursor, "");
    const rest = await files.list({ tenantId: tenant, path: "/d", pageSize: 1, cursor: short.nextCursor });
    assert.deepEqual(
      rest.files.map((f) => f.path),
      [all[all.length - 1]!.path],
    );
    assert.equal(rest.nextCursor, "");
  });
});

function replacer(_: string, v: unknown) {
  return typeof v === "bigint" ? v.toString() : v;
}
