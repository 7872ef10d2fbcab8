/** `cacheroach start --public-url / --active-content-hosts` (and their environment variables). */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestDatabase, type TestDatabase } from "@cacheroach/server/testing";
import { ServerProcess, spawnCli, tempDir } from "./helpers.js";

describe("start: public URL and active-content hosts", () => {
  let db: TestDatabase;
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: ServerProcess | undefined;

  before(async () => {
    db = await createTestDatabase();
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    await cleanup?.();
  });

  test("bad values are usage errors naming the setting", async () => {
    const env = { CACHEROACH_CONNECT: db.url };
    for (const [args, extraEnv, why] of [
      [["--public-url", "ftp://files.example.com"], {}, /public URL "ftp:\/\/files.example.com" must start/],
      [
        [],
        { CACHEROACH_PUBLIC_URL: "https://files.example.com/app" },
        /public URL "https:\/\/files.example.com\/app"/,
      ],
      [["--active-content-hosts", "site.test,http://x"], {}, /active-content host "http:\/\/x"/],
    ] as const) {
      const r = await spawnCli(["start", "--bind", "127.0.0.1:0", "--data-dir", join(dir, "bad"), ...args], {
        env: { ...env, ...extraEnv },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
  });

  test("--public-url names the server in downloaded configs", async () => {
    const dataDir = join(dir, "data");
    server = await ServerProcess.start(
      [
        "--data-dir",
        dataDir,
        "--public-url",
        "https://files.example.com",
        "--active-content-hosts",
        "site.test",
      ],
      { ...process.env, CACHEROACH_CONNECT: db.url, CACHEROACH_LOG_LEVEL: "silent" },
      dir,
    );
    const info = { url: server.url };
    const config = join(dir, "config");
    const boot = await spawnCli(["bootstrap", "--data-dir", dataDir, "-c", config, info.url]);
    assert.equal(boot.code, 0, boot.stderr);
    const { token } = JSON.parse(await readFile(config, "utf8")) as { token: string };
    const r = await fetch(`${info.url}/_/v0/config`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { server: string }).server, "https://files.example.com");
    await server.stop();
  });
});
