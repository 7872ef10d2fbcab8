/** CLI pieces that need no server: hashing, config file, parsing, help and early input errors. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import {
  ConfigMissingError,
  ContentHasher,
  checkRemoteDir,
  contentHash,
  loadConfig,
  parseDuration,
  remotePathProblem,
  saveConfig,
  table,
} from "@cacheroach/cli";
import { Blake3Hasher, blake3 } from "@napi-rs/blake-hash";
import { errorText, inDir, runCli, useTempDir, writeCliConfig } from "./helpers.js";

/** The rope hash exactly as specified, written out independently of the library. */
function referenceRopeHash(data: Buffer, chunkSize: number): Buffer {
  const h = Blake3Hasher.newDeriveKey("cacheroach 2026-11 rope v1");
  for (let off = 0; off < data.length; off += chunkSize) {
    const piece = data.subarray(off, Math.min(off + chunkSize, data.length));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(piece.length);
    h.update(Buffer.concat([blake3(piece), len]));
  }
  return h.digestBuffer();
}

describe("rope hash", () => {
  test("empty content is the derive-key hasher with no updates", () => {
    const empty = Blake3Hasher.newDeriveKey("cacheroach 2026-11 rope v1").digestBuffer();
    assert.deepEqual(contentHash(Buffer.alloc(0), 524288), empty);
    assert.deepEqual(new ContentHasher(524288).digest(), empty);
  });

  test("matches the reference for sizes around chunk boundaries", () => {
    const cs = 1024;
    for (const size of [1, cs - 1, cs, cs + 1, 3 * cs, 3 * cs + 17]) {
      const data = randomBytes(size);
      assert.deepEqual(contentHash(data, cs), referenceRopeHash(data, cs), `size ${size}`);
    }
  });

  test("streaming in arbitrary pieces equals hashing at once", () => {
    const cs = 4096;
    const data = randomBytes(10 * cs + 123);
    const h = new ContentHasher(cs);
    let off = 0;
    let step = 1;
    while (off < data.length) {
      const n = Math.min(step, data.length - off);
      h.update(data.subarray(off, off + n));
      off += n;
      step = (step * 7 + 13) % (3 * cs);
    }
    assert.equal(h.length, data.length);
    assert.deepEqual(h.digest(), referenceRopeHash(data, cs));
  });

  test("depends on the chunk size", () => {
    const data = randomBytes(5000);
    assert.notDeepEqual(contentHash(data, 1000), contentHash(data, 2000));
  });
});

describe("config file", () => {
  const tmp = useTempDir();

  test("is written with mode 0600 in a 0700 directory, atomically", async () => {
    const path = join(tmp.dir, "nested", ".cacheroach", "config");
    const cfg = {
      server: "http://127.0.0.1:1",
      token: "t",
      defaultTenant: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    };
    await saveConfig(path, cfg);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(tmp.dir, "nested", ".cacheroach"))).mode & 0o777, 0o700);
    assert.deepEqual(await loadConfig(path), cfg);
    await saveConfig(path, { ...cfg, token: "u" });
    assert.equal((await loadConfig(path)).token, "u");
    assert.deepEqual(await readdir(join(tmp.dir, "nested", ".cacheroach")), ["config"], "no temp files left");
  });

  test("missing file tells the user to bootstrap", async () => {
    await assert.rejects(loadConfig(join(tmp.dir, "nope")), (err: Error) => {
      assert.ok(err instanceof ConfigMissingError);
      assert.match(err.message, /cacheroach bootstrap/);
      return true;
    });
  });

  test("invalid file is a clear error", async () => {
    const path = join(tmp.dir, "bad");
    await writeFile(path, "{not json");
    await assert.rejects(loadConfig(path), /not JSON/);
    await writeFile(path, JSON.stringify({ token: "x" }));
    await assert.rejects(loadConfig(path), /"server" is missing/);
  });
});

