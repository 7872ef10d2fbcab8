/**
 * TLS on the one port: HTTPS with HTTP/2 and HTTP/1.1 chosen by ALPN (gRPC included), a
 * self-signed development certificate, certificate reload (SIGHUP calls reloadTls), and refusal
 * of unusable settings.
 */
import assert from "node:assert/strict";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { Diags } from "@cacheroach/proto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { generate } from "selfsigned";
import { ConfigError, resolveConfig } from "../src/config.js";
import { TlsError } from "../src/net/tls-material.js";
import type { RunningServer } from "../src/server.js";
import { startServer } from "../src/server.js";
import { mintBootstrapToken } from "../src/signing-keys.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

async function makeCert(name: string): Promise<{ cert: string; key: string }> {
  const p = await generate([{ name: "commonName", value: name }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
  });
  return { cert: p.cert, key: p.private };
}

/** The certificate a new TLS connection to `url` is shown (unverified: we only look at it). */
function presented(url: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tls.connect(
      { host: hostname, port: Number(port), rejectUnauthorized: false, ALPNProtocols: ["h2"] },
      () => {
        const raw = sock.getPeerX509Certificate();
        sock.end();
        if (raw) resolve(raw);
        else reject(new Error("no certificate"));
      },
    );
    sock.on("error", reject);
  });
}

describe("TLS", () => {
  let db: TestDatabase;
  let dir: string;
  const key = new Uint8Array(randomBytes(32));
  const servers: RunningServer[] = [];

  before(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "cacheroach-tls-"));
  });
  after(async () => {
    for (const s of servers) await s.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (options: Parameters<typeof startServer>[0]) => {
    const s = await startServer({
      bind: "127.0.0.1:0",
      databaseUrl: db.url,
      signingKeys: [key],
      logLevel: "silent",
      dataDir: join(dir, "data"),
      ...options,
    });
    servers.push(s);
    return s;
  };

  test("self-signed: HTTPS with HTTP/1.1 and HTTP/2 by ALPN, and gRPC, all trusting the kept certificate", async () => {
    const s = await start({ tlsSelfSigned: true });
    assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await readFile(join(dir, "data", "tls-self-signed.crt"));
    assert.ok(new X509Certificate(ca).checkIP("127.0.0.1"));

    const h1 = await new Promise<{ status: number; alpn: string | false }>((resolve, reject) => {
      https
        .get(`${s.url}/healthz`, { ca, ALPNProtocols: ["http/1.1"] } as https.RequestOptions, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, alpn: (res.socket as tls.TLSSocket).alpnProtocol ?? false });
        })
        .on("error", reject);
    });
    assert.deepEqual(h1, { status: 200, alpn: "http/1.1" });

    const session = http2.connect(s.url, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ":path": "/healthz" });
        req.on("response", (h) => resolve(Number(h[":status"])));
        req.on("error", reject);
        req.resume();
      });
      assert.equal(status, 200);
      assert.equal(session.alpnProtocol, "h2");
    } finally {
      session.close();
    }

    const diags = createClient(Diags, createGrpcTransport({ baseUrl: s.url, nodeOptions: { ca } }));
    const echo = await diags.echo(
      {},
      { headers: { authorization: `Bearer ${await mintBootstrapToken(key)}` } },
    );
    assert.ok(echo.version.length > 0, "gRPC over TLS answered");

    // It really is TLS: an untrusting client and a cleartext request both fail.
    await assert.rejects(fetch(`${s.url}/healthz`), "an unknown issuer is refused by a verifying client");
    await assert.rejects(fetch(`${s.url.replace("https:", "http:")}/healthz`));

    // A restart keeps the certificate (clients trust it once).
    const again = await start({ tlsSelfSigned: true, dataDir: join(dir, "data") });
    assert.equal((await presented(again.url)).fingerprint256, new X509Certificate(ca).fingerprint256);
  });

  test("certificate files: served, reloaded for new connections, and a bad pair at reload keeps the old one", async () => {
    const certFile = join(dir, "server.crt");
    const keyFile = join(dir, "server.key");
    const a = await makeCert("first");
    const b = await makeCert("second");
    await writeFile(certFile, a.cert);
    await writeFile(keyFile, a.key);
    const s = await start({ tlsCertFile: certFile, tlsKeyFile: keyFile, dataDir: join(dir, "files") });
    assert.match((await presented(s.url)).subject, /CN=first/);

    await writeFile(certFile, b.cert);
    await writeFile(keyFile, b.key);
    assert.equal(await s.reloadTls(), true);
    assert.match((await presented(s.url)).subject, /CN=second/);

    await writeFile(keyFile, a.key); // no longer the key of the certificate
    await assert.rejects(
      s.reloadTls(),
      (e: unknown) => e instanceof TlsError && /not usable/.test(e.message),
    );
    assert.match((await presented(s.url)).subject, /CN=second/, "the pair in use stays");

    const plain = await start({ dataDir: join(dir, "plain") });
    assert.equal(await plain.reloadTls(), false, "nothing to reload without certificate files");
  });

  test("unusable TLS settings are refused before anything starts", async () => {
    assert.throws(
      () => resolveConfig({ tlsCertFile: "a.pem" }),
      (e: unknown) => e instanceof ConfigError && /tls-cert needs tls-key/.test(e.message),
    );
    assert.throws(() => resolveConfig({ tlsKeyFile: "a.pem" }), /tls-key needs tls-cert/);
    assert.throws(
      () => resolveConfig({ tlsSelfSigned: true, tlsCertFile: "a", tlsKeyFile: "b" }),
      /cannot be combined/,
    );
    await assert.rejects(
      start({
        tlsCertFile: join(dir, "missing.crt"),
        tlsKeyFile: join(dir, "missing.key"),
        dataDir: join(dir, "m"),
      }),
      (e: unknown) =>
        e instanceof TlsError && /cannot read the TLS certificate .*missing\.crt/.test(e.message),
    );
  });
});
