/**
 * Only real RPC methods are RPC (docs/security.md, guarantee 7): a Connect, gRPC or gRPC-Web request for any other path
 * is answered `unimplemented` in its protocol's own form and is never stored as a file, while plain
 * PUT/POST uploads (JSON files included) still work; and a malformed request body sent to a real
 * method is `invalid_argument`, not `internal`, in every protocol.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create, type DescMethod, type DescService, toBinary } from "@bufbuild/protobuf";
import { BeginRequestSchema, Files, StatRequestSchema, Tenants, VHosts } from "@cacheroach/proto";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";

const run = promisify(execFile);
let ts: TestServer;
let sql: pg.Client;
let tenant: string;
let auth: Interceptor;

/** Rows a stored request would have left behind. */
async function stored(): Promise<{ files: number; chunks: number; uploads: number }> {
  const r = await sql.query(
    "SELECT (SELECT count(*) FROM file_versions)::INT AS files, (SELECT count(*) FROM chunks)::INT AS chunks, (SELECT count(*) FROM uploads)::INT AS uploads",
  );
  return r.rows[0];
}

/** A method the server does not have: a real method's shape under another name or service. */
function fakeMethod(service: string, name: string, like: DescMethod = Files.method.stat): DescMethod {
  const parent = { ...Files, typeName: service } as DescService;
  return { ...like, name, parent } as DescMethod;
}

function transports(baseUrl: string): Record<string, Transport> {
  const common = { baseUrl, interceptors: [auth], acceptCompression: [] };
  return {
    "connect binary h1": createConnectTransport({ ...common, httpVersion: "1.1", useBinaryFormat: true }),
    "connect JSON h1": createConnectTransport({ ...common, httpVersion: "1.1" }),
    "connect binary h2": createConnectTransport({ ...common, httpVersion: "2", useBinaryFormat: true }),
    grpc: createGrpcTransport(common),
    "grpc-web h1": createGrpcWebTransport({ ...common, httpVersion: "1.1" }),
    "grpc-web h2": createGrpcWebTransport({ ...common, httpVersion: "2" }),
  };
}

async function code(p: Promise<unknown>): Promise<[Code, string]> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
  assert.fail("the call succeeded");
}

/** One raw HTTP/2 (h2c) request: status, headers, body and trailers. */
function h2(path: string, headers: Record<string, string>, body: Buffer) {
  return new Promise<{
    status: number;
    headers: http2.IncomingHttpHeaders;
    body: Buffer;
    trailers: http2.IncomingHttpHeaders;
  }>((resolve, reject) => {
    const session = http2.connect(ts.url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, ...headers });
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on("response", (h) => {
      head = h;
      status = Number(h[":status"]);
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (d: Buffer) => parts.push(d));
    // "close" also ends a stream the server reset (resolving twice is harmless).
    const done = () => {
      session.close();
      resolve({ status, headers: head, body: Buffer.concat(parts), trailers });
    };
    req.on("end", done);
    req.on("close", done);
    req.on("error", reject);
    req.end(body);
  });
}

/** A length-prefixed message (gRPC, gRPC-Web and Connect streaming framing). */
function envelope(data: Buffer, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

/** The envelopes of a framed body. */
function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let off = 0; off + 5 <= body.length; ) {
    const n = body.readUInt32BE(off + 1);
    out.push({ flags: body[off]!, data: body.subarray(off + 5, off + 5 + n) });
    off += 5 + n;
  }
  return out;
}

before(async () => {
  ts = await startTestServer();
  sql = new pg.Client({ connectionString: ts.databaseUrl });
  await sql.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "routing" } })).tenant!.id;
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
  auth = (next) => (req) => {
    req.header.set("authorization", `Bearer ${ts.superToken}`);
    return next(req);
  };
});
after(async () => {
  await sql?.end();
  await ts?.close();
});

