/**
 * A wrong server URL gets a message saying what is wrong and which URL to use, and exit 7 — never
 * `unknown: unknown` or a raw TLS error: a path, no scheme, another scheme, https on a plain port,
 * http on a TLS port, an untrusted certificate, something other than cacheroach at the address.
 * From the user's side: bin/run.js in a child process against real servers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { listenHttp, spawnCli, useCliServer, useStartedServers, writeCliConfig } from "./helpers.js";

/** Messages on one line each (oclif wraps them at 80 columns otherwise). */
const env = { OCLIF_COLUMNS: "500", CACHEROACH_RETRY_SECONDS: "0" };

async function lsWith(dir: string, name: string, server: string) {
  const config = await writeCliConfig(join(dir, name), server, "some-token");
  const r = await spawnCli(["tenant", "ls", "-c", config], { env });
  assert.doesNotMatch(r.stderr, /unknown: unknown|EPROTO|ssl3_get_record/, r.stderr);
  return r;
}

describe("a plain-HTTP server", () => {
  const srv = useCliServer();

  test("a config URL with a path, no scheme or another scheme: exit 7, use http://host:port", async () => {
    const hostPort = new URL(srv.ts.url).host;
    const cases: [string, RegExp][] = [
      [`${srv.ts.url}/some/path`, /has a path: a cacheroach server's API is at the root/],
      [hostPort, /is not a URL \(no scheme\)/],
      [`ftp://${hostPort}`, /does not start with http:\/\/ or https:\/\//],
    ];
    for (const [i, [server, problem]] of cases.entries()) {
      const r = await lsWith(srv.dir, `bad-${i}.cfg`, server);
      assert.equal(r.code, 7, `${server}: ${r.stderr}`);
      assert.match(r.stderr, problem, server);
      assert.match(r.stderr, /this is not a cacheroach server URL/, server);
      assert.match(r.stderr, new RegExp(`use http://${hostPort} `), server);
    }
  });

  test("https on the plain port: it speaks plain HTTP, use http://", async () => {
    const https = srv.ts.url.replace("http:", "https:");
    const r = await lsWith(srv.dir, "https.cfg", https);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /the cacheroach server at 127\.0\.0\.1:\d+ speaks plain HTTP, not TLS/);
    assert.match(r.stderr, new RegExp(`use ${srv.ts.url}$`, "m"));
  });

  test("URLs on the command line are checked before any call (exit 7, as in a config)", async () => {
    const cfg = join(srv.dir, "never-written.cfg");
    const path = await spawnCli(
      ["bootstrap", "--signing-key", "x".repeat(44), "-c", cfg, `${srv.ts.url}/api`],
      {
        env,
      },
    );
    assert.equal(path.code, 7, path.stderr);
    assert.match(path.stderr, /has a path/);
    assert.match(path.stderr, new RegExp(`use ${srv.ts.url}$`, "m"));
    const bare = await spawnCli(["auth", "set", "-c", cfg, "--server", "localhost:13013", "--token", "t"], {
      env,
    });
    assert.equal(bare.code, 7, bare.stderr);
    assert.match(bare.stderr, /use http:\/\/localhost:13013/);
  });

  test("something else answering HTTP is not a cacheroach server", async () => {
    const other = await listenHttp((_req, res) => {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<h1>Not Found</h1>");
    });
    try {
      const r = await lsWith(srv.dir, "other.cfg", other.url);
      assert.equal(r.code, 7, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`${other.url} is not a cacheroach server: something else answers HTTP there`),
      );
    } finally {
      await other.close();
    }
  });
});

describe("a TLS server", () => {
  const started = useStartedServers();

  test("http on the TLS port: use https://; an untrusted certificate says how to trust it", async () => {
    const server = await started.start("tls", ["--tls-self-signed"]);
    assert.match(server.url, /^https:/);
    const http = server.url.replace("https:", "http:");
    const plain = await lsWith(started.dir, "http.cfg", http);
    assert.equal(plain.code, 7, plain.stderr);
    assert.match(plain.stderr, /speaks TLS \(HTTPS\)/);
    assert.match(plain.stderr, new RegExp(`use ${server.url}$`, "m"));

    const untrusted = await lsWith(started.dir, "tls.cfg", server.url);
    assert.equal(untrusted.code, 7, untrusted.stderr);
    assert.match(untrusted.stderr, /TLS certificate of https:\S+ is not trusted/);
    assert.match(untrusted.stderr, /NODE_EXTRA_CA_CERTS/);
  });
});
