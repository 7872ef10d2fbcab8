import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { hostname } from "node:os";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Files, SessionSchema, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { CacheroachError } from "../src/errors.js";
import { startTestServer, type TestServer } from "../src/testing.js";
import { addressPolicy } from "../src/uploads/address-policy.js";
import { connectChecked, type Dialer } from "../src/uploads/remote-fetch.js";
import { rejects } from "./connect-assert.js";

let origin: http.Server;
let base: string;
const big = randomBytes(300 * 1024);
let seenIfModifiedSince: string | undefined;
/** Every request the stand-in remote server received ("METHOD url"). */
const originRequests: string[] = [];
let seenAuthorization: string | undefined;
/** A second local server that must never be reached (a redirect target). */
let canary: http.Server;
let canaryHits = 0;
let canaryPort: number;

before(async () => {
  // A stand-in remote web server on loopback.
  origin = http.createServer((req, res): void => {
    originRequests.push(`${req.method} ${req.url}`);
    seenIfModifiedSince = req.headers["if-modified-since"];
    seenAuthorization = req.headers.authorization;
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
    if (req.url?.startsWith("/redirect/")) {
      const to = decodeURIComponent(req.url.slice("/redirect/".length));
      res.writeHead(302, { location: to.replace("PORT", String(canaryPort)) });
      res.end();
      return;
    }
    if (req.url?.split("?")[0] === "/echo-header") {
      res.writeHead(200);
      res.end(String(req.headers["x-token"]));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => origin.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  canary = http.createServer((_req, res) => {
    canaryHits++;
    res.end("secret");
  });
  await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
  canaryPort = (canary.address() as AddressInfo).port;
});
after(async () => {
  origin.closeAllConnections();
  canary.closeAllConnections();
  await new Promise((r) => origin.close(r));
  await new Promise((r) => canary.close(r));
});

/** Every network-policy refusal: what it is and how the operator changes it. */
const POLICY_REFUSAL =
  /^fetch refused by network policy: .*; the operator can allow private targets with --fetch-allow-private$/;

/** Rows in every table a fetch could write to. */
async function storedRows(ts: TestServer): Promise<Record<string, number>> {
  const db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  try {
    const out: Record<string, number> = {};
    for (const t of [
      "chunks",
      "ropes",
      "rope_chunks",
      "uploads",
      "upload_chunks",
      "file_versions",
      "files",
    ]) {
      const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
      out[t] = Number(r.rows[0]!.n);
    }
    return out;
  } finally {
    await db.end();
  }
}

describe("with the default network policy (public targets only)", () => {
  let ts: TestServer;
  let tenant: string;
  before(async () => {
    // A short deadline: a target that slipped through would otherwise hang the test, not fail it.
    ts = await startTestServer({ fetchTimeoutMs: 3000 });
    tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "ssrf" } })).tenant!.id;
  });
  after(async () => ts?.close());

  const port = () => new URL(base).port;
  /** [URL, what the refusal must say]; each would reach the stand-in server on loopback if let through. */
  const targets = (): [string, RegExp][] => [
    [`${base}/hello.txt`, /: 127\.0\.0\.1 is a loopback address;/],
    [
      `http://[::ffff:7f00:1]:${port()}/hello.txt`,
      /\[::ffff:7f00:1\] is a loopback address, carrying IPv4 127\.0\.0\.1/,
    ],
    [`http://[::ffff:127.0.0.1]:${port()}/hello.txt`, /\[::ffff:7f00:1\] is a loopback address/],
    [`http://[0:0:0:0:0:ffff:7f00:1]:${port()}/hello.txt`, /\[::ffff:7f00:1\] is a loopback address/],
    [
      `http://[::127.0.0.1]:${port()}/hello.txt`,
      /\[::7f00:1\] is a loopback address, carrying IPv4 127\.0\.0\.1/,
    ],
    [`http://[64:ff9b::7f00:1]:${port()}/hello.txt`, /\[64:ff9b::7f00:1\] is a loopback address/],
    [`http://[2002:7f00:1::]:${port()}/hello.txt`, /\[2002:7f00:1::\] is a loopback address/],
    [`http://[::1]:${port()}/hello.txt`, /\[::1\] is a loopback address/],
    [`http://2130706433:${port()}/hello.txt`, /127\.0\.0\.1 is a loopback address/],
    [`http://0x7f.1:${port()}/hello.txt`, /127\.0\.0\.1 is a loopback address/],
    [`http://017700000001:${port()}/hello.txt`, /127\.0\.0\.1 is a loopback address/],
    [`http://0.0.0.0:${port()}/hello.txt`, /0\.0\.0\.0 is an unspecified address/],
    [`http://localhost:${port()}/hello.txt`, /localhost resolves to a loopback address/],
    [`http://LocalHost.:${port()}/hello.txt`, /localhost\. resolves to a loopback address/],
    [`http://app.localhost:${port()}/hello.txt`, /app\.localhost resolves to a loopback address/],
    // This machine's own name, which /etc/hosts maps to loopback: refused by its DNS answer.
    [`http://${hostname()}:${port()}/hello.txt`, /resolves to a loopback address \(127\./],
    [
      "http://169.254.169.254/latest/meta-data/",
      /169\.254\.169\.254 is a link-local address \(cloud metadata service\)/,
    ],
    [
      "http://[::ffff:169.254.169.254]/latest/meta-data/",
      /\[::ffff:a9fe:a9fe\] is a link-local address \(cloud metadata/,
    ],
    ["http://0xa9fea9fe/latest/meta-data/", /169\.254\.169\.254 is a link-local address/],
    ["http://10.0.0.1/", /a private address/],
    ["http://100.64.0.1/", /carrier-grade NAT/],
    ["http://198.18.0.1/", /reserved/],
    ["http://[fd00::1]/", /unique-local/],
    ["http://[fe80::1]/", /link-local/],
    ["http://224.0.0.1/", /multicast/],
    ["http://255.255.255.255/", /broadcast/],
  ];

  test("every form of a non-public target is refused by network policy, and nothing is stored", async () => {
    const up = ts.client(Uploads, ts.superToken);
    const before = await storedRows(ts);
    const asked = originRequests.length;
    for (const [url, why] of targets()) {
      await assert.rejects(up.fetch({ tenantId: tenant, path: "/f", remoteUrl: url }), (err: unknown) => {
        assert.ok(err instanceof ConnectError, `${url}: ${err}`);
        assert.equal(err.code, Code.PermissionDenied, `${url}: ${Code[err.code]} ${err.rawMessage}`);
        assert.match(err.rawMessage, POLICY_REFUSAL, url);
        assert.match(err.rawMessage, why, url);
        return true;
      });
    }
    assert.deepEqual(originRequests.slice(asked), [], "the stand-in server was never asked");
    assert.deepEqual(await storedRows(ts), before, "no chunk, rope, upload or file row was written");
    await rejects(
      ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/f" }),
      Code.NotFound,
      /no file/,
    );
  });

  test("refusals never show the URL's credentials; bad URLs are still bad requests", async () => {
    const up = ts.client(Uploads, ts.superToken);
    await assert.rejects(
      up.fetch({
        tenantId: tenant,
        path: "/f",
        remoteUrl: `http://user:s3cret@[::ffff:7f00:1]:${port()}/hello.txt`,
      }),
      (err: Error) => /refused by network policy/.test(err.message) && !err.message.includes("s3cret"),
    );
    await assert.rejects(
      up.fetch({ tenantId: tenant, path: "/f", remoteUrl: "http://user:s3cret@exa mple/" }),
      (err: Error) => /is not a URL/.test(err.message) && !err.message.includes("s3cret"),
    );
    await rejects(
      up.fetch({ tenantId: tenant, path: "/f", remoteUrl: "file:///etc/passwd" }),
      Code.InvalidArgument,
      /http or https/,
    );
  });
});

describe("connectChecked: DNS answers and the connected peer", () => {
  const strict = addressPolicy(false);
  /** A resolver that answers `addresses` and a connector that lands on the local stand-in server. */
  const dialer = (addresses: string[], connects: string[]): Dialer => ({
    lookup: async () => addresses.map((address) => ({ address, family: net.isIP(address) })),
    connect: (address) => {
      connects.push(address);
      return net.connect({ host: "127.0.0.1", port: Number(new URL(base).port) });
    },
  });
  const refusedWith = (re: RegExp) => (err: unknown) => {
    assert.ok(err instanceof CacheroachError, String(err));
    assert.equal(err.code, "ERR_NETWORK_POLICY");
    assert.match(err.message, /^fetch refused by network policy: /);
    assert.match(err.message, re);
    return true;
  };

  test("a name with any non-public answer is refused before connecting", async () => {
    for (const answers of [
      ["93.184.216.34", "127.0.0.1"],
      ["::ffff:7f00:1"],
      ["2606:4700::1111", "fd00::1"],
      ["64:ff9b::a9fe:a9fe"],
    ]) {
      const connects: string[] = [];
      await assert.rejects(
        connectChecked(
          new URL("http://rebind.example/"),
          strict,
          new AbortController().signal,
          dialer(answers, connects),
        ),
        refusedWith(/rebind\.example resolves to /),
      );
      assert.deepEqual(connects, [], `${answers.join(",")}: no connection attempted`);
    }
  });

  test("a connection that lands on a non-public peer is refused before a byte is sent", async () => {
    const asked = originRequests.length;
    const connects: string[] = [];
    await assert.rejects(
      connectChecked(
        new URL("http://rebind.example/"),
        strict,
        new AbortController().signal,
        dialer(["93.184.216.34"], connects),
      ),
      refusedWith(/rebind\.example connected to a loopback address \(127\.0\.0\.1\)/),
    );
    assert.deepEqual(connects, ["93.184.216.34"]);
    assert.equal(originRequests.length, asked);
  });

  test("with private targets allowed, the same connection is made", async () => {
    const connects: string[] = [];
    const socket = await connectChecked(
      new URL("http://rebind.example/"),
      addressPolicy(true),
      new AbortController().signal,
      dialer(["127.0.0.1"], connects),
    );
    assert.equal(socket.remoteAddress, "127.0.0.1");
    socket.destroy();
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

  test("credentials in the URL authenticate the request but are not stored in the file's meta", async () => {
    const up = ts.client(Uploads, ts.superToken);
    const port = new URL(base).port;
    const r = await up.fetch({
      tenantId: tenant,
      path: "/web/creds",
      remoteUrl: `http://alice:s3cret@127.0.0.1:${port}/echo-header?q=1#frag`,
    });
    assert.equal(r.remoteHttpCode, 200);
    assert.equal(seenAuthorization, `Basic ${Buffer.from("alice:s3cret").toString("base64")}`);
    const stat = await ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/web/creds" });
    assert.equal(stat.file!.meta["fetched-from"], `http://127.0.0.1:${port}/echo-header?q=1#frag`);
    assert.ok(!JSON.stringify(stat.file!.meta).includes("s3cret"));
  });

  test("a redirect is reported, never followed: its target is not contacted and nothing is stored", async () => {
    const up = ts.client(Uploads, ts.superToken);
    for (const to of [
      "http://127.0.0.1:PORT/secret",
      "http://[::ffff:7f00:1]:PORT/secret",
      "http://169.254.169.254/",
    ]) {
      const r = await up.fetch({
        tenantId: tenant,
        path: "/web/redirected",
        remoteUrl: `${base}/redirect/${encodeURIComponent(to)}`,
      });
      assert.equal(r.remoteHttpCode, 302, to);
      assert.equal(r.file, undefined, to);
    }
    assert.equal(canaryHits, 0, "the redirect target was never asked");
    await rejects(
      ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/web/redirected" }),
      Code.NotFound,
      /no file/,
    );
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