describe("a request for a method the server lacks is unimplemented and stores nothing", () => {
  test("connect-node clients of every protocol, unary and server-streaming", async () => {
    const before = await stored();
    const methods = [
      fakeMethod("cacheroach.v1.Files", "Nope"),
      fakeMethod("cacheroach.v1.Nope", "X"),
      fakeMethod("grpc.health.v1.Health", "Check"),
      fakeMethod("cacheroach.v1.Files", "ReadAll", Files.method.read),
    ];
    for (const [name, transport] of Object.entries(transports(ts.url))) {
      for (const m of methods) {
        const input = create(StatRequestSchema, { tenantId: tenant, path: "/x" });
        const call =
          m.methodKind === "unary"
            ? transport.unary(
                m as DescMethod & { methodKind: "unary" },
                undefined,
                undefined,
                undefined,
                input,
              )
            : (async () => {
                const res = await transport.stream(
                  m as DescMethod & { methodKind: "server_streaming" },
                  undefined,
                  undefined,
                  undefined,
                  (async function* () {
                    yield input;
                  })(),
                );
                for await (const _ of res.message) {
                  // drain
                }
              })();
        const [c, message] = await code(call);
        assert.equal(c, Code.Unimplemented, `${name} ${m.parent.typeName}/${m.name}: ${Code[c]} ${message}`);
      }
    }
    assert.deepEqual(await stored(), before);
    const listed = await ts.client(Files, ts.superToken).list({ tenantId: tenant, path: "/" });
    assert.deepEqual(listed.files, []);
  });

  test("a client whose server URL has a path gets unimplemented, with the reason", async () => {
    const before = await stored();
    for (const [name, transport] of Object.entries(transports(`${ts.url}/some/prefix`))) {
      const [c, message] = await code(createClient(Files, transport).stat({ tenantId: tenant, path: "/x" }));
      assert.equal(c, Code.Unimplemented, `${name}: ${Code[c]} ${message}`);
      assert.match(message, /\/some\/prefix.*server URL/, name);
    }
    assert.deepEqual(await stored(), before);
  });

  test("curl with each RPC content type, over HTTP/1.1 and h2c; plain JSON uploads still work", async () => {
    const before = await stored();
    const curl = async (path: string, contentType: string, extra: string[] = []) => {
      const { stdout } = await run("curl", [
        "-sS",
        "-i",
        "--max-time",
        "30",
        ...extra,
        "-X",
        "POST",
        "-H",
        `content-type: ${contentType}`,
        "-H",
        `authorization: Bearer ${ts.superToken}`,
        "--data-binary",
        "{}",
        `${ts.url}${path}`,
      ]);
      return stdout.replaceAll("\r\n", "\n");
    };
    for (const path of ["/cacheroach.v1.Files/Nope", "/cacheroach.v1.Nope/X"]) {
      for (const type of ["application/json", "application/proto", "application/json; charset=utf-8"]) {
        for (const extra of [[], ["--http2-prior-knowledge"]]) {
          const out = await curl(path, type, extra);
          assert.match(out, /^HTTP\/[12](\.1)? 404/, `${path} ${type} ${extra}`);
          assert.match(out, /content-type: application\/json/i);
          assert.match(out, /"code":\s*"unimplemented"/, out);
        }
      }
      for (const type of ["application/grpc", "application/grpc+proto", "application/grpc+json"]) {
        const out = await curl(path, type, ["--http2-prior-knowledge"]);
        assert.match(out, /^HTTP\/2 200/, `${path} ${type}`);
        assert.match(out, /grpc-status: 12/, out);
      }
      for (const type of [
        "application/grpc-web",
        "application/grpc-web+proto",
        "application/grpc-web-text",
      ]) {
        for (const extra of [[], ["--http2-prior-knowledge"]]) {
          const out = await curl(path, type, extra);
          assert.match(out, /^HTTP\/[12](\.1)? 200/, `${path} ${type}`);
          assert.match(out, /grpc-status: 12/, out);
        }
      }
      for (const type of ["application/connect+json", "application/connect+proto"]) {
        const out = await curl(path, type);
        assert.match(out, /^HTTP\/1\.1 200/, `${path} ${type}`);
        assert.match(out, /"code":\s*"unimplemented"/, out);
      }
    }
    // A standard gRPC method the server does not implement (health checking), as a tool sends it.
    // (Reflection is implemented: reflection.test.ts.)
    const health = await curl("/grpc.health.v1.Health/Check", "application/grpc+proto", [
      "--http2-prior-knowledge",
      "-H",
      "te: trailers",
    ]);
    assert.match(health, /grpc-status: 12/);
    // A Connect GET of an unknown method.
    const get = await fetch(`${ts.url}/cacheroach.v1.Files/Nope?connect=v1&encoding=json&message=%7B%7D`);
    assert.equal(get.status, 404);
    assert.equal(((await get.json()) as { code: string }).code, "unimplemented");
    assert.deepEqual(await stored(), before);

    // Plain uploads of JSON files still work: a PUT of any path, a POST of an ordinary path.
    const headers = { authorization: `Bearer ${ts.superToken}`, "content-type": "application/json" };
    const body = '{"a": 1}';
    for (const [method, path] of [
      ["PUT", "/data/x.json"],
      ["PUT", "/cacheroach.json"],
      ["POST", "/data/y.json"],
      ["POST", "/reports/2026/summary.json"],
      ["PUT", "/odd.name/File"],
    ] as const) {
      const r = await fetch(`${ts.url}${path}`, { method, headers, body });
      assert.equal(r.status, 201, `${method} ${path}: ${await r.text()}`);
      const back = await fetch(`${ts.url}${path}`, { headers });
      assert.equal(await back.text(), body);
    }
    const { stdout } = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-T",
      "package.json",
      "-H",
      `authorization: Bearer ${ts.superToken}`,
      `${ts.url}/uploaded/package.json`,
    ]);
    assert.equal(stdout, "201");
  });
});

