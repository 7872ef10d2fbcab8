/**
 * The file commands as a user of rclone, aws s3 or mc expects them, against a real server: put under
 * another name and from stdin, unchanged content writes no version, preconditions, versions, ls -l /
 * one level by default, -R / no such path, get -r and rm -r keeping the tree layout, and sync both ways.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { HASH_CACHE_ENV } from "@cacheroach/cli";
import { CLI_BIN, CLI_ROOT, errorText, jsonOut, useCliServer } from "./helpers.js";

const MiB = 1 << 20;

interface PutJson {
  status: string;
  path: string;
  size: number;
  version: number;
  contentHash: string;
  unchanged: boolean;
  meta: Record<string, string>;
}

/** Runs the CLI as a child process with `input` on its standard input. */
function spawnWithStdin(
  argv: string[],
  input: Buffer,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...argv], {
      cwd: CLI_ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      done({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
      }),
    );
    // Several writes, so the CLI sees a stream of pieces of unknown total length.
    const piece = 300_000;
    for (let off = 0; off < input.length; off += piece) child.stdin.write(input.subarray(off, off + piece));
    child.stdin.end();
  });
}

/** Every file below `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

describe("file commands, the way users expect them", () => {
  const srv = useCliServer({ env: () => ({ [HASH_CACHE_ENV]: join(srv.dir, "hash-cache") }) });
  const cli = srv.cli;

  test("put under another name; unchanged content writes no version unless --always", async () => {
    const local = join(srv.dir, "report.txt");
    await writeFile(local, "quarterly numbers\n");
    const put = await cli("file", "put", "--json", "/renamed/report-2026.txt", local);
    assert.equal(put.code, 0, errorText(put));
    const [first] = jsonOut<PutJson[]>(put);
    assert.equal(first?.path, "/renamed/report-2026.txt");
    assert.equal(first?.version, 1);
    assert.equal(first?.unchanged, false);
    assert.match(
      first?.meta["mtime"] ?? "",
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
      "the local mtime is recorded",
    );

    const again = await cli("file", "put", "/renamed/report-2026.txt", local);
    assert.equal(again.code, 0, errorText(again));
    assert.match(again.stdout, /\/renamed\/report-2026\.txt\s+18\s+1\s+unchanged/);
    assert.match(again.stderr, /1 unchanged .*--always/);
    const forced = await cli("file", "put", "--always", "--json", "/renamed/report-2026.txt", local);
    assert.equal(jsonOut<PutJson[]>(forced)[0]?.version, 2);

    await writeFile(local, "quarterly numbers, fixed\n");
    const changed = await cli("file", "put", "--json", "/renamed/report-2026.txt", local);
    assert.equal(jsonOut<PutJson[]>(changed)[0]?.version, 3);

    // Same size, different content: hashed, and written.
    await writeFile(local, "QUARTERLY NUMBERS, FIXED\n");
    const same = await cli("file", "put", "--json", "/renamed/report-2026.txt", local);
    assert.equal(jsonOut<PutJson[]>(same)[0]?.version, 4);

    // Bad input: a remote file name takes one local file; a directory needs -r and a trailing "/".
    const two = await cli("file", "put", "/renamed/x.txt", local, local);
    assert.equal(two.code, 2);
    assert.match(errorText(two), /names one remote file, so it takes one local file/);
    const intoDir = await cli("file", "put", "/renamed", local);
    assert.equal(intoDir.code, 2, "/renamed is a remote directory");
    assert.match(errorText(intoDir), /\/renamed is a remote directory.*file put \/renamed\/ /s);
    const dir = await cli("file", "put", "/renamed/x", srv.dir);
    assert.equal(dir.code, 2);
    assert.match(errorText(dir), /is a directory.*file put -r \/renamed\/x\//s);
  });

  test("a large unchanged file is compared while uploading and writes no version", async () => {
    const local = join(srv.dir, "big.bin");
    await writeFile(local, randomBytes(3 * MiB + 17));
    const put1 = await cli("file", "put", "--json", "--no-hash-cache", "/big/", local);
    assert.equal(put1.code, 0, errorText(put1));
    const put2 = await cli("file", "put", "--json", "--no-hash-cache", "/big/", local);
    assert.equal(put2.code, 0, errorText(put2));
    const [r] = jsonOut<PutJson[]>(put2);
    assert.equal(r?.unchanged, true);
    assert.equal(r?.version, 1);
    const versions = await cli("file", "versions", "--json", "/big/big.bin");
    assert.equal(jsonOut<unknown[]>(versions).length, 1);
  });

  test("put - streams standard input, short or long", async () => {
    const small = Buffer.from("from a pipe\n");
    const r1 = await spawnWithStdin(["file", "put", "/stdin/small.txt", "-", "-c", srv.config], small);
    assert.equal(r1.code, 0, r1.stderr);
    const big = randomBytes(5 * MiB + 123);
    const r2 = await spawnWithStdin(["file", "put", "--json", "/stdin/big.bin", "-", "-c", srv.config], big);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal((JSON.parse(r2.stdout) as PutJson[])[0]?.size, big.length);
    const out = join(srv.dir, "stdin-copy");
    assert.equal((await cli("file", "get", "/stdin/big.bin", "-o", out)).code, 0);
    assert.ok((await readFile(out)).equals(big));
    assert.equal((await cli("file", "get", "/stdin/small.txt", "-o", out)).code, 0);
    assert.equal(await readFile(out, "utf8"), "from a pipe\n");
    // The same bytes again: no new version.
    const r3 = await spawnWithStdin(["file", "put", "--json", "/stdin/big.bin", "-", "-c", srv.config], big);
    assert.equal(r3.code, 0, r3.stderr);
    assert.deepEqual(
      [(JSON.parse(r3.stdout) as PutJson[])[0]?.unchanged, (JSON.parse(r3.stdout) as PutJson[])[0]?.version],
      [true, 1],
    );
    // Standard input into a directory is stored as <dir>stdin.
    const r4 = await spawnWithStdin(["file", "put", "/stdin/", "-", "-c", srv.config], small);
    assert.equal(r4.code, 0, r4.stderr);
    assert.match(r4.stdout, /^\/stdin\/stdin\s/m);
  });

  test("--if-match VERSION|ETAG and --if-none-match", async () => {
    const local = join(srv.dir, "cas.json");
    await writeFile(local, '{"n":1}');
    assert.equal((await cli("file", "put", "--if-none-match", "/cas/app.json", local)).code, 0);
    await writeFile(local, '{"n":2}');
    const exists = await cli("file", "put", "--if-none-match", "/cas/app.json", local);
    assert.equal(exists.code, 5, errorText(exists));
    const ok = await cli("file", "put", "--json", "--if-match", "1", "/cas/app.json", local);
    assert.equal(ok.code, 0, errorText(ok));
    const v2 = jsonOut<PutJson[]>(ok)[0]!;
    assert.equal(v2.version, 2);
    await writeFile(local, '{"n":3}');
    const stale = await cli("file", "put", "--if-match", "1", "/cas/app.json", local);
    assert.equal(stale.code, 5, errorText(stale));
    assert.match(errorText(stale), /precondition failed/);
    const byEtag = await cli(
      "file",
      "put",
      "--json",
      "--if-match",
      `"${v2.contentHash}"`,
      "/cas/app.json",
      local,
    );
    assert.equal(byEtag.code, 0, errorText(byEtag));
    assert.equal(jsonOut<PutJson[]>(byEtag)[0]?.version, 3);
    const bad = await cli("file", "put", "--if-match", "yesterday", "/cas/app.json", local);
    assert.equal(bad.code, 2);
    assert.match(errorText(bad), /neither a version number nor an ETag/);
  });

  test("file versions lists live, superseded and deleted versions; get --version reads one", async () => {
    const local = join(srv.dir, "v.txt");
    for (const text of ["one", "two!", "three"]) {
      await writeFile(local, text);
      assert.equal((await cli("file", "put", "/ver/v.txt", local)).code, 0);
    }
    const list = await cli("file", "versions", "/ver/v.txt");
    assert.equal(list.code, 0, errorText(list));
    assert.match(
      list.stdout,
      /^Version\s+Size\s+Written\s+Hash\s+State\n\s*3\s+5 B\s+[\d-]+ [\d:]+\s+[0-9a-f]{12}\s+live\n\s*2\s+4 B\s+.*superseded\n\s*1\s+3 B\s+.*superseded\n$/,
    );
    const out = join(srv.dir, "v2.txt");
    const get = await cli("file", "get", "--version", "2", "/ver/v.txt", "-o", out);
    assert.equal(get.code, 0, errorText(get));
    assert.equal(await readFile(out, "utf8"), "two!");
    assert.equal((await cli("file", "rm", "/ver/v.txt")).code, 0);
    const json = jsonOut<{ version: number; state: string; deletedAt?: string; contentHash: string }[]>(
      await cli("file", "versions", "--json", "/ver/v.txt"),
    );
    assert.deepEqual(
      json.map((v) => [v.version, v.state]),
      [
        [3, "deleted"],
        [2, "deleted"],
        [1, "deleted"],
      ],
    );
    assert.match(json[0]?.contentHash ?? "", /^[0-9a-f]{64}$/);
    const none = await cli("file", "versions", "/ver/never.txt");
    assert.equal(none.code, 4);
    assert.match(errorText(none), /no versions of \/ver\/never\.txt/);
    const several = await cli(
      "file",
      "get",
      "--version",
      "1",
      "/ver/v.txt",
      "/ver/w.txt",
      "-o",
      `${srv.dir}/`,
    );
    assert.equal(several.code, 2);
  });

  test("ls lists one level like ls, -R every file below; -l, --bytes; a path with nothing below it", async () => {
    const d = join(srv.dir, "lsl");
    await mkdir(join(d, "sub", "deeper"), { recursive: true });
    await writeFile(join(d, "a.txt"), "a");
    await writeFile(join(d, "big.bin"), Buffer.alloc(1536));
    await writeFile(join(d, "sub", "b.txt"), "bb");
    await writeFile(join(d, "sub", "deeper", "c.txt"), "ccc");
    assert.equal((await cli("file", "put", "-r", "/lsl/", d)).code, 0);

    const long = await cli("file", "ls", "-l", "/lsl");
    assert.equal(long.code, 0, errorText(long));
    assert.match(long.stdout, /^\s*Size\s+Modified\s+Version\s+Path\n/);
    assert.match(long.stdout, /\n\s*1\.5 KiB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+1\s+\/lsl\/big\.bin\n/);
    assert.match(long.stdout, /\n\s*-\s+\/lsl\/sub\/\n?$/, "a sub-directory, not its files");
    const bytes = await cli("file", "ls", "-l", "--bytes", "/lsl");
    assert.match(bytes.stdout, /\n\s*1536\s+\S+ \S+\s+1\s+\/lsl\/big\.bin\n/);
    const bytesAlone = await cli("file", "ls", "--bytes", "/lsl");
    assert.equal(bytesAlone.stdout, bytes.stdout, "--bytes alone means -l --bytes");

    assert.equal(
      (await cli("file", "ls", "-R", "/lsl")).stdout,
      "/lsl/a.txt\n/lsl/big.bin\n/lsl/sub/b.txt\n/lsl/sub/deeper/c.txt\n",
    );
    assert.equal(
      (await cli("file", "ls", "--recursive", "-l", "/lsl/")).stdout.split("\n").filter(Boolean).length,
      5,
      "a header and four files",
    );
    for (const args of [["/lsl/"], ["/lsl"], ["--no-recursive", "/lsl/"]]) {
      assert.equal(
        (await cli("file", "ls", ...args)).stdout,
        "/lsl/a.txt\n/lsl/big.bin\n/lsl/sub/\n",
        args.join(" "),
      );
    }
    assert.equal((await cli("file", "ls", "/lsl/sub")).stdout, "/lsl/sub/b.txt\n/lsl/sub/deeper/\n");
    assert.equal((await cli("file", "ls", "/lsl/a.txt")).stdout, "/lsl/a.txt\n", "a file lists itself");
    const json = jsonOut<{ path: string; type?: string }[]>(await cli("file", "ls", "--json", "/lsl"));
    assert.deepEqual(json.at(-1), { path: "/lsl/sub/", type: "directory" });
    assert.equal(json.length, 3);

    const nope = await cli("file", "ls", "/nope");
    assert.equal(nope.code, 4);
    assert.equal(nope.stdout, "");
    assert.match(errorText(nope), /no such path/);
  });

  test("get -r and rm -r keep the tree layout; rm --dry-run deletes nothing", async () => {
    const d = join(srv.dir, "treesrc");
    await mkdir(join(d, "x", "y"), { recursive: true });
    await writeFile(join(d, "same.txt"), "top");
    await writeFile(join(d, "x", "same.txt"), "middle");
    await writeFile(join(d, "x", "y", "same.txt"), "bottom");
    await writeFile(join(d, "x", "y", "large.bin"), randomBytes(2 * MiB));
    assert.equal((await cli("file", "put", "-r", "/tree/", d)).code, 0);

    const dest = join(srv.dir, "treedst");
    const get = await cli("file", "get", "-r", "/tree/", "-o", dest);
    assert.equal(get.code, 0, errorText(get));
    assert.deepEqual(await tree(dest), ["same.txt", "x/same.txt", "x/y/large.bin", "x/y/same.txt"]);
    assert.equal(await readFile(join(dest, "x", "y", "same.txt"), "utf8"), "bottom");
    assert.ok(
      (await readFile(join(dest, "x", "y", "large.bin"))).equals(
        await readFile(join(d, "x", "y", "large.bin")),
      ),
    );

    // The destination as the last (relative) argument, like cp.
    const rel = await cli(
      "file",
      "get",
      "-r",
      "/tree/x/",
      relative(process.cwd(), join(srv.dir, "treedst2")),
    );
    assert.equal(rel.code, 0, errorText(rel));
    assert.deepEqual(await tree(join(srv.dir, "treedst2")), ["same.txt", "y/large.bin", "y/same.txt"]);

    const dry = await cli("file", "rm", "-r", "--dry-run", "/tree/x/");
    assert.equal(dry.code, 0, errorText(dry));
    assert.match(dry.stdout, /\/tree\/x\/same\.txt\s+would delete \(version 1\)/);
    assert.match(dry.stderr, /3 files would be deleted; nothing was deleted/);
    assert.equal((await cli("file", "ls", "-R", "/tree")).stdout.split("\n").filter(Boolean).length, 4);

    const rm = await cli("file", "rm", "-r", "/tree/x/");
    assert.equal(rm.code, 0, errorText(rm));
    assert.equal((await cli("file", "ls", "-R", "/tree")).stdout, "/tree/same.txt\n");
    const gone = await cli("file", "rm", "-r", "/tree/x/");
    assert.equal(gone.code, 4);
  });

  test("sync up and down: only what changed, --delete, --dry-run", async () => {
    const src = join(srv.dir, "syncsrc");
    await mkdir(join(src, "d"), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, "d", `f${i}.txt`), `file ${i}\n`);
    await writeFile(join(src, "large.bin"), randomBytes(2 * MiB + 1));

    const first = await cli("file", "sync", "--json", src, "/sync/");
    assert.equal(first.code, 0, errorText(first));
    assert.equal(jsonOut<{ action: string }[]>(first).filter((r) => r.action === "upload").length, 21);

    const again = await cli("file", "sync", src, "/sync/");
    assert.equal(again.code, 0, errorText(again));
    assert.equal(again.stdout, "");
    assert.match(again.stderr, /0 uploaded \(0 B\), 21 unchanged, 0 deleted/);

    // One edited, one touched (same content, new time), one new, one removed.
    await writeFile(join(src, "d", "f1.txt"), "file one, edited\n");
    const later = new Date(Date.now() + 60_000);
    await utimes(join(src, "d", "f2.txt"), later, later);
    await writeFile(join(src, "new.txt"), "new\n");
    await import("node:fs/promises").then((fs) => fs.unlink(join(src, "d", "f3.txt")));
    const dry = await cli("file", "sync", "--dry-run", "--delete", src, "/sync/");
    assert.equal(dry.code, 0, errorText(dry));
    assert.equal(
      dry.stdout,
      "would upload /sync/d/f1.txt (changed)\nwould upload /sync/new.txt (new)\nwould delete /sync/d/f3.txt\n",
    );
    assert.equal((await cli("file", "ls", "/sync/d/f3.txt")).code, 0, "dry run changed nothing");
    const sync = await cli("file", "sync", "--delete", src, "/sync/");
    assert.equal(sync.code, 0, errorText(sync));
    assert.equal(
      sync.stdout,
      "uploaded /sync/d/f1.txt (changed)\nuploaded /sync/new.txt (new)\ndeleted /sync/d/f3.txt\n",
    );
    const f2 = jsonOut<PutJson[]>(await cli("file", "versions", "--json", "/sync/d/f2.txt"));
    assert.equal(f2.length, 1, "a touched file is not uploaded again");

    // Down: into a new directory, then only what changed remotely; --delete removes local extras.
    const dst = join(srv.dir, "syncdst");
    const down = await cli("file", "sync", "/sync/", dst);
    assert.equal(down.code, 0, errorText(down));
    assert.deepEqual(await tree(dst), await tree(src));
    assert.ok((await readFile(join(dst, "large.bin"))).equals(await readFile(join(src, "large.bin"))));
    const mtimeRemote = jsonOut<PutJson[]>(await cli("file", "ls", "--json", "/sync/d/f1.txt"))[0]!.meta[
      "mtime"
    ];
    assert.equal(
      (await stat(join(dst, "d", "f1.txt"))).mtime.toISOString(),
      mtimeRemote,
      "the remote mtime is kept",
    );
    const downAgain = await cli("file", "sync", "/sync/", dst);
    assert.equal(downAgain.stdout, "");
    assert.match(downAgain.stderr, /0 downloaded \(0 B\), 21 unchanged, 0 deleted/);
    await writeFile(join(dst, "extra.txt"), "local only");
    await mkdir(join(dst, "old", "deep"), { recursive: true });
    await writeFile(join(dst, "old", "deep", "x.txt"), "local only, deep");
    await mkdir(join(dst, "was-empty"));
    await writeFile(join(src, "d", "f4.txt"), "file four, edited remotely\n");
    assert.equal((await cli("file", "sync", src, "/sync/")).code, 0);
    const downChanged = await cli("file", "sync", "--delete", "/sync/", dst);
    assert.equal(downChanged.code, 0, errorText(downChanged));
    assert.equal(
      downChanged.stdout,
      `downloaded /sync/d/f4.txt (changed)\ndeleted ${join(dst, "extra.txt")}\ndeleted ${join(dst, "old", "deep", "x.txt")}\n`,
    );
    // The directories the deletes left empty go; one that was empty before stays.
    await assert.rejects(stat(join(dst, "old")), { code: "ENOENT" });
    assert.ok((await stat(join(dst, "was-empty"))).isDirectory());
    assert.ok((await stat(join(dst, "d"))).isDirectory());
    assert.equal(await readFile(join(dst, "d", "f4.txt"), "utf8"), "file four, edited remotely\n");

    // A mistyped remote directory is "no such path", and --delete then deletes nothing locally.
    const before = await tree(dst);
    for (const source of ["/syncc/", "/sync/nope/"]) {
      const typo = await cli("file", "sync", "--delete", source, dst);
      assert.equal(typo.code, 4, errorText(typo));
      assert.match(errorText(typo), new RegExp(`no such path: nothing is stored below ${source}`));
      assert.match(errorText(typo), /cacheroach file ls \/(sync\/)?/);
    }
    assert.deepEqual(await tree(dst), before, "nothing local was deleted");

    // Arguments that do not say which side is remote get the command the user most likely meant.
    for (const [args, meant] of [
      [[src, "/sync"], `${src} /sync/`],
      [[`${src}/`, "/sync/"], `${src} /sync/`],
      [["/sync", dst], `/sync/ ${dst}`],
      [["/sync", "not-yet-there"], "/sync/ not-yet-there"],
    ] as const) {
      const r = await cli("file", "sync", ...args);
      assert.equal(r.code, 2, errorText(r));
      assert.match(
        errorText(r),
        new RegExp(`did you mean: cacheroach file sync ${meant.replaceAll("/", "\\/")}\n`),
      );
    }

    const both = await cli("file", "sync", "/a/", "/b/");
    assert.equal(both.code, 2);
    assert.match(errorText(both), /both .* look like remote directories/);
  });
});
