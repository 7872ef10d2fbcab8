import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Files, Principals, SessionSchema, Tenants, Tokens, VHosts } from "@cacheroach/proto";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";

const run = promisify(execFile);
const CHUNK = 64 * 1024;
const LIMIT = 4 * 1024 * 1024;
let ts: TestServer;
let db: pg.Client;
let tenant: string;
let host: string;
let auth: Record<string, string>;

/** fetch against the server with a Host header naming the test tenant's vhost. */
function req(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  return fetch(`${ts.url}${path}`, { ...init, headers: { ...auth, ...(init.headers ?? {}) } });
}
async function put(path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return req(path, { method: "PUT", body, headers });
}
/** A request with a chosen Host header (fetch ignores one), via node:http. */
function hostReq(
  hostHeader: string,
  path: string,
  method = "GET",
  body?: string,
  headers: Record<string, string> = {},
) {
  const u = new URL(ts.url);
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const r = http.request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method,
        agent: false,
        headers: { host: hostHeader, ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      },
    );
    r.on("error", reject);
    r.end(body);
  });
}
/** Sends raw bytes over a socket and returns the status line (fetch normalises paths). */
async function raw(request: string): Promise<string> {
  const u = new URL(ts.url);
  const sock = net.connect(Number(u.port), u.hostname);
  sock.write(request);
  let out = "";
  for await (const d of sock) {
    out += d.toString("latin1");
    if (out.includes("\r\n\r\n")) break;
  }
  sock.destroy();
  return out.split("\r\n")[0]!;
}
async function rows(sql: string, params: unknown[] = []) {
  return (await db.query(sql, params)).rows;
}

