/** `cacheroach file fetch` against a real server fetching from a local HTTP server. */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  errorText,
  jsonOut,
  type LocalHttp,
  listenHttp,
  runCli,
  useCliServer,
  useStartedServers,
} from "./helpers.js";

interface FetchOut {
  path: string;
  url: string;
  status: string;
  code: number;
  message: string;
  file?: { version: number; size: number };
  error?: string;
  errorCode?: string;
}

const LAST_MODIFIED = new Date("2024-01-02T03:04:05Z");

describe("file fetch", () => {
  let remote: LocalHttp | undefined;
  let base: string;
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  const srv = useCliServer({
    server: { fetchAllowPrivate: true },
    setup: async () => {
      remote = await listenHttp((req, res) => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
        const ims = req.headers["if-modified-since"];
        if (req.url === "/data/a.csv" || req.url === "/data/b%20c.txt") {
          if (ims && Date.parse(ims) >= LAST_MODIFIED.getTime()) {
            res.writeHead(304);
            res.end();
            return;
          }
          res.writeHead(200, { "content-type": "text/csv", "last-modified": LAST_MODIFIED.toUTCString() });
          res.end(req.url === "/data/a.csv" ? "a,b\n1,2\n" : "spaced\n");
          return;
        }
        if (req.url === "/echo/headers.json") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            JSON.stringify({ method: req.method, token: req.headers["x-token"], accept: req.headers.accept }),
          );
          return;
        }
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("no such thing");
      });
      base = remote.url;
    },
    teardown: async () => {
      await remote?.close();
    },
  });
  const cli = srv.cli;

  test("fetches URLs into <dir>/<file name>, and they can be read back", async () => {
    const r = await cli("file", "fetch", "/mirror/", `${base}/data/a.csv`, `${base}/data/b%20c.txt`);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /^Path\s+URL\s+Code\s+Message\n/);
    assert.match(
      r.stdout,
      new RegExp(`/mirror/a\\.csv\\s+${base}/data/a\\.csv\\s+200\\s+OK \\(version 1, 8 bytes\\)`),
    );
    assert.match(r.stdout, /\/mirror\/b c\.txt\s+\S+\s+200\s+OK/);
    const out = join(srv.dir, "a.copy");
    assert.equal((await cli("file", "get", "/mirror/a.csv", "-o", out)).code, 0);
    assert.equal(await readFile(out, "utf8"), "a,b\n1,2\n");
    assert.equal((await cli("file", "ls", "/mirror")).stdout, "/mirror/a.csv\n/mirror/b c.txt\n");
  });

  test("an unchanged remote file answers 304: reported, not an error, nothing new stored", async () => {
    const r = await cli("file", "fetch", "--json", "/mirror/", `${base}/data/a.csv`);
    assert.equal(r.code, 0, errorText(r));
    const [f] = jsonOut<FetchOut[]>(r);
    assert.equal(f?.status, "unchanged");
    assert.equal(f?.code, 304);
    assert.equal(f?.file, undefined);
    assert.ok(seen.at(-1)?.headers["if-modified-since"], "the server sent If-Modified-Since");
    assert.match((await cli("file", "ls", "-w", "/mirror/a.csv")).stdout, /\/mirror\/a\.csv\s+8\s+1\s/);
    const text = await cli("file", "fetch", "/mirror/", `${base}/data/a.csv`);
    assert.match(text.stdout, /304\s+Not Modified \(unchanged\)/);
  });

  test("a remote error is reported and stores nothing; the other URLs are still fetched (exit 1)", async () => {
    const r = await cli("file", "fetch", "/partial/", `${base}/gone.txt`, `${base}/echo/headers.json`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /\/partial\/gone\.txt\s+\S+\s+404\s+Not Found/);
    assert.match(r.stdout, /\/partial\/headers\.json\s+\S+\s+200\s+OK/);
    assert.match(
      errorText(r),
      /1 of 2 URLs were not stored \(first: .*gone\.txt: remote answered 404 404 Not Found\)/,
    );
    assert.equal((await cli("file", "ls", "/partial")).stdout, "/partial/headers.json\n");
    const j = await cli("file", "fetch", "--json", "/partial/", `${base}/gone.txt`);
    assert.equal(j.code, 1);
    assert.deepEqual(
      jsonOut<FetchOut[]>(j).map((x) => [x.status, x.code]),
      [["failed", 404]],
    );
  });

  test("--header and --method reach the remote server", async () => {
    const r = await cli(
      "file",
      "fetch",
      "--header",
      "X-Token=abc=def",
      "-H",
      "Accept: text/csv",
      "--method",
      "post",
      "/h/",
      `${base}/echo/headers.json`,
    );
    assert.equal(r.code, 0, errorText(r));
    const out = join(srv.dir, "h.json");
    assert.equal((await cli("file", "get", "/h/headers.json", "-o", out)).code, 0);
    assert.deepEqual(JSON.parse(await readFile(out, "utf8")), {
      method: "POST",
      token: "abc=def",
      accept: "text/csv",
    });
  });

  test("bad input is refused before anything is fetched", async () => {
    const before = seen.length;
    const cases: [string[], RegExp][] = [
      [
        ["/mirror", `${base}/x.txt`],
        /must be absolute and end with "\/"[\s\S]*cacheroach file fetch \/mirror\/ http:\/\/127\.0\.0\.1:\d+\/x\.txt/,
      ],
      [["/mirror/"], /Missing 1 required arg/],
      [["/mirror/", `${base}/`], /its path has no file name/],
      [["/mirror/", "ftp://example.com/x.txt"], /only http and https/],
      [["/mirror/", "not a url"], /is not a URL/],
      [["/mirror/", `${base}/a/x.txt`, `${base}/b/x.txt`], /would both be stored as \/mirror\/x\.txt/],
      [["/mirror/", `${base}/..%2F..`], /would be stored as/],
      [["--method", "PUT", "/mirror/", `${base}/x.txt`], /only GET and POST/],
      [["--header", "novalue", "/mirror/", `${base}/x.txt`], /is not Name=value/],
      [["--header", "bad name=1", "/mirror/", `${base}/x.txt`], /is not Name=value/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli("file", "fetch", ...argv);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    assert.equal(seen.length, before, "the remote server was never asked");
  });

  test("fetching needs the fetch capability (exit 3)", async () => {
    const rw = join(srv.dir, "rw.cfg");
    assert.equal((await cli("session", "delegate", "--capabilities", "read,write", "-o", rw)).code, 0);
    const before = seen.length;
    const r = await runCli(["file", "fetch", "/nf/", `${base}/data/a.csv`, "-c", rw]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /lacks write,fetch on \/nf\/a\.csv/);
    assert.equal(seen.length, before);
    const t = await cli(
      "file",
      "fetch",
      "-t",
      "11111111-2222-3333-4444-555555555555",
      "/x/",
      `${base}/data/a.csv`,
    );
    assert.equal(t.code, 4);
    assert.match(errorText(t), /tenant 11111111-2222-3333-4444-555555555555 does not exist/);
  });
});