describe("parsing helpers", () => {
  test("durations", () => {
    assert.equal(parseDuration("365d"), 365 * 86_400_000);
    assert.equal(parseDuration("1h30m"), 90 * 60_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.throws(() => parseDuration("soon"), /invalid duration/);
    assert.throws(() => parseDuration("10"), /invalid duration/);
  });

  test("remote paths", () => {
    assert.equal(remotePathProblem("/a/b.txt"), undefined);
    assert.match(remotePathProblem("a/b") ?? "", /absolute/);
    assert.match(remotePathProblem("/a/../b") ?? "", /".."/);
    assert.match(remotePathProblem("/a//b") ?? "", /empty/);
    assert.match(remotePathProblem("/a/") ?? "", /end with/);
    assert.equal(checkRemoteDir("/"), "/");
    assert.throws(() => checkRemoteDir("/dir"), /must be absolute and end with "\/"/);
  });

  test("tables align columns", () => {
    const out = table(
      [
        { p: "/a", n: 1 },
        { p: "/bbb", n: 1000 },
      ],
      [
        { header: "Path", get: (r) => r.p },
        { header: "Size", get: (r) => String(r.n), right: true },
      ],
    );
    assert.equal(out, "Path  Size\n/a       1\n/bbb  1000");
  });
});

describe("help", () => {
  for (const [cmd, expect] of [
    [
      ["start"],
      [/--bind/, /CACHEROACH_BIND/, /--connect/, /embedded PostgreSQL/, /--signing-key/, /--data-dir/],
    ],
    [["bootstrap"], [/SERVER-URL/, /--signing-key/, /--data-dir/, /--validity/, /365d/]],
    [
      ["file", "put"],
      [/REMOTE-DIR\//, /--recursive/, /--parallelism/, /--no-clobber/, /--\[no-\]progress/, /Exit codes/],
    ],
    [
      ["file", "get"],
      [/REMOTE-PATH\.\.\./, /--out/, /standard output/, /BLAKE3/],
    ],
    [
      ["file", "ls"],
      [/--wide/, /--tenant/, /--json/],
    ],
    [
      ["file", "rm"],
      [/PATH\.\.\./, /soft delete/],
    ],
    [
      ["file", "sign"],
      [/PATH\.\.\./, /--validity/, /--version/, /revokes its URLs/],
    ],
    [
      ["file", "fetch"],
      [/REMOTE-DIR\//, /--header/, /--method/, /304/],
    ],
    [
      ["file", "get"],
      [/signed URL/, /If-Range/],
    ],
    [
      ["auth", "set"],
      [/<token>@host:port/, /--server/, /--token/, /CACHEROACH_TOKEN/],
    ],
    [
      ["auth", "whoami"],
      [/Tokens\.Current/, /capabilities/],
    ],
    [["auth", "logout"], [/Tokens\.Invalidate/]],
    [
      ["tenant", "create"],
      [/LABEL/, /--default/],
    ],
    [["tenant", "ls"], [/version/]],
    [
      ["tenant", "rm"],
      [/--yes/, /--version/, /cannot be undone/],
    ],
    [["tenant", "default"], [/defaultTenant/]],
    [
      ["principal", "create"],
      [/USERNAME/, /--email-domain/, /--out/, /--validity/, /--force/, /<self>/],
    ],
    [["principal", "ls"], [/domain/]],
    [
      ["principal", "rm"],
      [/--yes/, /--version/],
    ],
    [
      ["session", "delegate"],
      [/--for/, /--on/, /--id/, /--path/, /--capabilities/, /--duration/, /--name/, /--note/, /--out/],
    ],
    [["session", "ls"], [/Tokens\.Find/]],
    [["session", "rm"], [/SESSION-ID\.\.\./]],
    [
      ["vhost", "create"],
      [/vhost create TENANT HOSTNAME/, /HOSTNAME/],
    ],
    [["vhost", "ls"], [/Host/]],
    [["vhost", "rm"], [/both must match/i]],
  ] as const) {
    test(`${cmd.join(" ")} --help teaches`, async () => {
      const r = await runCli([...cmd, "--help"]);
      assert.equal(r.error, undefined);
      assert.match(r.stdout, /USAGE/);
      assert.match(r.stdout, /EXAMPLES/);
      assert.match(r.stdout, /--config/);
      for (const re of expect) assert.match(r.stdout, re);
    });
  }

  test("root help lists the commands and every topic", async () => {
    const r = await runCli(["--help"]);
    assert.match(r.stdout, /bootstrap/);
    assert.match(r.stdout, /start/);
    for (const topic of ["auth", "file", "principal", "session", "tenant", "vhost"]) {
      assert.match(r.stdout, new RegExp(`^  ${topic}\\s+\\S`, "m"), topic);
    }
  });
});

describe("input errors before any server call", () => {
  const tmp = useTempDir();
  let config: string;
  before(async () => {
    // A server nobody listens on: these commands must fail before calling it.
    config = await writeCliConfig(join(tmp.dir, "config"), "http://127.0.0.1:9", "x", null);
    await mkdir(join(tmp.dir, "d"));
    await writeFile(join(tmp.dir, "d", "f.txt"), "x");
  });

  test("remote dir without trailing slash", async () => {
    // ("/docs" without the slash names one remote file: see file-tree.test.ts.)
    const r = await runCli(["file", "put", "-c", config, "docs", join(tmp.dir, "d", "f.txt")]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /must be absolute and end with "\/"/);
    assert.match(errorText(r), /file put \/docs\//);
  });

  test("missing local file", async () => {
    const r = await runCli(["file", "put", "-c", config, "/docs/", join(tmp.dir, "nope.txt")]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /nope\.txt" does not exist/);
  });

  test("directory without -r", async () => {
    const r = await runCli(["file", "put", "-c", config, "/docs/", join(tmp.dir, "d")]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /is a directory/);
    assert.match(errorText(r), /-r/);
  });

  test("non-absolute remote paths", async () => {
    for (const argv of [
      ["file", "get", "docs/a.txt"],
      ["file", "rm", "a.txt"],
      ["file", "ls", "docs"],
    ]) {
      const r = await runCli([...argv, "-c", config]);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(errorText(r), /must be absolute/);
    }
  });

  test("empty tenant", async () => {
    const r = await runCli(["file", "ls", "-c", config, "-t", " "]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /a tenant ID or label is required/);
  });

  test("no tenant anywhere", async () => {
    const r = await runCli(["file", "ls", "-c", config]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /--tenant required/);
  });

  test("the tenant of a location-scoped session is used when there is no default", async () => {
    const scoped = join(tmp.dir, "scoped-config");
    await saveConfig(scoped, {
      server: "http://127.0.0.1:9",
      token: "x",
      session: {
        id: "5e55e55e-0000-4000-8000-000000000000",
        capabilities: { read: true },
        scope: { onLocation: { tenantId: "abcdefab-cdef-abcd-efab-cdefabcdefab", path: "/*" } },
      },
    });
    const r = await runCli(["file", "ls", "-c", scoped, "-v"]);
    // Past tenant resolution: it tried the (unreachable) server.
    assert.equal(r.code, 7, errorText(r));
    assert.match(r.stderr, /Files\/List/);
  });

  test("missing config points at bootstrap", async () => {
    const r = await runCli([
      "file",
      "ls",
      "-c",
      join(tmp.dir, "missing-config"),
      "-t",
      "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    ]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /cacheroach bootstrap/);
  });

  test("--json errors are JSON with the exit code", async () => {
    const r = await runCli(["file", "ls", "--json", "-c", join(tmp.dir, "missing-config")]);
    assert.equal(r.code, 3);
    const parsed = JSON.parse(r.stdout) as { error: { message: string; code: string } };
    assert.match(parsed.error.message, /cacheroach bootstrap/);
    assert.equal(parsed.error.code, "config_missing");
  });

  test("unreachable server", async () => {
    const r = await runCli(["file", "ls", "-c", config, "-t", "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a"]);
    assert.equal(r.code, 7);
    assert.match(errorText(r), /127\.0\.0\.1:9/);
  });

  // Without --data-dir, bootstrap reads ./.cacheroach-data: these run in a directory of their
  // own, as the checkout has one while `npm start` runs there.
  const keyless = { CACHEROACH_DATA_DIR: undefined, CACHEROACH_SIGNING_KEY: undefined };

  test("bootstrap without a key", async () => {
    await mkdir(join(tmp.dir, "empty"));
    const r = await inDir(join(tmp.dir, "empty"), () =>
      runCli(["bootstrap", "-c", join(tmp.dir, "c2"), "http://127.0.0.1:9"], keyless),
    );
    assert.equal(r.code, 2);
    assert.match(errorText(r), /signing key is required/);
  });

  test("bootstrap without flags takes the key from ./.cacheroach-data", async () => {
    const cwd = join(tmp.dir, "server-checkout");
    await mkdir(join(cwd, ".cacheroach-data"), { recursive: true });
    await writeFile(join(cwd, ".cacheroach-data", "signing-keys"), `${randomBytes(32).toString("base64")}\n`);
    const r = await inDir(cwd, () =>
      runCli(["bootstrap", "-c", join(tmp.dir, "c5"), "http://127.0.0.1:9"], keyless),
    );
    assert.equal(r.code, 7, "it got as far as calling the server");
    assert.match(errorText(r), /127\.0\.0\.1:9/);
  });

  test("config file is still readable JSON after errors", async () => {
    assert.equal(JSON.parse(await readFile(config, "utf8")).server, "http://127.0.0.1:9");
  });
});

test("a remote directory that is not one gets hints phrased with what was typed", async () => {
  const { remoteDirHints } = await import("../src/lib/paths.js");
  // Reversed arguments: the remote path is moved first, the locals keep their order.
  assert.deepEqual(remoteDirHints("hello.txt", "file put", "<local>...", ["/x/", "b c.txt"]), [
    "the remote path comes first: cacheroach file put /x/ hello.txt 'b c.txt'",
  ]);
  // A file path where a directory belongs: both readings.
  assert.deepEqual(remoteDirHints("/x/renamed.txt", "file put", "<local>...", ["hello.txt"]), [
    "into the directory /x/renamed.txt/: cacheroach file put /x/renamed.txt/ hello.txt",
    "into /x/ (keeping the local name): cacheroach file put /x/ hello.txt",
  ]);
  // A remote file name after a local name: the two swapped.
  assert.deepEqual(remoteDirHints("hello.txt", "file put", "<local>...", ["/x/renamed.txt"]), [
    "the remote path comes first: cacheroach file put /x/renamed.txt hello.txt",
  ]);
  // No remote path among the others (an existing local file): both readings of the first word.
  assert.deepEqual(remoteDirHints("docs", "file put", "<local>...", ["/etc/hostname"]), [
    'a remote directory is absolute and ends with "/": cacheroach file put /docs/ /etc/hostname',
    "if docs is a local name, the remote directory comes first: cacheroach file put /<dir>/ docs /etc/hostname",
  ]);
  // From the command line, with what was typed.
  const cli = await runCli(["file", "put", "hello.txt", "/x/", "-c", "/nonexistent.cfg"]);
  assert.equal(cli.code, 2);
  assert.match(errorText(cli), /the remote path comes first: cacheroach file put \/x\/ hello\.txt/);
});