before(async () => {
  ts = await startTestServer({
    chunkSize: CHUNK,
    maxPutBytes: LIMIT,
    vhostRefreshMs: 100,
    sessionCacheMs: 200,
  });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "web" } })).tenant!.id;
  // fetch cannot set Host, so the test tenant is the vhost of the address fetch sends.
  host = "127.0.0.1";
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: host, tenantId: tenant } });
  auth = { authorization: `Bearer ${ts.superToken}` };
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("reads", () => {
  const body = randomBytes(3 * CHUNK + 11);
  let etag: string;
  before(async () => {
    const r = await put("/site/data.bin", body);
    assert.equal(r.status, 201);
    etag = r.headers.get("etag")!;
    await put("/site/index.html", "<html><body>hi</body></html>");
    await put("/site/sub/deep.txt", "deep");
    await put("/site/notype", Buffer.from("plain words"));
  });

  test("GET and HEAD with validators and length", async () => {
    const r = await req("/site/data.bin");
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), body);
    assert.equal(r.headers.get("etag"), etag);
    assert.equal(r.headers.get("content-length"), String(body.length));
    assert.equal(r.headers.get("accept-ranges"), "bytes");
    assert.equal(r.headers.get("content-type"), "application/octet-stream");
    assert.ok(r.headers.get("last-modified"));
    const h = await req("/site/data.bin", { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get("content-length"), String(body.length));
    assert.equal((await h.arrayBuffer()).byteLength, 0);
    assert.equal(
      (await req("/site/notype")).headers.get("content-type"),
      "text/plain; charset=utf-8",
      "sniffed",
    );
  });

  test("304 for If-None-Match and If-Modified-Since", async () => {
    assert.equal((await req("/site/data.bin", { headers: { "if-none-match": etag } })).status, 304);
    assert.equal((await req("/site/data.bin", { headers: { "if-none-match": `W/${etag}` } })).status, 304);
    assert.equal((await req("/site/data.bin", { headers: { "if-none-match": '"other"' } })).status, 200);
    const lm = (await req("/site/data.bin", { method: "HEAD" })).headers.get("last-modified")!;
    assert.equal((await req("/site/data.bin", { headers: { "if-modified-since": lm } })).status, 304);
    assert.equal(
      (await req("/site/data.bin", { headers: { "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT" } }))
        .status,
      200,
    );
    assert.equal((await req("/site/data.bin", { headers: { "if-match": '"nope"' } })).status, 412);
  });

  test("ranges: single, suffix, open-ended, multiple, unsatisfiable, If-Range", async () => {
    const get = (range: string, extra: Record<string, string> = {}) =>
      req("/site/data.bin", { headers: { range, ...extra } });
    let r = await get(`bytes=${CHUNK - 2}-${CHUNK + 1}`);
    assert.equal(r.status, 206);
    assert.equal(r.headers.get("content-range"), `bytes ${CHUNK - 2}-${CHUNK + 1}/${body.length}`);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), body.subarray(CHUNK - 2, CHUNK + 2));
    r = await get("bytes=-5");
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), body.subarray(body.length - 5));
    r = await get(`bytes=${3 * CHUNK}-`);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), body.subarray(3 * CHUNK));
    r = await get("bytes=0-1,10-12");
    assert.equal(r.status, 206);
    const ct = r.headers.get("content-type")!;
    assert.match(ct, /^multipart\/byteranges; boundary=/);
    const text = Buffer.from(await r.arrayBuffer());
    assert.equal(text.length, Number(r.headers.get("content-length")));
    assert.ok(text.includes(Buffer.from(`content-range: bytes 0-1/${body.length}`)));
    assert.ok(text.includes(Buffer.concat([Buffer.from("\r\n\r\n"), body.subarray(10, 13)])));
    r = await get(`bytes=${body.length}-`);
    assert.equal(r.status, 416);
    assert.equal(r.headers.get("content-range"), `bytes */${body.length}`);
    assert.equal((await get("bytes=oops")).status, 200, "a malformed Range is ignored");
    assert.equal((await get("bytes=0-0", { "if-range": etag })).status, 206);
    assert.equal((await get("bytes=0-0", { "if-range": '"stale"' })).status, 200);
  });

  test("directories: index.html, redirects, listings; 404 for missing", async () => {
    let r = await req("/site/");
    assert.equal(r.status, 200);
    assert.match(await r.text(), /<body>hi<\/body>/);
    r = await req("/site", { redirect: "manual" });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get("location"), "/site/");
    r = await req("/site/sub/");
    assert.equal(r.status, 200);
    assert.match(await r.text(), /href="\.\/deep\.txt"/);
    r = await req("/");
    assert.match(await r.text(), /href="\.\/site\/"/);
    assert.equal((await req("/nothing/here")).status, 404);
    assert.equal((await req("/nothing/")).status, 404);
  });

  test("?version=N serves an old version as immutable", async () => {
    await put("/v.txt", "one");
    await put("/v.txt", "two");
    const r = await req("/v.txt?version=1");
    assert.equal(await r.text(), "one");
    assert.match(r.headers.get("cache-control")!, /immutable/);
    assert.equal(await (await req("/v.txt")).text(), "two");
    assert.equal((await req("/v.txt?version=9")).status, 404);
    assert.equal((await req("/v.txt?version=abc")).status, 400);
  });

  test("the same over HTTP/2 (h2c) with curl", async () => {
    const { stdout } = await run(
      "curl",
      [
        "-s",
        "--http2-prior-knowledge",
        "-H",
        `host: ${host}`,
        "-H",
        auth.authorization!.replace(/^/, "authorization: "),
        "-r",
        "0-3",
        `${ts.url}/site/data.bin`,
        "-o",
        "-",
        "-w",
        "%{http_code} %{http_version}",
      ],
      { encoding: "latin1" },
    );
    assert.match(stdout, /206 2$/);
  });
});

