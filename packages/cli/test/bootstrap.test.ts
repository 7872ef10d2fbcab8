/** `cacheroach start` and `cacheroach bootstrap` end to end. */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createTestDatabase,
  startTestServer,
  type TestDatabase,
  type TestServer,
} from "@cacheroach/server/testing";
import { CLI_ROOT, errorText, runCli, spawnCli, tempDir } from "./helpers.js";

const SCRATCHPAD = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

describe("bootstrap", () => {
  let ts: TestServer;
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ts = await startTestServer();
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    await ts?.close();
    await cleanup?.();
  });

  test("with --signing-key @file writes a 0600 config that file commands use", async () => {
    const keyFile = join(dir, "hmac");
    await writeFile(keyFile, `${Buffer.from(ts.signingKey).toString("base64")}\n`);
    const config = join(dir, "home", ".cacheroach", "config");
    const r = await runCli(["bootstrap", "--signing-key", `@${keyFile}`, "-c", config, `${ts.url}/`]);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Created principal [0-9a-f-]{36} \("root"\)/);
    assert.ok(r.stdout.includes(config));

    assert.equal((await stat(config)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "home", ".cacheroach"))).mode & 0o777, 0o700);
    const cfg = JSON.parse(await readFile(config, "utf8")) as {
      server: string;
      token: string;
      defaultTenant: string;
      session: { scope: { superToken: boolean }; name: string; note: string; principalId: string };
    };
    assert.equal(cfg.server, ts.url);
    assert.equal(cfg.defaultTenant, SCRATCHPAD);
    assert.match(cfg.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(cfg.session.scope.superToken, true);
    assert.equal(cfg.session.name, "<bootstrap-super>");
    assert.equal(cfg.session.note, "cli bootstrap");

    const local = join(dir, "boot.txt");
    await writeFile(local, "bootstrapped");
    const put = await runCli(["file", "put", "-c", config, "/boot/", local]);
    assert.equal(put.code, 0, errorText(put));
    const ls = await runCli(["file", "ls", "-c", config, "/boot"]);
    assert.equal(ls.code, 0, errorText(ls));
    assert.equal(ls.stdout, "/boot/boot.txt\n");
  });

  test("with --data-dir reads the server's key file; --json reports the result", async () => {
    const dataDir = join(dir, "data");
    await mkdir(dataDir);
    await writeFile(
      join(dataDir, "signing-keys"),
      `# keys\n${Buffer.from(ts.signingKey).toString("base64")}\n`,
    );
    const config = join(dir, "config-2");
    const r = await runCli(["bootstrap", "--json", "--data-dir", dataDir, "-c", config, ts.url]);
    assert.equal(r.code, 0, errorText(r));
    const out = JSON.parse(r.stdout) as { principalId: string; config: string; defaultTenant: string };
    assert.match(out.principalId, /^[0-9a-f-]{36}$/);
    assert.equal(out.config, config);
    assert.equal(out.defaultTenant, SCRATCHPAD);
    assert.equal((await runCli(["file", "ls", "-c", config])).code, 0);
  });

  test("a wrong key is refused with a hint", async () => {
    const r = await runCli([
      "bootstrap",
      "--signing-key",
      randomBytes(32).toString("base64"),
      "-c",
      join(dir, "config-3"),
      ts.url,
    ]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /rejected the bootstrap token/);
    assert.match(errorText(r), /signing key must be the one the server uses/);
    await assert.rejects(stat(join(dir, "config-3")), { code: "ENOENT" });
  });

  test("bad key text and bad URLs are usage errors", async () => {
    const a = await runCli(["bootstrap", "--signing-key", "short", "-c", join(dir, "c4"), ts.url]);
    assert.equal(a.code, 2);
    assert.match(errorText(a), /invalid signing key/);
    const b = await runCli([
      "bootstrap",
      "--signing-key",
      "@/nonexistent/key",
      "-c",
      join(dir, "c4"),
      ts.url,
    ]);
    assert.equal(b.code, 2);
    assert.match(errorText(b), /cannot read signing key file/);
    const c = await runCli(["bootstrap", "--data-dir", dir, "-c", join(dir, "c4"), "127.0.0.1:13013"]);
    assert.equal(c.code, 2);
    assert.match(errorText(c), /http:\/\//);
  });
});

/** Reads a child's stdout until it holds one complete JSON document. */
function readJson(child: ChildProcessWithoutNullStreams): Promise<unknown> {
  return new Promise((resolveJson, reject) => {
    let text = "";
    let errText = "";
    const onErr = (d: Buffer) => {
      errText += d.toString();
    };
    const onData = (d: Buffer) => {
      text += d.toString();
      try {
        const v = JSON.parse(text) as unknown;
        child.stdout.off("data", onData);
        resolveJson(v);
      } catch {
        // incomplete
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onErr);
    child.once("exit", (code) => reject(new Error(`start exited ${code}: ${errText}`)));
  });
}

describe("start", () => {
  let db: TestDatabase;
  let dir: string;
  let cleanup: () => Promise<void>;
  let child: ChildProcessWithoutNullStreams | undefined;

  before(async () => {
    db = await createTestDatabase();
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await db?.drop();
    await cleanup?.();
  });

  test("serves until SIGTERM; bootstrap --data-dir uses the key it generated", async () => {
    const dataDir = join(dir, "data");
    child = spawn(
      process.execPath,
      [join(CLI_ROOT, "bin", "run.js"), "start", "--json", "--bind", "127.0.0.1:0", "--data-dir", dataDir],
      { env: { ...process.env, CACHEROACH_CONNECT: db.url, CACHEROACH_LOG_LEVEL: "silent" }, cwd: dir },
    );
    const info = (await readJson(child)) as {
      url: string;
      bootstrap: string;
      database: string;
      dataDir: string;
    };
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.database, "external");
    assert.equal(info.dataDir, dataDir);
    assert.equal(info.bootstrap, `cacheroach bootstrap --data-dir ${dataDir} ${info.url}`);

    const config = join(dir, "config");
    const boot = await spawnCli(["bootstrap", "--data-dir", dataDir, "-c", config, info.url]);
    assert.equal(boot.code, 0, boot.stderr);
    const local = join(dir, "x.txt");
    await writeFile(local, "started");
    const put = await spawnCli(["file", "put", "-c", config, "/s/", local]);
    assert.equal(put.code, 0, put.stderr);
    const missing = await spawnCli(["file", "rm", "-c", config, "/s/missing"]);
    assert.equal(missing.code, 4, "the process exit code is the documented one");
    assert.match(missing.stderr, /not found/);

    const stderr: Buffer[] = [];
    child.stderr.on("data", (d: Buffer) => stderr.push(d));
    const exited = new Promise<number | null>((r) => child?.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(Buffer.concat(stderr).toString(), /stopped/);
  });

  test("bad settings are usage errors", async () => {
    const r = await spawnCli(["start", "--bind", "nonsense", "--data-dir", join(dir, "d2")], {
      env: { CACHEROACH_CONNECT: db.url },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bind/);
  });
});
