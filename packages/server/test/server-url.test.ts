/**
 * The `server` a downloaded CLI config names comes from configuration, never from whatever
 * Host or X-Forwarded-Proto a request carried: a forged header must not point a CLI (and the
 * token in its config) at another server.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Tenants, VHosts } from "@cacheroach/proto";
import { ConfigError, resolveConfig } from "../src/config.js";
import { startTestServer, type TestServer } from "../src/testing.js";

/** GET /_/v0/config with the given headers; returns the config's `server`. */
function configServer(ts: TestServer, headers: Record<string, string>): Promise<string> {
  const u = new URL(ts.url);
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: u.hostname, port: u.port, path: "/_/v0/config", agent: false, headers },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode}: ${text}`));
          else resolve((JSON.parse(text) as { server: string }).server);
        });
      },
    );
    r.on("error", reject);
    r.end();
  });
}

describe("without a public URL", () => {
  let ts: TestServer;
  let port: string;
  before(async () => {
    ts = await startTestServer();
    port = new URL(ts.url).port;
    const t = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "site" } })).tenant!.id;
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "files.test", tenantId: t } });
  });
  after(async () => ts?.close());

  test("a Host naming this server or a configured vhost is used", async () => {
    const auth = { authorization: `Bearer ${ts.superToken}` };
    assert.equal(await configServer(ts, auth), ts.url);
    assert.equal(await configServer(ts, { ...auth, host: `localhost:${port}` }), `http://localhost:${port}`);
    assert.equal(
      await configServer(ts, { ...auth, host: `files.test:${port}` }),
      `http://files.test:${port}`,
    );
    assert.equal(await configServer(ts, { ...auth, host: "FILES.test" }), "http://files.test");
  });

  test("any other Host, and X-Forwarded-Proto, are ignored: the bind address is named", async () => {
    const auth = { authorization: `Bearer ${ts.superToken}` };
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `files.test:${Number(port) === 9 ? 10 : 9}`,
      `127.0.0.1:${Number(port) + 1}`,
      `evil.example@127.0.0.1:${port}`,
      `127.0.0.1:${port}/x`,
      "*",
    ]) {
      assert.equal(await configServer(ts, { ...auth, host }), ts.url, host);
    }
    assert.equal(await configServer(ts, { ...auth, "x-forwarded-proto": "https" }), ts.url);
    assert.equal(
      await configServer(ts, { ...auth, "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" }),
      ts.url,
    );
  });
});

describe("with a public URL", () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ publicUrl: "https://files.example.com" });
  });
  after(async () => ts?.close());

  test("configs name the public URL whatever the request says", async () => {
    const auth = { authorization: `Bearer ${ts.superToken}` };
    assert.equal(await configServer(ts, auth), "https://files.example.com");
    assert.equal(await configServer(ts, { ...auth, host: "evil.example" }), "https://files.example.com");
  });

  test("its origin, and https on this Host behind a TLS proxy, are same-origin for cookies", async () => {
    const cookie = `authorization=${ts.superToken}`;
    const port = new URL(ts.url).port;
    assert.equal(
      await configServer(ts, { cookie, origin: "https://files.example.com" }),
      "https://files.example.com",
    );
    assert.equal(
      await configServer(ts, { cookie, origin: `https://127.0.0.1:${port}` }),
      "https://files.example.com",
    );
    await assert.rejects(configServer(ts, { cookie, origin: "https://evil.example" }), /403/);
  });
});

describe("public URL and active-content hosts are validated", () => {
  test("bad public URLs are configuration errors naming the problem", () => {
    for (const [value, why] of [
      ["files.example.com", /not an absolute URL/],
      ["ftp://files.example.com", /http:\/\/ or https:\/\//],
      ["https://files.example.com/cacheroach", /path, query or fragment/],
      ["https://files.example.com/?x=1", /path, query or fragment/],
      ["https://files.example.com/#top", /path, query or fragment/],
      ["https://user:pw@files.example.com", /credentials/],
    ] as const) {
      assert.throws(
        () => resolveConfig({ publicUrl: value }),
        (e: unknown) => e instanceof ConfigError && why.test(e.message),
        value,
      );
    }
    assert.equal(
      resolveConfig({ publicUrl: "https://Files.Example.com:8443/" }).publicUrl?.href,
      "https://files.example.com:8443/",
    );
    assert.equal(resolveConfig({}).publicUrl, undefined);
  });

  test("active-content hosts must be bare host names", () => {
    for (const bad of ["http://site.test", "site.test:80", "a b", "site.test/x", ""]) {
      assert.throws(() => resolveConfig({ activeContentHosts: [bad] }), ConfigError, bad);
    }
    assert.deepEqual(
      [...resolveConfig({ activeContentHosts: ["Site.Test"] }).activeContentHosts],
      ["site.test"],
    );
  });
});