describe("writes", () => {
  test("201 for a new path, 204 for an overwrite, empty bodies, content type kept", async () => {
    let r = await put("/w/a.json", '{"a":1}', { "content-type": "application/json" });
    assert.equal(r.status, 201);
    const created = (await r.json()) as { version: number; size: number };
    assert.equal(created.version, 1);
    r = await put("/w/a.json", '{"a":2}', { "content-type": "application/json" });
    assert.equal(r.status, 204);
    assert.match(r.headers.get("etag")!, /^"[0-9a-f]{64}"$/);
    assert.equal((await req("/w/a.json")).headers.get("content-type"), "application/json");
    r = await put("/w/empty", Buffer.alloc(0));
    assert.equal(r.status, 201);
    const e = await req("/w/empty");
    assert.equal(e.status, 200);
    assert.equal(e.headers.get("content-length"), "0");
  });

  test("preconditions: If-None-Match *, If-Match *, If-Match etag; 412 writes nothing", async () => {
    assert.equal((await put("/p/x", "1", { "if-match": "*" })).status, 412, "must exist");
    assert.equal((await put("/p/x", "1", { "if-none-match": "*" })).status, 201);
    assert.equal((await put("/p/x", "2", { "if-none-match": "*" })).status, 412);
    const etag = (await req("/p/x", { method: "HEAD" })).headers.get("etag")!;
    assert.equal((await put("/p/x", "3", { "if-match": '"0000"' })).status, 412);
    assert.equal(
      (await put("/p/x", "3", { "if-match": `W/${etag}` })).status,
      412,
      "weak tags never match strongly",
    );
    assert.equal((await put("/p/x", "3", { "if-match": etag })).status, 204);
    assert.equal((await put("/p/x", "4", { "if-match": etag })).status, 412, "the etag moved on");
    assert.equal((await put("/p/x", "4", { "if-match": "garbage" })).status, 400);
    const versions = await rows(
      "SELECT count(*)::INT8 AS n FROM file_versions WHERE tenant_id = $1 AND path = $2",
      [tenant, Buffer.from("/p/x")],
    );
    assert.equal(Number(versions[0].n), 2);
  });

  test("413: before storing anything with a declared length; nothing visible without one", async () => {
    const before = Number((await rows("SELECT count(*)::INT8 AS n FROM chunks"))[0].n);
    assert.equal((await put("/big", randomBytes(LIMIT + 1))).status, 413);
    assert.equal(
      Number((await rows("SELECT count(*)::INT8 AS n FROM chunks"))[0].n),
      before,
      "nothing was stored",
    );
    // A chunked body with no declared length is cut off once it passes the limit.
    const u = new URL(ts.url);
    const status = await new Promise<number>((resolve, reject) => {
      const r = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: "/big2",
          method: "PUT",
          agent: false,
          headers: { ...auth, "transfer-encoding": "chunked" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      r.on("error", (e) => (r.destroyed ? undefined : reject(e)));
      const piece = randomBytes(256 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent <= LIMIT + piece.length && !r.destroyed) {
          sent += piece.length;
          if (!r.write(piece)) return void r.once("drain", pump);
        }
        r.end();
      };
      pump();
    });
    assert.equal(status, 413);
    assert.equal((await req("/big2")).status, 404);
    assert.equal((await req("/big")).status, 404);
    // Chunks that streamed in before the limit was passed are invisible and left to garbage collection.
    assert.equal(
      (await rows("SELECT 1 FROM file_versions WHERE path = $1", [Buffer.from("/big2")])).length,
      0,
    );
  });

  test("curl -T of a multi-chunk file streams in", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const file = `/tmp/cr-http-${process.pid}`;
    await import("node:fs/promises").then((fs) => fs.writeFile(file, data));
    const { stdout } = await run("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-T",
      file,
      "-H",
      `host: ${host}`,
      "-H",
      `authorization: ${auth.authorization}`,
      `${ts.url}/curl/upload.bin`,
    ]);
    assert.equal(stdout, "201");
    assert.deepEqual(Buffer.from(await (await req("/curl/upload.bin")).arrayBuffer()), data);
  });

  test("a client that disconnects mid-upload leaves nothing visible", async () => {
    const u = new URL(ts.url);
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once("connect", r));
    sock.write(
      `PUT /cut.bin HTTP/1.1\r\nhost: ${host}\r\nauthorization: ${auth.authorization}\r\ncontent-length: ${LIMIT}\r\n\r\n`,
    );
    sock.write(randomBytes(LIMIT / 2));
    await new Promise((r) => setTimeout(r, 300));
    sock.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await req("/cut.bin")).status, 404);
    assert.equal(
      (await rows("SELECT 1 FROM file_versions WHERE path = $1", [Buffer.from("/cut.bin")])).length,
      0,
    );
  });

  test("an error answer midway through a body reaches the client still sending, on HTTP/1.1 and HTTP/2", {
    timeout: 60_000,
  }, async () => {
    const u = new URL(ts.url);
    const first = randomBytes(64 * 1024);
    const rest = randomBytes(LIMIT - first.length); // past the first transfer: the write begins midway
    /** PUT over HTTP/1.1: sends `first`, runs `between`, then the rest; the status or the client error. */
    const h1 = (path: string, headers: Record<string, string>, between: () => Promise<void>) =>
      new Promise<string>((resolve) => {
        const r = http.request(
          {
            host: u.hostname,
            port: u.port,
            path,
            method: "PUT",
            agent: false,
            headers: { ...auth, ...headers },
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve(`${res.statusCode} ${text.trim()}`));
          },
        );
        r.on("error", (e) => resolve(`client error ${(e as NodeJS.ErrnoException).code}`));
        r.setTimeout(10_000, () => {
          resolve("client timeout");
          r.destroy();
        });
        r.write(first);
        void between().then(() => r.end(rest));
      });
    // Another writer creates the path while this body is on its way: 412 at the first transfer.
    for (let i = 0; i < 5; i++) {
      const path = `/race/h1-${i}.bin`;
      const got = await h1(path, { "if-none-match": "*", "content-length": String(LIMIT) }, async () => {
        assert.equal((await put(path, "winner", { "if-none-match": "*" })).status, 201);
      });
      assert.match(got, /^412 .*already exists|^412 /);
      assert.equal(await (await req(path)).text(), "winner");
    }
    // A chunked body passing the size limit: 413, seen by the client, not a reset.
    const over = await h1("/race/too-big.bin", { "transfer-encoding": "chunked" }, async () => {});
    const again = await new Promise<string>((resolve) => {
      const r = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: "/race/too-big.bin",
          method: "PUT",
          agent: false,
          headers: { ...auth, "transfer-encoding": "chunked" },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(String(res.statusCode)));
        },
      );
      r.on("error", (e) => resolve(`client error ${(e as NodeJS.ErrnoException).code}`));
      r.write(rest);
      r.write(rest);
      r.end(first);
    });
    assert.match(over, /^201 /); // exactly at the limit: stored
    assert.equal(again, "413");
    // Refused before reading anything (the early precondition check), with a large body.
    const early = await h1(
      "/race/h1-0.bin",
      { "if-none-match": "*", "content-length": String(LIMIT) },
      async () => {},
    );
    assert.match(early, /^412 /);

    // HTTP/2: the answer, then RST_STREAM(NO_ERROR) asking the client to stop sending.
    const { connect } = await import("node:http2");
    const session = connect(ts.url);
    try {
      const h2 = (path: string, between: () => Promise<void>) =>
        new Promise<string>((resolve) => {
          const stream = session.request({
            ":method": "PUT",
            ":path": path,
            "if-none-match": "*",
            "content-length": String(LIMIT),
            ...auth,
          });
          let status = 0;
          let text = "";
          stream.on("response", (h) => {
            status = Number(h[":status"]);
          });
          stream.setEncoding("utf8");
          stream.on("data", (d) => (text += d));
          stream.on("error", (e) => resolve(`client error ${(e as NodeJS.ErrnoException).code}`));
          stream.on("close", () => resolve(`${status} ${text.trim()} rst=${stream.rstCode}`));
          setTimeout(() => resolve("client timeout"), 10_000).unref();
          stream.write(first);
          void between().then(() => stream.end(rest));
        });
      const path = "/race/h2.bin";
      const got = await h2(path, async () => {
        assert.equal((await put(path, "winner", { "if-none-match": "*" })).status, 201);
      });
      assert.match(got, /^412 .* rst=0$/);
      assert.equal(await (await req(path)).text(), "winner");
    } finally {
      session.close();
    }
  });

  test("DELETE: 204, then 404; needs write", async () => {
    await put("/d/x", "x");
    assert.equal((await req("/d/x", { method: "DELETE" })).status, 204);
    assert.equal((await req("/d/x", { method: "DELETE" })).status, 404);
    assert.equal((await req("/d/x")).status, 404);
  });

  test("405 for other methods", async () => {
    const r = await req("/d/x", { method: "PATCH", body: "x" });
    assert.equal(r.status, 405);
    assert.match(r.headers.get("allow")!, /GET/);
  });
});

