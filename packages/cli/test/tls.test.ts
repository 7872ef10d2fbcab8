/** `cacheroach start` with TLS, from the user's side: a CLI that trusts the certificate, and SIGHUP reload. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createTestDatabase, type TestDatabase } from "@cacheroach/server/testing";
import { generate } from "selfsigned";
import { ServerProcess, spawnCli, tempDir } from "./helpers.js";

describe("start: TLS", () => {
  let db: TestDatabase;
  let dir: string;
  let cleanup: () => Promise<void>;
  const servers: ServerProcess[] = [];

  before(async () => {
    db = await createTestDatabase();
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
    await cleanup?.();
  });

  const env = () => ({ ...process.env, CACHEROACH_CONNECT: db.url, CACHEROACH_LOG_LEVEL: "warn" });

  test("--tls-self-signed: the CLI works over HTTPS once it trusts the kept certificate", async () => {
    const dataDir = join(dir, "self");
    const server = await ServerProcess.start(["--data-dir", dataDir, "--tls-self-signed"], env(), dir);
    servers.push(server);
    assert.match(server.url, /^https:\/\//);
    const config = join(dir, "self.cfg");
    const trust = { NODE_EXTRA_CA_CERTS: join(dataDir, "tls-self-signed.crt") };
    const boot = await spawnCli(["bootstrap", "--data-dir", dataDir, "-c", config, server.url], {
      env: trust,
    });
    assert.equal(boot.code, 0, boot.stderr);
    const ls = await spawnCli(["tenant", "ls", "-c", config], { env: trust });
    assert.equal(ls.code, 0, ls.stderr);
    const untrusting = await spawnCli(["tenant", "ls", "-c", config]);
    assert.notEqual(untrusting.code, 0, "without the certificate the CLI must not connect");
    // A large file's new chunks go as chunk bodies over HTTPS too.
    const data = randomBytes(3 * 512 * 1024 + 5);
    const local = join(dir, "big.bin");
    await writeFile(local, data);
    const scratch = ["-t", "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a", "-c", config];
    const put = await spawnCli(["file", "put", "/big.bin", local, "-v", ...scratch], { env: trust });
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stderr, /chunk body: 4 chunks, 1572869 bytes/);
    const got = await spawnCli(["file", "get", "/big.bin", "-o", "-", ...scratch], { env: trust });
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(got.stdout, data);
  });

  test("SIGHUP reloads the certificate files; a server without them says so and runs on", async () => {
    const certFile = join(dir, "s.crt");
    const keyFile = join(dir, "s.key");
    const pems = await generate([{ name: "commonName", value: "first" }], {
      keyType: "ec",
      algorithm: "sha256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
    });
    await writeFile(certFile, pems.cert);
    await writeFile(keyFile, pems.private);
    const server = await ServerProcess.start(
      ["--data-dir", join(dir, "files"), "--tls-cert", certFile, "--tls-key", keyFile],
      env(),
      dir,
    );
    servers.push(server);
    server.kill("SIGHUP");
    for (let i = 0; i < 50 && !/SIGHUP: TLS certificate reloaded/.test(server.stderr); i++) await sleep(100);
    assert.match(server.stderr, /SIGHUP: TLS certificate reloaded/);
    await writeFile(keyFile, "not a key");
    server.kill("SIGHUP");
    for (let i = 0; i < 50 && !/not reloaded/.test(server.stderr); i++) await sleep(100);
    assert.match(server.stderr, /SIGHUP: TLS certificate not reloaded, the one in use stays/);
    assert.ok(server.alive);

    const plain = await ServerProcess.start(["--data-dir", join(dir, "plain")], env(), dir);
    servers.push(plain);
    plain.kill("SIGHUP");
    for (let i = 0; i < 50 && !/nothing to reload/.test(plain.stderr); i++) await sleep(100);
    assert.match(plain.stderr, /SIGHUP: nothing to reload/);
    assert.ok(plain.alive);
  });

  test("a missing certificate file is a usage error at start", async () => {
    const r = await spawnCli(
      [
        "start",
        "--data-dir",
        join(dir, "bad"),
        "--tls-cert",
        join(dir, "nope.crt"),
        "--tls-key",
        join(dir, "nope.key"),
      ],
      { env: { CACHEROACH_CONNECT: db.url } },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.replace(/\s*\n\s*›\s*/g, " "), /cannot read the TLS certificate/);
  });
});