describe("a malformed request body for a real method is invalid_argument", () => {
  const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]);
  const truncated = Buffer.from(
    toBinary(BeginRequestSchema, create(BeginRequestSchema, { tenantId: "t".repeat(36), path: "/x" })),
  ).subarray(0, 10);
  const bodies = { garbage, truncated };
  const authz = () => ({ authorization: `Bearer ${ts.superToken}` });

  test("Connect unary, binary and JSON", async () => {
    for (const [name, body] of Object.entries(bodies)) {
      const r = await fetch(`${ts.url}/cacheroach.v1.Uploads/Begin`, {
        method: "POST",
        headers: { ...authz(), "content-type": "application/proto" },
        body,
      });
      const err = (await r.json()) as { code: string; message: string };
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(err)}`);
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, /not a valid cacheroach\.v1\.BeginRequest/);
    }
    const r = await fetch(`${ts.url}/cacheroach.v1.Files/Stat`, {
      method: "POST",
      headers: { ...authz(), "content-type": "application/json" },
      body: "{bad",
    });
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { code: string }).code, "invalid_argument");
  });

  test("gRPC, gRPC-Web and Connect streaming, unary and server-streaming methods", async () => {
    const before = await stored();
    for (const [name, body] of Object.entries(bodies)) {
      for (const path of ["/cacheroach.v1.Uploads/Begin", "/cacheroach.v1.Files/Read"]) {
        const g = await h2(
          path,
          { ...authz(), "content-type": "application/grpc", te: "trailers" },
          envelope(body),
        );
        const status = g.trailers["grpc-status"] ?? g.headers["grpc-status"];
        assert.equal(
          status,
          "3",
          `grpc ${name} ${path}: ${status} ${decodeURIComponent(String(g.trailers["grpc-message"] ?? g.headers["grpc-message"]))}`,
        );

        const w = await fetch(`${ts.url}${path}`, {
          method: "POST",
          headers: { ...authz(), "content-type": "application/grpc-web+proto" },
          body: envelope(body),
        });
        const frames = envelopes(Buffer.from(await w.arrayBuffer()));
        const trailer = frames.find((f) => f.flags & 0x80)?.data.toString() ?? "";
        const webStatus = w.headers.get("grpc-status") ?? /grpc-status: ?(\d+)/.exec(trailer)?.[1];
        assert.equal(webStatus, "3", `grpc-web ${name} ${path}: ${trailer}`);
      }
      const c = await fetch(`${ts.url}/cacheroach.v1.Files/Read`, {
        method: "POST",
        headers: { ...authz(), "content-type": "application/connect+proto" },
        body: envelope(body),
      });
      const end = envelopes(Buffer.from(await c.arrayBuffer())).find((f) => f.flags & 0x02);
      const json = JSON.parse(end?.data.toString() ?? "{}") as { error?: { code: string } };
      assert.equal(json.error?.code, "invalid_argument", `connect stream ${name}: ${end?.data}`);
    }
    // Bad JSON in the JSON flavours of gRPC and gRPC-Web.
    for (const type of ["application/grpc+json", "application/grpc-web+json"]) {
      const g = await h2(
        "/cacheroach.v1.Files/Stat",
        { ...authz(), "content-type": type, te: "trailers" },
        envelope(Buffer.from("{bad")),
      );
      const status = g.trailers["grpc-status"] ?? g.headers["grpc-status"];
      const trailer =
        envelopes(g.body)
          .find((f) => f.flags & 0x80)
          ?.data.toString() ?? "";
      assert.equal(status ?? /grpc-status: ?(\d+)/.exec(trailer)?.[1], "3", `${type}: ${trailer}`);
    }
    assert.deepEqual(await stored(), before);
  });
});