describe("paths and access", () => {
  test("traversal and malformed paths are 400", async () => {
    for (const p of [
      "/a/../etc/passwd",
      "/a/./b",
      "/a//b",
      "/%2e%2e/x",
      "/a%2Fb",
      "/a%00b",
      "/bad%zz",
      "//[x/y",
    ]) {
      const line = await raw(
        `GET ${p} HTTP/1.1\r\nhost: ${host}\r\nauthorization: ${auth.authorization}\r\nconnection: close\r\n\r\n`,
      );
      assert.match(line, /^HTTP\/1\.1 400/, `${p}: ${line}`);
    }
  });

  test("anonymous: the public scratchpad is readable, a private tenant is 401", async () => {
    await put("/secret", "s");
    const anon = await fetch(`${ts.url}/secret`, { headers: { host } });
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get("www-authenticate")!, /Bearer/);
    assert.equal((await hostReq("other.example", "/pub.txt", "PUT", "public", auth)).status, 201);
    const pub = await hostReq("Unknown.Host:8080", "/pub.txt");
    assert.equal(pub.text, "public", "unknown hosts fall back to the * vhost (the scratchpad)");
    assert.equal(
      (await hostReq("other.example", "/pub.txt", "PUT", "x")).status,
      401,
      "the public may read, not write",
    );
  });

  test("a bad token is 401, not a silent downgrade; a user without the grant gets 403", async () => {
    const r = await fetch(`${ts.url}/secret`, { headers: { authorization: "Bearer nope" } });
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate")!, /invalid_token/);
    const p = await ts
      .client(Principals, ts.superToken)
      .ensure({ principal: { claimsJson: '{"name":"web"}' } });
    const login = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: p.principal!.id,
        capabilities: { read: true, write: true, delegate: true },
        scope: { kind: { case: "onPrincipal", value: p.principal!.id } },
        expiresAt: timestampFromDate(new Date(Date.now() + 600_000)),
      }),
    });
    const r2 = await fetch(`${ts.url}/secret`, { headers: { authorization: `Bearer ${login.token!.jwt}` } });
    assert.equal(r2.status, 403);
    const cookie = await fetch(`${ts.url}/secret`, { headers: { cookie: `authorization=${ts.superToken}` } });
    assert.equal(cookie.status, 200, "the login cookie is accepted");
  });

  test("vhost changes are served within the refresh window", async () => {
    const t2 = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "web2" } })).tenant!.id;
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "two.example", tenantId: t2 } });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await hostReq("TWO.example:1234", "/only-in-two", "PUT", "2", auth)).status, 201);
    assert.equal((await hostReq("two.example", "/only-in-two", "GET", undefined, auth)).text, "2");
    assert.equal((await req("/only-in-two")).status, 404);
  });
});

