/**
 * Walking a local tree (lib/local-files.ts walkLocal): the part handed to a worker thread finds
 * exactly what the calling thread alone finds, in the same order, links and odd entries included.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
// The built package: its worker thread loads dist/lib/walk-thread.js.
import { walkLocal } from "@cacheroach/cli";
import { tempDir } from "./helpers.js";

test("a walk finished in a worker thread finds what the calling thread finds, in the same order", async () => {
  const { dir: root, cleanup } = await tempDir("walk-");
  try {
    for (let d = 0; d < 30; d++) {
      const dir = join(root, `d${d}`, d % 3 === 0 ? "deeper" : "");
      await mkdir(dir, { recursive: true });
      for (let f = 0; f < 40; f++) await writeFile(join(dir, `f${f}.txt`), "x".repeat(f));
    }
    // Names that sort differently bytewise and by path ("a-b" vs "a/…"), links, and a FIFO.
    await mkdir(join(root, "a"));
    await writeFile(join(root, "a", "x"), "ax");
    await writeFile(join(root, "a-b"), "ab");
    await symlink(join(root, "a", "x"), join(root, "link-to-file"));
    await symlink(join(root, "d1"), join(root, "link-to-dir"));
    execFileSync("mkfifo", [join(root, "fifo")]);

    const here = await walkLocal(root, { thread: false });
    assert.equal(here.threaded, false);
    assert.equal(here.files.length, 30 * 40 + 3);
    assert.deepEqual(here.skipped.sort(), [join(root, "fifo"), join(root, "link-to-dir")]);
    const rels = here.files.map((f) => f.rel);
    assert.ok(rels.indexOf("a/x") < rels.indexOf("a-b"), "depth first, each directory sorted by name");
    assert.equal(here.files.find((f) => f.rel === "link-to-file")?.size, 2);

    // Handed over at once, and after part of the tree: the same answer.
    for (const handOverMs of [0, 1]) {
      const there = await walkLocal(`${root}/`, { handOverMs });
      assert.equal(there.threaded, true, "the worker thread ran");
      assert.deepEqual(there.files, here.files);
      assert.deepEqual(there.skipped.sort(), here.skipped);
    }
  } finally {
    await cleanup();
  }
});

test("a walk that meets a file system error fails with it, in either thread", async () => {
  const { dir, cleanup } = await tempDir("walk-missing-");
  try {
    await assert.rejects(walkLocal(join(dir, "nope"), { handOverMs: 0 }), { code: "ENOENT" });
    // An error met in the worker thread is thrown as the calling thread would throw it.
    await mkdir(join(dir, "sub"));
    await symlink("loop", join(dir, "sub", "loop"));
    for (const opts of [{ thread: false }, { handOverMs: 0 }]) {
      await assert.rejects(walkLocal(dir, opts), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, "ELOOP");
        assert.equal(err.path, join(dir, "sub", "loop"));
        assert.match(err.message, /ELOOP/);
        return true;
      });
    }
  } finally {
    await cleanup();
  }
});
