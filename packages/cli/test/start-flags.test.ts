/** `cacheroach start --public-url / --active-content-hosts` (and their environment variables). */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { spawnCli, useStartedServers } from "./helpers.js";

describe("start: public URL and active-content hosts", () => {
  const started = useStartedServers();

  test("bad values are usage errors naming the setting", async () => {
    const env = { CACHEROACH_CONNECT: started.db.url };
    for (const [args, extraEnv, why] of [
      [["--public-url", "ftp://files.example.com"], {}, /public URL "ftp:\/\/files.example.com" must start/],
      [
        [],
        { CACHEROACH_PUBLIC_URL: "https://files.example.com/app" },
        /public URL "https:\/\/files.example.com\/app"/,
      ],
      [["--active-content-hosts", "site.test,http://x"], {}, /active-content host "http:\/\/x"/],
    ] as const) {
      const r = await spawnCli(
        ["start", "--bind", "127.0.0.1:0", "--data-dir", join(started.dir, "bad"), ...args],
        {
          env: { ...env, ...extraEnv },
        },
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
  });

  test("--public-url names the server in downloaded configs", async () => {
    const server = await started.start("data", [
      "--public-url",
      "https://files.example.com",
      "--active-content-hosts",
      "site.test",
    ]);
    const config = await started.bootstrap("data", server);
    const { token } = JSON.parse(await readFile(config, "utf8")) as { token: string };
    const r = await fetch(`${server.url}/_/v0/config`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { server: string }).server, "https://files.example.com");
    await server.stop();
  });
});