/** The refusal `file fetch` prints for a non-public target: the server's words, unchanged. */
const POLICY_REFUSAL =
  /permission denied: fetch refused by network policy: (.+); the operator can allow private targets with --fetch-allow-private/;

describe("file fetch under the default network policy", () => {
  let remote: LocalHttp | undefined;
  let port: number;
  let hits = 0;
  const srv = useCliServer({
    setup: async () => {
      remote = await listenHttp((_req, res) => {
        hits++;
        res.end("internal secret\n");
      });
      port = remote.port;
    },
    teardown: async () => {
      await remote?.close();
    },
  });
  const cli = srv.cli;

  test("a loopback target in any form is refused by network policy (exit 3) and nothing is stored", async () => {
    const cases: [string, RegExp][] = [
      [`http://[::ffff:7f00:1]:${port}/a.txt`, /^\[::ffff:7f00:1\] is a loopback address/],
      [`http://[::ffff:127.0.0.1]:${port}/a.txt`, /^\[::ffff:7f00:1\] is a loopback address/],
      [`http://2130706433:${port}/a.txt`, /^127\.0\.0\.1 is a loopback address/],
      [`http://localhost:${port}/a.txt`, /^localhost resolves to a loopback address/],
      [
        "http://169.254.169.254/latest/meta-data/iam",
        /^169\.254\.169\.254 is a link-local address \(cloud metadata/,
      ],
    ];
    for (const [url, why] of cases) {
      const r = await cli("file", "fetch", "/ssrf/", url);
      assert.equal(r.code, 3, `${url}: ${errorText(r)}`);
      const m = POLICY_REFUSAL.exec(errorText(r));
      assert.ok(m, `${url}: ${errorText(r)}`);
      // A network-policy refusal, not a missing capability: no advice to get one delegated.
      assert.doesNotMatch(errorText(r), /session delegate|missing capability/, url);
      assert.match(m[1]!, why, url);
    }
    const j = await cli(
      "file",
      "fetch",
      "--json",
      "/ssrf/",
      `http://[::ffff:7f00:1]:${port}/a.txt`,
      `http://[::1]:${port}/b.txt`,
    );
    assert.equal(j.code, 3);
    const rows = jsonOut<FetchOut[]>(j);
    assert.deepEqual(
      rows.map((x) => [x.status, x.errorCode]),
      [
        ["error", "permission_denied"],
        ["error", "permission_denied"],
      ],
    );
    assert.match(rows[1]?.error ?? "", /fetch refused by network policy: \[::1\] is a loopback/);
    assert.equal(hits, 0, "the loopback server was never asked");
    assert.equal((await cli("file", "ls", "/ssrf")).stdout, "");
  });
});

describe("cacheroach start --fetch-allow-private", () => {
  const started = useStartedServers();
  let remote: LocalHttp | undefined;
  before(async () => {
    remote = await listenHttp((_req, res) => res.end("from loopback\n"));
  });
  after(() => remote?.close());

  /** Starts a server process with `argv`/`env`, bootstraps a CLI config, runs `file fetch`, stops it. */
  async function fetchThrough(name: string, argv: string[], env: Record<string, string>) {
    const server = await started.start(name, argv, env);
    const config = await started.bootstrap(name, server);
    const r = await runCli(["file", "fetch", "-c", config, `/${name}/`, `${remote?.url}/x.txt`]);
    await server.stop();
    return r;
  }

  test("the flag (or CACHEROACH_FETCH_ALLOW_PRIVATE) lets fetches reach loopback; --no- wins over the env", async () => {
    const allowed = await fetchThrough("flag", ["--fetch-allow-private"], {});
    assert.equal(allowed.code, 0, errorText(allowed));
    assert.match(allowed.stdout, /\/flag\/x\.txt\s+\S+\s+200\s+OK/);
    const byEnv = await fetchThrough("env", [], { CACHEROACH_FETCH_ALLOW_PRIVATE: "true" });
    assert.equal(byEnv.code, 0, errorText(byEnv));
    const off = await fetchThrough("off", ["--no-fetch-allow-private"], {
      CACHEROACH_FETCH_ALLOW_PRIVATE: "true",
    });
    assert.equal(off.code, 3, errorText(off));
    assert.match(errorText(off), POLICY_REFUSAL);
  });

  test("start --help documents the flag and its environment variable", async () => {
    const r = await runCli(["start", "--help"]);
    assert.match(r.stdout, /--\[no-\]fetch-allow-private/);
    assert.match(r.stdout, /CACHEROACH_FETCH_ALLOW_PRIVATE/);
    assert.match(r.stdout, /only public unicast addresses/);
  });
});
