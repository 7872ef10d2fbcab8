/** `cacheroach start` and `cacheroach bootstrap` end to end. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { errorText, runCli, SCRATCHPAD, spawnCli, useCliServer, useStartedServers } from "./helpers.js";

describe("bootstrap", () => {
  const srv = useCliServer();

  test("with --signing-key @file writes a 0600 config that file commands use", async () => {
    const keyFile = join(srv.dir, "hmac");
    await writeFile(keyFile, `${Buffer.from(srv.ts.signingKey).toString("base64")}\n`);
    const config = join(srv.dir, "home", ".cacheroach", "config");
    const r = await runCli(["bootstrap", "--signing-key", `@${keyFile}`, "-c", config, `${srv.ts.url}/`]);
    assert.equal(r.code, 0, errorText(r));
    // The test server made a "root" principal already: bootstrap gives it the session.
    assert.match(r.stdout, /Reused principal [0-9a-f-]{36} \("root"\)/);
    assert.ok(r.stdout.includes(config));

    assert.equal((await stat(config)).mode & 0o777, 0o600);
    assert.equal((await stat(join(srv.dir, "home", ".cacheroach"))).mode & 0o777, 0o700);
    const cfg = JSON.parse(await readFile(config, "utf8")) as {
      server: string;
      token: string;
      defaultTenant: string;
      session: { scope: { superToken: boolean }; name: string; note: string; principalId: string };
    };
    assert.equal(cfg.server, srv.ts.url);
    assert.equal(cfg.defaultTenant, SCRATCHPAD);
    assert.match(cfg.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(cfg.session.scope.superToken, true);
    assert.equal(cfg.session.name, "<bootstrap-super>");
    assert.equal(cfg.session.note, "cli bootstrap");

    const local = join(srv.dir, "boot.txt");
    await writeFile(local, "bootstrapped");
    const put = await runCli(["file", "put", "-c", config, "/boot/", local]);
    assert.equal(put.code, 0, errorText(put));
    const ls = await runCli(["file", "ls", "-c", config, "/boot"]);
    assert.equal(ls.code, 0, errorText(ls));
    assert.equal(ls.stdout, "/boot/boot.txt\n");
  });

  test("with --data-dir reads the server's key file; --json reports the result", async () => {
    const dataDir = join(srv.dir, "data");
    await mkdir(dataDir);
    await writeFile(
      join(dataDir, "signing-keys"),
      `# keys\n${Buffer.from(srv.ts.signingKey).toString("base64")}\n`,
    );
    const config = join(srv.dir, "config-2");
    const r = await runCli(["bootstrap", "--json", "--data-dir", dataDir, "-c", config, srv.ts.url]);
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
      join(srv.dir, "config-3"),
      srv.ts.url,
    ]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /rejected the bootstrap token/);
    assert.match(errorText(r), /signing key must be the one the server uses/);
    await assert.rejects(stat(join(srv.dir, "config-3")), { code: "ENOENT" });
  });

  test("re-running refuses to replace the config unless --force, and reuses the root principal", async () => {
    const keyFile = join(srv.dir, "hmac-again");
    await writeFile(keyFile, Buffer.from(srv.ts.signingKey).toString("base64"));
    const config = join(srv.dir, "again", "config");
    const boot = (...extra: string[]) =>
      spawnCli(["bootstrap", "--json", "--signing-key", `@${keyFile}`, "-c", config, srv.ts.url, ...extra], {
        env: { OCLIF_COLUMNS: "500" },
      });
    const first = await boot();
    assert.equal(first.code, 0, first.stderr);
    const a = JSON.parse(first.stdout.toString()) as { principalId: string };
    const before = await readFile(config, "utf8");

    const again = await boot();
    const said = `${again.stdout}${again.stderr}`; // --json: the error is JSON on stdout
    assert.equal(again.code, 5, said);
    assert.match(said, /the config .*again\/config already exists; it was not changed/);
    assert.match(said, /--force/);
    assert.equal(await readFile(config, "utf8"), before, "untouched");

    const forced = await boot("--force");
    assert.equal(forced.code, 0, forced.stderr);
    const b = JSON.parse(forced.stdout.toString()) as { principalId: string; reusedPrincipal: boolean };
    assert.equal(b.principalId, a.principalId, "the same root principal");
    assert.equal(b.reusedPrincipal, true);
    assert.notEqual(await readFile(config, "utf8"), before, "a new session in the config");

    const ls = await spawnCli(["principal", "ls", "--json", "-c", config]);
    assert.equal(ls.code, 0, ls.stderr);
    const roots = (JSON.parse(ls.stdout.toString()) as { label: string }[]).filter((p) => p.label === "root");
    assert.equal(roots.length, 1, "one root principal however often bootstrap ran");
  });

  test("bad key text is a usage error; a bad URL reaches no server", async () => {
    const a = await runCli(["bootstrap", "--signing-key", "short", "-c", join(srv.dir, "c4"), srv.ts.url]);
    assert.equal(a.code, 2);
    assert.match(errorText(a), /invalid signing key/);
    const b = await runCli([
      "bootstrap",
      "--signing-key",
      "@/nonexistent/key",
      "-c",
      join(srv.dir, "c4"),
      srv.ts.url,
    ]);
    assert.equal(b.code, 2);
    assert.match(errorText(b), /cannot read signing key file/);
    const c = await runCli([
      "bootstrap",
      "--data-dir",
      srv.dir,
      "-c",
      join(srv.dir, "c4"),
      "127.0.0.1:13013",
    ]);
    assert.equal(c.code, 7, "a URL without a scheme reaches no server (exit 7, as in a config)");
    assert.match(errorText(c), /http:\/\//);
  });
});

describe("start", () => {
  const started = useStartedServers();

  test("serves until SIGTERM; bootstrap --data-dir uses the key it generated", async () => {
    const server = await started.start("data");
    const { info } = server;
    const dataDir = join(started.dir, "data");
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.database, "external");
    assert.equal(info.dataDir, dataDir);
    assert.match(info.bootstrap, / bootstrap --data-dir \S+ http:\/\/127\.0\.0\.1:\d+$/);

    // The printed command runs as printed, in the directory the server was started from.
    const config = join(started.dir, "data.cfg");
    const boot = spawnSync("bash", ["-c", `${info.bootstrap} -c ${config}`], {
      cwd: started.dir,
      encoding: "utf8",
    });
    assert.equal(boot.status, 0, `${info.bootstrap}\n${boot.stderr}`);
    const local = join(started.dir, "x.txt");
    await writeFile(local, "started");
    const put = await spawnCli(["file", "put", "-c", config, "/s/", local]);
    assert.equal(put.code, 0, put.stderr);
    const missing = await spawnCli(["file", "rm", "-c", config, "/s/missing"]);
    assert.equal(missing.code, 4, "the process exit code is the documented one");
    assert.match(missing.stderr, /not found/);

    assert.equal(await server.stop(), 0);
    assert.match(server.stderr, /stopped/);
  });

  test("bad settings are usage errors", async () => {
    const r = await spawnCli(["start", "--bind", "nonsense", "--data-dir", join(started.dir, "d2")], {
      env: { CACHEROACH_CONNECT: started.db.url },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bind/);
  });
});
