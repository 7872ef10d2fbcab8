/** `cacheroach file put|get|ls|rm` against a real server (startTestServer) and database. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { HASH_CACHE_ENV, HashCache, identityOf, SETTLE_NS } from "@cacheroach/cli";
import pg from "pg";
import { errorText, runCli, SCRATCHPAD, spawnCli, useCliServer, writeCliConfig } from "./helpers.js";

const MiB = 1 << 20;

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const piece of createReadStream(path)) h.update(piece as Buffer);
  return h.digest("hex");
}

/** Writes `size` random bytes to `path` a few MiB at a time. */
async function randomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, "w");
  try {
    for (let off = 0; off < size; off += 8 * MiB) await fh.write(randomBytes(Math.min(8 * MiB, size - off)));
  } finally {
    await fh.close();
  }
}

interface PutJson {
  status: string;
  path: string;
  size: number;
  version: number;
  contentHash: string;
}

describe("file commands against a server", () => {
  let db: pg.Client;
  const srv = useCliServer({
    env: () => ({ [HASH_CACHE_ENV]: join(srv.dir, "hash-cache") }),
    setup: async (s) => {
      db = new pg.Client({ connectionString: s.ts.databaseUrl });
      await db.connect();
    },
    teardown: async () => {
      await db?.end();
    },
  });
  const cli = srv.cli;

  const chunkCount = async () => Number((await db.query("SELECT count(*) AS n FROM chunks")).rows[0].n);

  test("put, ls, get and rm a small file", async () => {
    const local = join(srv.dir, "hello.txt");
    await writeFile(local, "hello, cacheroach\n");
    const put = await cli("file", "put", "/small/", local);
    assert.equal(put.code, 0, errorText(put));
    assert.match(put.stdout, /^Path\s+Size\s+Version\s+Status\n\/small\/hello\.txt\s+18\s+1\s+written\n$/);

    const ls = await cli("file", "ls", "/small");
    assert.equal(ls.stdout, "/small/hello.txt\n");
    const wide = await cli("file", "ls", "-w", "/small");
    assert.match(
      wide.stdout,
      /^Path\s+Size\s+Version\s+Modified\s+Hash\n\/small\/hello\.txt\s+18\s+1\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+[0-9a-f]{12}\n$/,
    );

    const out = join(srv.dir, "hello.copy");
    const get = await cli("file", "get", "/small/hello.txt", "-o", out);
    assert.equal(get.code, 0, errorText(get));
    assert.equal(await readFile(out, "utf8"), "hello, cacheroach\n");
    assert.match(get.stdout, /\/small\/hello\.txt\s+.*hello\.copy\s+18\s+1/);

    const rm = await cli("file", "rm", "/small/hello.txt");
    assert.equal(rm.code, 0, errorText(rm));
    assert.match(rm.stdout, /\/small\/hello\.txt\s+deleted \(version 1\)/);
    assert.equal((await cli("file", "ls", "/small")).stdout, "");
  });

  test("arguments in the wrong order get a hint built from what was typed", async () => {
    // Checked before any local file is read: the names need not exist.
    const put = await cli("file", "put", "hello.txt", "/x/");
    assert.equal(put.code, 2);
    assert.match(errorText(put), /the remote path comes first: cacheroach file put \/x\/ hello\.txt/);
    const fetchArgs = await cli("file", "fetch", "https://example.com/a.txt", "/in/");
    assert.equal(fetchArgs.code, 2);
    assert.match(
      errorText(fetchArgs),
      /the remote path comes first: cacheroach file fetch \/in\/ https:\/\/example\.com\/a\.txt/,
    );
  });

  test("--json output of put, ls and get", async () => {
    const local = join(srv.dir, "j.txt");
    await writeFile(local, "json");
    const put = await cli("file", "put", "--json", "/json/", local);
    const [p] = JSON.parse(put.stdout) as PutJson[];
    assert.equal(p?.status, "ok");
    assert.equal(p?.path, "/json/j.txt");
    assert.equal(p?.size, 4);
    assert.match(p?.contentHash ?? "", /^[0-9a-f]{64}$/);
    const ls = JSON.parse((await cli("file", "ls", "--json", "/json")).stdout) as PutJson[];
    assert.deepEqual(
      ls.map((f) => [f.path, f.size, f.contentHash]),
      [["/json/j.txt", 4, p?.contentHash]],
    );
    const get = await cli("file", "get", "--json", "/json/j.txt", "-o", join(srv.dir, "j.copy"));
    assert.equal((JSON.parse(get.stdout) as PutJson[])[0]?.contentHash, p?.contentHash);
  });

  test("an empty file round-trips", async () => {
    const local = join(srv.dir, "empty");
    await writeFile(local, "");
    const put = await cli("file", "put", "/e/", local);
    assert.equal(put.code, 0, errorText(put));
    assert.match(put.stdout, /\/e\/empty\s+0\s+1/);
    const out = join(srv.dir, "empty.copy");
    await writeFile(out, "old contents are replaced");
    const get = await cli("file", "get", "/e/empty", "-o", out);
    assert.equal(get.code, 0, errorText(get));
    assert.equal((await readFile(out)).length, 0);
    assert.match((await cli("file", "ls", "-w", "/e")).stdout, /\/e\/empty\s+0\s+1/);
  });

  test("a directory tree with -r, and several files back into a directory", async () => {
    const tree = join(srv.dir, "tree");
    await mkdir(join(tree, "sub", "deeper"), { recursive: true });
    await writeFile(join(tree, "a.txt"), "a");
    await writeFile(join(tree, "sub", "b.txt"), "bb");
    await writeFile(join(tree, "sub", "deeper", "c.bin"), randomBytes(3 * MiB));
    await writeFile(join(tree, "sub", "empty"), "");
    const put = await cli("file", "put", "-r", "-p", "2", "/tree/", tree);
    assert.equal(put.code, 0, errorText(put));
    const ls = await cli("file", "ls", "-R", "/tree");
    assert.equal(ls.stdout, "/tree/a.txt\n/tree/sub/b.txt\n/tree/sub/deeper/c.bin\n/tree/sub/empty\n");

    const outDir = join(srv.dir, "tree-out");
    const get = await cli(
      "file",
      "get",
      "/tree/a.txt",
      "/tree/sub/b.txt",
      "/tree/sub/deeper/c.bin",
      "-o",
      `${outDir}/`,
    );
    assert.equal(get.code, 0, errorText(get));
    assert.deepEqual((await readdir(outDir)).sort(), ["a.txt", "b.txt", "c.bin"]);
    assert.deepEqual(
      await readFile(join(outDir, "c.bin")),
      await readFile(join(tree, "sub", "deeper", "c.bin")),
    );

    const notDir = await cli("file", "get", "/tree/a.txt", "/tree/sub/b.txt", "-o", join(srv.dir, "nodir"));
    assert.equal(notDir.code, 2);
    assert.match(errorText(notDir), /must be a directory when getting several files/);
  });

  test("a 100 MiB random file is byte-identical after get, and a second put stores no new chunks", async () => {
    const local = join(srv.dir, "big.bin");
    await randomFile(local, 100 * MiB);
    const before0 = await chunkCount();
    const put1 = await cli("file", "put", "--always", "--json", "/big/", local);
    assert.equal(put1.code, 0, errorText(put1));
    const after1 = await chunkCount();
    assert.equal(after1 - before0, 200, "100 MiB = 200 chunks of 512 KiB");

    const out = join(srv.dir, "big.copy");
    const get = await cli("file", "get", "/big/big.bin", "-o", out);
    assert.equal(get.code, 0, errorText(get));
    assert.equal(await sha256File(out), await sha256File(local));

    const put2 = await cli("file", "put", "--always", "--json", "/big/", local);
    assert.equal(put2.code, 0, errorText(put2));
    assert.equal(await chunkCount(), after1, "no new chunks for identical content");
    const [v1] = JSON.parse(put1.stdout) as PutJson[];
    const [v2] = JSON.parse(put2.stdout) as PutJson[];
    assert.equal(v2?.version, (v1?.version ?? 0) + 1);
    assert.equal(v2?.contentHash, v1?.contentHash);

    // Change the last chunk only: rounds grow while nothing is missing (32, 64, then the last 104
    // chunks), so the changed chunk is re-read from disk when found missing; 1 new chunk is stored.
    const fh = await open(local, "r+");
    await fh.write(randomBytes(1000), 0, 1000, 100 * MiB - 1000);
    await fh.close();
    const put3 = await cli("file", "put", "--always", "-v", "--json", "/big/", local);
    assert.equal(put3.code, 0, errorText(put3));
    assert.equal(await chunkCount(), after1 + 1, "only the changed chunk is new");
    assert.equal(put3.stderr.match(/Uploads\/FindMissing ok/g)?.length, 3, "three rounds for 200 chunks");
    const out3 = join(srv.dir, "big.copy3");
    assert.equal((await cli("file", "get", "/big/big.bin", "-o", out3)).code, 0);
    assert.equal(await sha256File(out3), await sha256File(local));
  });

  test("the hash cache: an unchanged file is not read again; a changed or wrong entry is not trusted", async () => {
    const local = join(srv.dir, "cached.bin");
    await randomFile(local, 50 * MiB + 3); // 101 chunks
    const cacheDir = join(srv.dir, "own-hash-cache"); // other tests record entries in the shared one
    const cli = (...argv: string[]) => runCli([...argv, "-c", srv.config], { [HASH_CACHE_ENV]: cacheDir });
    const reused = /unchanged since hashed/;
    const byHash = /unchanged since hashed; wrote content [0-9a-f]{64} by its hash/;
    const rounds = (r: { stderr: string }) => r.stderr.match(/Uploads\/FindMissing ok/g)?.length;
    const getMatches = async (name: string) => {
      const out = join(srv.dir, name);
      assert.equal((await cli("file", "get", "/cached/cached.bin", "-o", out)).code, 0);
      assert.equal(await sha256File(out), await sha256File(local));
    };
    // Written just now: hashed, but not recorded (it has not settled).
    const put0 = await cli("file", "put", "--always", "-v", "/cached/", local);
    assert.equal(put0.code, 0, errorText(put0));
    assert.deepEqual(await readdir(cacheDir).catch(() => []), []);
    await new Promise((r) => setTimeout(r, Number(SETTLE_NS / 1_000_000n) + 100));
    // Settled: hashed again (rounds of 32, 64, 5) and recorded.
    const put1 = await cli("file", "put", "--always", "-v", "--json", "/cached/", local);
    assert.equal(put1.code, 0, errorText(put1));
    assert.doesNotMatch(put1.stderr, reused);
    assert.equal(rounds(put1), 3);
    assert.equal((await readdir(cacheDir)).length, 1);
    const chunks = await chunkCount();
    // Unchanged: the content hash from the cached hashes names content the tenant stores, so one
    // Begin{content_hash} writes the version; nothing is read, no chunk list is sent.
    const put2 = await cli("file", "put", "--always", "-v", "--json", "/cached/", local);
    assert.equal(put2.code, 0, errorText(put2));
    assert.match(put2.stderr, byHash);
    assert.equal(rounds(put2), undefined);
    assert.equal(put2.stderr.match(/Uploads\/\w+ ok/g)?.length, 1, "one upload RPC");
    assert.equal(await chunkCount(), chunks);
    const [v1] = JSON.parse(put1.stdout) as PutJson[];
    const [v2] = JSON.parse(put2.stdout) as PutJson[];
    assert.equal(v2?.version, (v1?.version ?? 0) + 1);
    assert.equal(v2?.contentHash, v1?.contentHash);
    await getMatches("cached.copy2");
    // Another tenant does not store that content: its chunks are checked in one round of all 101
    // cached hashes, sent (none are stored there), and appended; still nothing is hashed again.
    const created = await cli("tenant", "create", "hash cache tenant", "--json");
    assert.equal(created.code, 0, errorText(created));
    const otherTenant = (JSON.parse(created.stdout) as { id: string }).id;
    const putOther = await cli("file", "put", "--always", "-v", "-t", otherTenant, "/cached/", local);
    assert.equal(putOther.code, 0, errorText(putOther));
    assert.match(putOther.stderr, /does not store content [0-9a-f]{64} yet; uploading it/);
    assert.match(putOther.stderr, /reusing 101 chunk hashes from the hash cache/);
    assert.equal(rounds(putOther), 1);
    assert.equal(await chunkCount(), chunks + 101, "the other tenant stores its own chunks");
    const outOther = join(srv.dir, "cached.other");
    assert.equal((await cli("file", "get", "-t", otherTenant, "/cached/cached.bin", "-o", outOther)).code, 0);
    assert.equal(await sha256File(outOther), await sha256File(local));
    // --no-hash-cache reads and hashes every byte.
    const put3 = await cli("file", "put", "--always", "-v", "--no-hash-cache", "/cached/", local);
    assert.equal(put3.code, 0, errorText(put3));
    assert.doesNotMatch(put3.stderr, reused);
    assert.equal(rounds(put3), 3);
    // Rewritten in place with the same size and the old mtime put back: ctime still changed.
    const { atime, mtime } = await stat(local);
    const fh = await open(local, "r+");
    await fh.write(randomBytes(100), 0, 100, 10 * MiB);
    await fh.close();
    await utimes(local, atime, mtime);
    const put4 = await cli("file", "put", "--always", "-v", "/cached/", local);
    assert.equal(put4.code, 0, errorText(put4));
    assert.doesNotMatch(put4.stderr, reused);
    assert.equal(await chunkCount(), chunks + 102, "the rewritten chunk is new");
    await getMatches("cached.copy4");
    // A wrong entry for the current file: the chunks it names are missing, so the file's real bytes
    // are sent under the wrong hashes; the server refuses them, nothing is stored, the entry goes.
    const id = identityOf(await stat(local, { bigint: true }));
    const wrong = Array.from({ length: 101 }, () => randomBytes(32));
    assert.equal(
      await new HashCache(cacheDir).record(id, id, id.ctimeNs + SETTLE_NS, 512 * 1024, wrong),
      true,
    );
    const put5 = await cli("file", "put", "--always", "-v", "/cached/", local);
    assert.notEqual(put5.code, 0);
    assert.match(put5.stderr, /cache entry removed/);
    assert.equal(await chunkCount(), chunks + 102, "nothing stored");
    assert.equal(await new HashCache(cacheDir).lookup(id, 512 * 1024), undefined);
    const put6 = await cli("file", "put", "--always", "-v", "/cached/", local);
    assert.equal(put6.code, 0, errorText(put6));
    assert.doesNotMatch(put6.stderr, reused);
    await getMatches("cached.copy6");
  });

  test("get -o - writes the bytes to stdout", async () => {
    const local = join(srv.dir, "stream.bin");
    await randomFile(local, 3 * MiB + 5);
    assert.equal((await cli("file", "put", "/stream/", local)).code, 0);
    const r = await spawnCli(["file", "get", "/stream/stream.bin", "-o", "-", "-c", srv.config]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, await readFile(local));
  });

  test("many small files travel in batches both ways; large ones alone; failures stay per file", async () => {
    const src = join(srv.dir, "many");
    await mkdir(src);
    const names: string[] = [];
    for (let i = 0; i < 600; i++) {
      names.push(`f${String(i).padStart(3, "0")}`);
      await writeFile(join(src, names[i]!), randomBytes(i % 7 === 0 ? 0 : 1 + (i % 5000)));
    }
    names.push("large-a", "large-b");
    await randomFile(join(src, "large-a"), 300 * 1024);
    await randomFile(join(src, "large-b"), 2 * MiB);
    const put = await cli("file", "put", "-r", "-p", "3", "-v", "--json", "/many/", src);
    assert.equal(put.code, 0, errorText(put));
    const putResults = JSON.parse(put.stdout) as PutJson[];
    assert.equal(putResults.length, 602);
    assert.ok(putResults.every((r) => r.status === "ok" && r.version === 1));
    // 600 small files in 3 calls (256 per call at most), the two large ones on their own.
    assert.equal(put.stderr.match(/Uploads\/PutFiles ok/g)?.length, 3);
    const counted = await db.query(
      "SELECT count(*)::INT8 AS n FROM files WHERE tenant_id = $1 AND path >= $2 AND path < $3",
      [SCRATCHPAD, Buffer.from("/many/"), Buffer.from("/many0")],
    );
    assert.equal(Number(counted.rows[0].n), 602);

    const outDir = join(srv.dir, "many-out");
    const remotes = names.map((n) => `/many/${n}`);
    const get = await cli("file", "get", "-p", "2", "-v", "-o", `${outDir}/`, ...remotes, "/many/absent");
    assert.equal(get.code, 4, errorText(get));
    assert.match(get.stderr, /failed: \/many\/absent: .*not found/);
    assert.match(errorText(get), /1 of 603 files failed to download/);
    assert.equal(get.stderr.match(/Files\/ReadMany ok/g)?.length, 3);
    for (const n of names) {
      assert.deepEqual(await readFile(join(outDir, n)), await readFile(join(src, n)), n);
    }
    assert.ok(!(await readdir(outDir)).some((n) => n.includes("cacheroach-tmp")));

    // --no-clobber over the same tree: every file fails on its own, nothing new is written.
    const again = await cli("file", "put", "-r", "--no-clobber", "--json", "/many/", src);
    assert.equal(again.code, 5);
    const againResults = JSON.parse(again.stdout) as { status: string; code?: string }[];
    assert.ok(againResults.every((r) => r.status === "error" && r.code === "failed_precondition"));
    const versions = await db.query(
      "SELECT max(version)::INT8 AS v FROM file_versions WHERE tenant_id = $1 AND path >= $2 AND path < $3",
      [SCRATCHPAD, Buffer.from("/many/"), Buffer.from("/many0")],
    );
    assert.equal(Number(versions.rows[0].v), 1);
  });

  test("--no-clobber refuses to overwrite", async () => {
    const local = join(srv.dir, "nc.txt");
    await writeFile(local, "first");
    assert.equal((await cli("file", "put", "--no-clobber", "/nc/", local)).code, 0);
    const again = await cli("file", "put", "--no-clobber", "/nc/", local);
    assert.equal(again.code, 5);
    assert.match(errorText(again), /precondition failed/);
    // The large (streamed) path checks it too.
    const big = join(srv.dir, "nc-big.bin");
    await randomFile(big, 2 * MiB);
    assert.equal((await cli("file", "put", "--no-clobber", "/nc/", big)).code, 0);
    assert.equal((await cli("file", "put", "--no-clobber", "/nc/", big)).code, 5);
  });

  test("a partial failure uploads the rest and exits non-zero", async () => {
    const a = join(srv.dir, "pa.txt");
    const b = join(srv.dir, "pb.txt");
    await writeFile(a, "a");
    await writeFile(b, "b");
    assert.equal((await cli("file", "put", "/partial/", a)).code, 0);
    const r = await cli("file", "put", "--no-clobber", "/partial/", a, b);
    assert.equal(r.code, 5);
    assert.match(r.stdout, /\/partial\/pb\.txt\s+1\s+1/);
    assert.doesNotMatch(r.stdout, /pa\.txt/);
    assert.match(r.stderr, /failed: .*pa\.txt → \/partial\/pa\.txt: precondition failed/);
    assert.match(errorText(r), /1 of 2 files failed to upload/);
    const j = await cli("file", "put", "--json", "--no-clobber", "/partial/", a, b);
    assert.equal(j.code, 5);
    assert.deepEqual(
      (JSON.parse(j.stdout) as { status: string; code?: string }[]).map((x) => [x.status, x.code]),
      [
        ["error", "failed_precondition"],
        ["error", "failed_precondition"],
      ],
    );
  });

  test("--verbose logs each RPC to stderr", async () => {
    const r = await cli("file", "ls", "-v", "/");
    assert.equal(r.code, 0);
    assert.match(r.stderr, /\[cacheroach\] transport connect-h1/);
    assert.match(r.stderr, /cacheroach\.v1\.Files\/List ok/);
  });

  test("rm reports each path and fails for missing ones", async () => {
    const local = join(srv.dir, "rm.txt");
    await writeFile(local, "x");
    assert.equal((await cli("file", "put", "/rm/", local)).code, 0);
    const r = await cli("file", "rm", "/rm/rm.txt", "/rm/missing.txt");
    assert.equal(r.code, 4);
    assert.match(r.stdout, /\/rm\/rm\.txt\s+deleted \(version 1\)/);
    assert.match(r.stdout, /\/rm\/missing\.txt\s+error: .*not found/);
    assert.match(errorText(r), /1 of 2 paths could not be deleted/);
    const one = await cli("file", "rm", "/rm/missing.txt");
    assert.equal(one.code, 4);
    assert.match(errorText(one), /not found/);
    const json = await cli("file", "rm", "--json", "/rm/missing.txt");
    assert.equal(json.code, 4);
    assert.equal((JSON.parse(json.stdout) as { status: string }[])[0]?.status, "error");
  });

  test("get of a missing file fails and leaves no temp file", async () => {
    const outDir = join(srv.dir, "missing-out");
    await mkdir(outDir);
    const r = await cli("file", "get", "/no/such/file.txt", "-o", `${outDir}/`);
    assert.equal(r.code, 4);
    assert.match(errorText(r), /not found/);
    assert.deepEqual(await readdir(outDir), []);
  });

  test("unknown tenant is a clear error for every command", async () => {
    const t = "11111111-2222-3333-4444-555555555555";
    const local = join(srv.dir, "t.txt");
    await writeFile(local, "x");
    for (const argv of [
      ["file", "put", "/t/", local],
      ["file", "get", "/t/t.txt", "-o", join(srv.dir, "t.copy")],
      ["file", "rm", "/t/t.txt"],
      ["file", "ls"],
    ]) {
      const r = await cli(...argv, "-t", t);
      assert.equal(r.code, 4, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), new RegExp(`tenant ${t} does not exist`), argv.join(" "));
    }
  });

  test("a bad token is reported as not authenticated", async () => {
    const bad = join(srv.dir, "bad-config");
    await writeCliConfig(bad, srv.ts.url, "not.a.jwt");
    const r = await runCli(["file", "ls", "-c", bad]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /not authenticated/);
    assert.match(errorText(r), /cacheroach bootstrap/);
  });

  test("remote paths with .. are refused before upload", async () => {
    const local = join(srv.dir, "ok.txt");
    await writeFile(local, "x");
    const r = await cli("file", "put", "/a/../b/", local);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /".."/);
  });
});