describe("signed URLs", () => {
  const files = () => ts.client(Files, ts.superToken);

  test("retrieve serves the file with a download name, ranges and conditionals", async () => {
    await put("/dl/report final.txt", "0123456789");
    const r = await files().retrieve({ tenantId: tenant, path: "/dl/report final.txt" });
    assert.match(r.getUri, /^\/_\/v0\/retrieve\/report%20final\.txt\?access_token=/);
    const exp = Number(r.expiresAt!.seconds) * 1000 - Date.now();
    // 24 h by default, but never beyond the caller's own session (1 h for the test super session).
    assert.ok(exp > 50 * 60_000 && exp <= 3600_000, `expires in ${exp} ms`);
    const long = await files().retrieve({
      tenantId: tenant,
      path: "/dl/report final.txt",
      validFor: durationFromMs(30 * 60_000),
    });
    const exp2 = Number(long.expiresAt!.seconds) * 1000 - Date.now();
    assert.ok(exp2 > 29 * 60_000 && exp2 <= 30 * 60_000);
    const g = await fetch(`${ts.url}${r.getUri}`);
    assert.equal(g.status, 200);
    assert.equal(await g.text(), "0123456789");
    assert.match(g.headers.get("content-disposition")!, /filename="report final.txt"/);
    const part = await fetch(`${ts.url}${r.getUri}`, { headers: { range: "bytes=2-3" } });
    assert.equal(await part.text(), "23");
    assert.equal(
      (await fetch(`${ts.url}${r.getUri}`, { headers: { "if-none-match": g.headers.get("etag")! } })).status,
      304,
    );
    assert.equal((await fetch(`${ts.url}${r.getUri}`, { method: "PUT", body: "x" })).status, 405);
  });

  test("a version-pinned URL keeps serving that version", async () => {
    await put("/dl/pinned", "v1");
    const r = await files().retrieve({ tenantId: tenant, path: "/dl/pinned", version: 1n });
    await put("/dl/pinned", "v2");
    assert.equal(await (await fetch(`${ts.url}${r.getUri}`)).text(), "v1");
  });

  test("expired, tampered and revoked URLs are 401; missing files 404", async () => {
    await put("/dl/t", "t");
    const short = await files().retrieve({ tenantId: tenant, path: "/dl/t", validFor: durationFromMs(1000) });
    const tampered = short.getUri.replace(
      /access_token=(.{20})(.)/,
      (_, a, c) => `access_token=${a}${c === "A" ? "B" : "A"}`,
    );
    assert.equal((await fetch(`${ts.url}${tampered}`)).status, 401);
    assert.equal((await fetch(`${ts.url}/_/v0/retrieve/t`)).status, 401);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await fetch(`${ts.url}${short.getUri}`);
    assert.equal(expired.status, 401);
    assert.match(await expired.text(), /expired/);
    // Revoking the session a URL was minted under revokes the URL.
    const s = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/dl/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 600_000)),
      }),
    });
    const url = await ts.client(Files, s.token!.jwt).retrieve({ tenantId: tenant, path: "/dl/t" });
    assert.equal((await fetch(`${ts.url}${url.getUri}`)).status, 200);
    await ts.client(Tokens, ts.superToken).invalidate({ kind: { case: "id", value: s.issued!.id } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await fetch(`${ts.url}${url.getUri}`)).status, 401);
    const gone = await files().retrieve({ tenantId: tenant, path: "/dl/t" });
    await req("/dl/t", { method: "DELETE" });
    assert.equal((await fetch(`${ts.url}${gone.getUri}`)).status, 404);
  });

  test("/_/v0/config returns a CLI config for the presented session", async () => {
    const r = await fetch(`${ts.url}/_/v0/config`, { headers: auth });
    assert.equal(r.status, 200);
    const cfg = (await r.json()) as { server: string; token: string; session: { principalId: string } };
    assert.equal(cfg.token, ts.superToken);
    assert.equal(cfg.server, ts.url);
    assert.equal(cfg.session.principalId, ts.rootPrincipalId);
    assert.equal((await fetch(`${ts.url}/_/v0/config`)).status, 401);
    assert.equal((await fetch(`${ts.url}/_/v0/other`)).status, 404);
  });
});
