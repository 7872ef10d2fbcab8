/**
 * `cacheroach file sign`, and `file get` over signed URLs against a real server — including
 * resuming through a proxy that drops the download connection mid-stream.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { describe, test } from "node:test";
import { errorText, jsonOut, listenHttp, runCli, useCliServer, writeCliConfig } from "./helpers.js";

interface SignOut {
  status: string;
  path: string;
  url: string;
  expiresAt: string;
  version: number | null;
  file: { version: number; size: number; contentHash: string };
}

/**
 * A pass-through HTTP proxy to `target` that cuts the first `cuts` signed-URL downloads after
 * `cutAfter` body bytes (calling `onCut` before the client can resume) and logs their headers.
 */
async function startCuttingProxy(
  target: string,
  opts: { cuts: number; cutAfter: number; onCut?: () => Promise<void> },
) {
  const t = new URL(target);
  const log: { range: string | undefined; ifRange: string | undefined; status: number }[] = [];
  const server = await listenHttp((req, res) => {
    const retrieve = (req.url ?? "").startsWith("/_/v0/retrieve/");
    const n = retrieve ? log.length : -1;
    const entry = {
      range: req.headers.range,
      ifRange: req.headers["if-range"] as string | undefined,
      status: 0,
    };
    if (retrieve) log.push(entry);
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        entry.status = ur.statusCode ?? 0;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!retrieve || n >= opts.cuts) {
          ur.pipe(res);
          return;
        }
        let sent = 0;
        ur.on("data", (d: Buffer) => {
          if (sent >= opts.cutAfter) return;
          const part = d.subarray(0, opts.cutAfter - sent);
          sent += part.length;
          if (sent < opts.cutAfter) {
            res.write(part);
            return;
          }
          ur.destroy();
          res.write(part, () => {
            void (opts.onCut?.() ?? Promise.resolve()).then(() => res.socket?.destroy());
          });
        });
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return {
    url: server.url,
    log,
    close: server.close,
  };
}

describe("file sign and signed-URL downloads", () => {
  const srv = useCliServer();
  const cli = srv.cli;
  const put = async (remoteDir: string, name: string, data: string | Buffer) => {
    const local = join(srv.dir, name);
    await writeFile(local, data);
    const r = await cli("file", "put", remoteDir, local);
    assert.equal(r.code, 0, errorText(r));
  };

  test("sign prints absolute URLs that serve the file without a login", async () => {
    await put("/s/", "a.txt", "version one");
    const r = await cli("file", "sign", "/s/a.txt");
    assert.equal(r.code, 0, errorText(r));
    const m = new RegExp(
      `^Path\\s+Expires\\s+URL\\n/s/a\\.txt\\s+(\\S+)\\s+(${srv.ts.url}/_/v0/retrieve/a\\.txt\\?access_token=\\S+)\\n$`,
    ).exec(r.stdout);
    assert.ok(m, r.stdout);
    const left = Date.parse(m[1]!) - Date.now();
    assert.ok(left > 50 * 60_000 && left <= 3_600_000, "24h asked, capped at the 1 h session");
    assert.match(r.stderr, /expire before --validity 24h/);
    const res = await fetch(m[2]!);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "version one");
    assert.match(res.headers.get("content-disposition") ?? "", /filename="a\.txt"/);
  });

  test("--json, --validity and --version (a pinned URL keeps serving that version)", async () => {
    await put("/v/", "f.txt", "one");
    await put("/v/", "f.txt", "two!");
    const r = await cli("file", "sign", "--json", "--validity", "10m", "--version", "1", "/v/f.txt");
    assert.equal(r.code, 0, errorText(r));
    assert.equal(r.stderr, "", "10 minutes is within the session: no note");
    const [s] = jsonOut<SignOut[]>(r);
    assert.equal(s?.version, 1);
    assert.equal(s?.file.version, 1);
    const left = Date.parse(s?.expiresAt ?? "") - Date.now();
    assert.ok(left > 9 * 60_000 && left <= 10 * 60_000);
    assert.equal(await (await fetch(s!.url)).text(), "one");
    const [latest] = jsonOut<SignOut[]>(await cli("file", "sign", "--json", "/v/f.txt"));
    assert.equal(latest?.version, null);
    assert.equal(await (await fetch(latest!.url)).text(), "two!");
    const range = await fetch(latest!.url, { headers: { range: "bytes=1-" } });
    assert.equal(range.status, 206);
    assert.equal(await range.text(), "wo!");
  });

  test("revoking the session revokes its URLs", async () => {
    const reader = join(srv.dir, "reader.cfg");
    assert.equal((await cli("session", "delegate", "-o", reader, "--capabilities", "read")).code, 0);
    const [s] = jsonOut<SignOut[]>(await runCli(["file", "sign", "--json", "/s/a.txt", "-c", reader]));
    assert.equal((await fetch(s!.url)).status, 200);
    const id = jsonOut<{ id: string }>(await runCli(["auth", "whoami", "--json", "-c", reader])).id;
    assert.equal((await cli("session", "rm", id)).code, 0);
    assert.equal((await fetch(s!.url)).status, 401);
  });

  test("bad input and missing files", async () => {
    const missing = await cli("file", "sign", "/s/missing.txt");
    assert.equal(missing.code, 4);
    assert.match(errorText(missing), /not found/);
    const several = await cli("file", "sign", "/s/a.txt", "/s/missing.txt");
    assert.equal(several.code, 4);
    assert.match(several.stdout, /\/s\/a\.txt\s+\S+\s+http/);
    assert.match(several.stdout, /\/s\/missing\.txt\s+-\s+error: .*not found/);
    assert.match(errorText(several), /1 of 2 paths could not be signed/);
    const j = await cli("file", "sign", "--json", "/s/a.txt", "/s/missing.txt");
    assert.equal(j.code, 4);
    assert.deepEqual(
      jsonOut<{ status: string }[]>(j).map((x) => x.status),
      ["ok", "error"],
    );
    const cases: [string[], RegExp][] = [
      [["file", "sign", "s/a.txt"], /must be absolute/],
      [["file", "sign", "--validity", "1 day", "/s/a.txt"], /invalid duration/],
      [["file", "sign", "--version", "0", "/s/a.txt"], /greater than or equal to 1/],
      [["file", "sign"], /Missing 1 required arg/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(errorText(r), re, argv.join(" "));
    }
    const t = await cli("file", "sign", "-t", "11111111-2222-3333-4444-555555555555", "/s/a.txt");
    assert.equal(t.code, 4);
    assert.match(errorText(t), /tenant 11111111-2222-3333-4444-555555555555 does not exist/);
  });

  test("file get resumes a dropped download with Range and If-Range, even if the file is overwritten meanwhile", async () => {
    const original = randomBytes(3 * (1 << 20) + 123);
    await put("/big/", "r.bin", original);
    const [signed] = jsonOut<SignOut[]>(await cli("file", "sign", "--json", "/big/r.bin"));
    const etag = `"${signed?.file.contentHash}"`;
    let overwritten = false;
    const proxy = await startCuttingProxy(srv.ts.url, {
      cuts: 2,
      cutAfter: 700_000,
      onCut: async () => {
        if (overwritten) return;
        overwritten = true;
        await put("/big/", "r.bin", randomBytes(1000)); // a new version while we wait to resume
      },
    });
    try {
      const viaProxy = join(srv.dir, "proxy.cfg");
      await writeCliConfig(viaProxy, proxy.url, srv.ts.superToken);
      const out = join(srv.dir, "r.copy");
      const r = await runCli(["file", "get", "-v", "/big/r.bin", "-o", out, "-c", viaProxy]);
      assert.equal(r.code, 0, `${errorText(r)}\n${r.stderr}`);
      assert.ok(
        (await readFile(out)).equals(original),
        "the version that was latest when the download began",
      );
      assert.match(r.stdout, /\/big\/r\.bin\s+\S+\s+3145851\s+1/);
      assert.equal(proxy.log.length, 3);
      assert.equal(proxy.log[0]?.range, undefined);
      for (const g of proxy.log.slice(1)) {
        assert.match(g.range ?? "", /^bytes=\d+-$/);
        assert.equal(g.ifRange, etag);
        assert.equal(g.status, 206);
      }
      assert.match(r.stderr, /connection dropped .* at byte \d+ of 3145851; retrying/);
      assert.doesNotMatch(r.stderr, /access_token=[A-Za-z0-9]/, "tokens are not logged");
      assert.deepEqual(
        (await readdir(srv.dir)).filter((n) => n.includes("cacheroach-tmp")),
        [],
      );
    } finally {
      await proxy.close();
    }
  });

  test("file get gives up when every connection drops, leaving nothing behind (exit 7)", async () => {
    await put("/big/", "g.bin", randomBytes(2 << 20));
    const proxy = await startCuttingProxy(srv.ts.url, { cuts: 100, cutAfter: 1000 });
    try {
      const viaProxy = join(srv.dir, "proxy2.cfg");
      await writeCliConfig(viaProxy, proxy.url, srv.ts.superToken);
      const outDir = join(srv.dir, "giveup");
      const r = await runCli(["file", "get", "/big/g.bin", "-o", `${outDir}/`, "-c", viaProxy]);
      assert.equal(r.code, 7, errorText(r));
      assert.match(errorText(r), /connection dropped .*gave up after 5 attempts/);
      assert.deepEqual(await readdir(outDir), []);
    } finally {
      await proxy.close();
    }
  });
});
