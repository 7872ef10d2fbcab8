/** `cacheroach start --config file.yaml` and `--print-config`, from the user's side (bin/run.js). */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestDatabase, type TestDatabase } from "@cacheroach/server/testing";
import { ServerProcess, spawnCli, tempDir } from "./helpers.js";

/** Extra environment for a run that blanks every CACHEROACH_* setting inherited from the runner. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of Object.keys(process.env)) if (k.startsWith("CACHEROACH_")) env[k] = "";
  return { ...env, ...extra };
}

/** oclif wraps error messages to the terminal width; join them back into one line. */
const oneLine = (stderr: string) => stderr.replace(/\s*\n\s*›\s*/g, " ");

describe("start: server config file", () => {
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

  test("--print-config shows flag > environment > file > default, with secrets redacted", async () => {
    const config = join(dir, "server.yaml");
    await writeFile(
      config,
      "max-connections: 40\ncache-size: 2GiB\nchunk-size: 1MiB\nconnect: postgres://app:hunter2@db/files\n",
    );
    const r = await spawnCli(["start", "-c", config, "--print-config", "--max-connections", "30"], {
      env: cleanEnv({ CACHEROACH_CACHE_SIZE: "1GiB" }),
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString("utf8").split("\n");
    assert.ok(lines.includes("max-connections: 30  # flag"), lines.join("\n"));
    assert.ok(lines.includes("cache-size: 1GiB  # env"), lines.join("\n"));
    assert.ok(lines.includes("chunk-size: 1MiB  # file"), lines.join("\n"));
    assert.ok(lines.includes("connect: postgres://app:redacted@db/files  # file"), lines.join("\n"));
    assert.ok(lines.includes("upload-ttl: 1d  # default"), lines.join("\n"));
    assert.ok(!r.stdout.toString("utf8").includes("hunter2"));

    const json = await spawnCli(["start", "-c", config, "--print-config", "--json"], { env: cleanEnv() });
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout.toString("utf8")) as Record<
      string,
      { value: unknown; source: string }
    >;
    assert.deepEqual(doc["max-connections"], { value: 40, source: "file" });
  });

  test("unknown keys, bad values and unreadable files are refused at start with exit 2, naming the key", async () => {
    const cases: [string, RegExp][] = [
      ["max-conections: 4\n", /unknown setting "max-conections" \(did you mean "max-connections"\?\)/],
      ["chunk-size: 12\n", /chunk-size: must be at least 64KiB/],
      ["upload-ttl: 3600\n", /upload-ttl: must be a duration with a unit/],
      ["bind: [a, b]\n", /bind: must be text/],
      ["public-url: 'ftp://x'\nconnect: postgres://127.0.0.1:1/x\n", /public URL "ftp:\/\/x" must start/],
    ];
    for (const [text, why] of cases) {
      const config = join(dir, "bad.yaml");
      await writeFile(config, text);
      const r = await spawnCli(["start", "-c", config, "--data-dir", join(dir, "untouched")], {
        env: cleanEnv(),
      });
      assert.equal(r.code, 2, `${text}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), why);
    }
    const missing = await spawnCli(["start", "-c", join(dir, "nope.yaml")], { env: cleanEnv() });
    assert.equal(missing.code, 2);
    assert.match(oneLine(missing.stderr), /nope.yaml: no such file/);
    await assert.rejects(stat(join(dir, "untouched")), "a refused start creates no data directory");
  });

  test("a server started from a config file uses its settings; the environment overrides the file", async () => {
    const dataDir = join(dir, "data");
    const config = join(dir, "run.yaml");
    await writeFile(
      config,
      [
        `connect: ${JSON.stringify(db.url)}`,
        `data-dir: ${JSON.stringify(dataDir)}`,
        "public-url: https://from-file.example.com",
        "log-level: silent",
        "",
      ].join("\n"),
    );
    const serverUrl = async (env: Record<string, string>) => {
      server = await ServerProcess.start(["-c", config], { ...process.env, ...cleanEnv(env) }, dir);
      const cfg = join(dir, `client-${Date.now()}`);
      const boot = await spawnCli(["bootstrap", "--data-dir", dataDir, "-c", cfg, server.url]);
      assert.equal(boot.code, 0, boot.stderr);
      const { token } = JSON.parse(await readFile(cfg, "utf8")) as { token: string };
      const r = await fetch(`${server.url}/_/v0/config`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      const named = ((await r.json()) as { server: string }).server;
      await server.stop();
      server = undefined;
      return named;
    };
    assert.equal(await serverUrl({}), "https://from-file.example.com");
    assert.equal(
      await serverUrl({ CACHEROACH_PUBLIC_URL: "https://from-env.example.com" }),
      "https://from-env.example.com",
    );
  });
});
