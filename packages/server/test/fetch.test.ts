import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Files, SessionSchema, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import { startTestServer, type TestServer } from "../src/testing.js";
import { checkAddress } from "../src/uploads/remote-fetch.js";
import { rejects } from "./connect-assert.js";

let origin: http.Server;
let base: string;
const big = randomBytes(300 * 1024);
let seenIfModifiedSince: string | undefined;

before(async () => {
  // A stand-in remote web server on loopback.
  origin = http.createServer((req, res): void => {
    seenIfModifiedSince = req.headers["if-modified-since"];
    if (req.url === "/hello.txt") {
      if (req.headers["if-modified-since"]) {
        res.writeHead(304);
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("hello from afar");
      return;
    }
    if (req.url === "/big.bin") {
      res.writeHead(200, { "content-length": big.length });
      res.end(big);
      return;
    }
    if (req.url === "/stream.bin") {
      res.writeHead(200); // no length: the limit applies mid-stream
      res.write(big);
      res.end(big);
      return;
    }
    if (req.url === "/slow") return; // never answers
    if (req.url === "/echo-header") {
      res.writeHead(200);
      res.end(String(req.headers["x-token"]));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => origin.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
});
after(async () => {
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});

test("non-public addresses are classified", () => {
  for (const a of [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",
    "224.0.0.1",
  ]) {
    assert.throws(() => checkAddress(a), /refused/, a);
  }
  for (const a of ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"])
    assert.doesNotThrow(() => checkAddress(a), a);
});

describe("with the default SSRF guard", () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
  });
  after(async () => ts?.close());

  test("loopback and metadata-service targets are refused and nothing is stored", async () => {
    const up = ts.client(Uploads, ts.superToken);
    const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";
    await rejects(
      up.fetch({ tenantId: scratch, path: "/f", remoteUrl: `${base}/hello.txt` }),
      Code.PermissionDenied,
      /127\.0\.0\.1 is a loopback address/,
    );
    await rejects(
      up.fetch({ tenantId: scratch, path: "/f", remoteUrl: "http://localhost:1/x" }),
      Code.PermissionDenied,
      /loopback/,
    );
    await rejects(
      up.fetch({ tenantId: scratch, path: "/f", remoteUrl: "http://169.254.169.254/latest/meta-data" }),
      Code.PermissionDenied,
      /link-local/,
    );
    await rejects(
      up.fetch({ tenantId: scratch, path: "/f", remoteUrl: "http://[::1]:1/" }),
      Code.PermissionDenied,
      /loopback/,
    );
    await rejects(
      up.fetch({ tenantId: scratch, path: "/f", remoteUrl: "file:///etc/passwd" }),
      Code.InvalidArgument,
      /http or https/,
    );
    await rejects(
      ts.client(Files, ts.superToken).stat({ tenantId: scratch, path: "/f" }),
      Code.NotFound,
      /no file/,
    );
  });
});

describe("with private targets allowed by the operator", () => {
  let ts: TestServer;
  let tenant: string;
  before(async () => {
    ts = await startTestServer({ fetchAllowPrivate: true, fetchMaxBytes: 200 * 1024, fetchTimeoutMs: 500 });
    tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "fetch" } })).tenant!.id;
  });
  after(async () => ts?.close());

  test("200 stores the body; a second fetch sends If-Modified-Since and 304 changes nothing", async () => {
    const up = ts.client(Uploads, ts.superToken);
    const r = await up.fetch({ tenantId: tenant, path: "/web/hello.txt", remoteUrl: `${base}/hello.txt` });
    assert.equal(r.remoteHttpCode, 200);
    assert.equal(r.file!.version, 1n);
    assert.equal(r.file!.contentType, "text/plain");
    assert.equal(seenIfModifiedSince, undefined);
    const again = await up.fetch({
      tenantId: tenant,
      path: "/web/hello.txt",
      remoteUrl: `${base}/hello.txt`,
    });
    assert.equal(again.remoteHttpCode, 304);
    assert.ok(seenIfModifiedSince, "If-Modified-Since was sent");
    assert.equal(again.file, undefined);
    const stat = await ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/web/hello.txt" });
    assert.equal(stat.file!.version, 1n);
  });

  test("other statuses are reported without storing; headers are passed; bad headers refused", async () => {
    const up = ts.client(Uploads, ts.superToken);
    const r = await up.fetch({ tenantId: tenant, path: "/web/missing", remoteUrl: `${base}/nope` });
    assert.equal(r.remoteHttpCode, 404);
    assert.match(r.remoteHttpMessage, /404 Not Found/);
    const h = await up.fetch({
      tenantId: tenant,
      path: "/web/h",
      remoteUrl: `${base}/echo-header`,
      remoteHeaders: { "X-Token": "abc" },
    });
    assert.equal(h.file!.size, 3n);
    await rejects(
      up.fetch({ tenantId: tenant, path: "/web/h", remoteUrl: `${base}/x`, remoteHeaders: { Host: "evil" } }),
      Code.InvalidArgument,
      /may not be set/,
    );
    await rejects(
      up.fetch({ tenantId: tenant, path: "/web/h", remoteUrl: `${base}/x`, remoteMethod: "DELETE" }),
      Code.InvalidArgument,
      /GET or POST/,
    );
  });

  test("size and time are bounded", async () => {
    const up = ts.client(Uploads, ts.superToken);
    await rejects(
      up.fetch({ tenantId: tenant, path: "/web/big", remoteUrl: `${base}/big.bin` }),
      Code.ResourceExhausted,
      /exceeds/,
    );
    await rejects(
      up.fetch({ tenantId: tenant, path: "/web/stream", remoteUrl: `${base}/stream.bin` }),
      Code.ResourceExhausted,
      /exceeds/,
    );
    await rejects(
      up.fetch({ tenantId: tenant, path: "/web/slow", remoteUrl: `${base}/slow` }),
      Code.Unavailable,
      /within 500 ms/,
    );
    for (const p of ["/web/big", "/web/stream", "/web/slow"]) {
      await rejects(
        ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: p }),
        Code.NotFound,
        /no file/,
      );
    }
  });

  test("fetch needs the fetch capability as well as write", async () => {
    const s = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true, write: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    await rejects(
      ts
        .client(Uploads, s.token!.jwt)
        .fetch({ tenantId: tenant, path: "/web/x", remoteUrl: `${base}/hello.txt` }),
      Code.PermissionDenied,
      /lacks write,fetch/,
    );
  });
});
