/**
 * Hashing on worker threads (lib/hash-pool.ts) gives exactly the hashes of the one-thread code,
 * for any way the bytes are cut, and a process using it still exits on its own.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
// The built package: its worker threads load dist/lib/hash-thread.js.
import { ContentHasher, chunkHash, HashPool, ParallelContentHasher } from "@cacheroach/cli";
import { CLI_ROOT, tempDir } from "./helpers.js";

const KiB = 1024;

test("HashPool hashes each chunk of a block like chunkHash, and hands the block back", async () => {
  const pool = new HashPool(2);
  try {
    assert.equal(await pool.threaded(), true, "the workers started");
    for (const [size, chunk] of [
      [3 * 64 * KiB, 64 * KiB],
      [3 * 64 * KiB + 5, 64 * KiB],
      [100 * KiB, 512 * KiB],
      [16 * KiB, 4 * KiB],
    ] as const) {
      const data = randomBytes(size);
      const block = Buffer.allocUnsafe(size);
      data.copy(block);
      const out = await pool.hash(block, chunk);
      assert.ok(out.block.equals(data), "the same bytes come back");
      const expected: Buffer[] = [];
      for (let off = 0; off < size; off += chunk) expected.push(chunkHash(data.subarray(off, off + chunk)));
      assert.deepEqual(out.hashes, expected);
    }
    // A buffer sharing pooled memory is hashed on the calling thread, and left usable.
    const small = Buffer.from("pooled bytes");
    const out = await pool.hash(small, 4);
    assert.equal(out.block, small);
    assert.equal(out.hashes.length, 3);
  } finally {
    pool.close();
  }
});

test("ParallelContentHasher equals ContentHasher however the input is cut", async () => {
  const pool = new HashPool(2);
  try {
    const cases: [number, number, number][] = [
      [0, 512 * KiB, 1000],
      [1, 512 * KiB, 1000],
      [9 * 1024 * KiB, 512 * KiB, 65536], // several 4 MiB blocks and a short last one
      [8 * 1024 * KiB, 512 * KiB, 7777], // exact multiple of the block size
      [3 * 1024 * KiB + 1, 64 * KiB, 1 << 20],
      [5 * 1024 * KiB, 5 * 1024 * KiB, 333_333], // chunk larger than the staging block size
    ];
    for (const [size, chunk, piece] of cases) {
      const data = randomBytes(size);
      const parallel = new ParallelContentHasher(pool, chunk);
      for (let off = 0; off < size; off += piece) {
        parallel.update(data.subarray(off, off + piece));
        await parallel.ready();
      }
      const expected = new ContentHasher(chunk).update(data).digest();
      assert.deepEqual(await parallel.digest(), expected, `size ${size}, chunk ${chunk}, pieces ${piece}`);
    }
  } finally {
    pool.close();
  }
});

test("a closed pool refuses work with a clear error", async () => {
  const pool = new HashPool(1);
  pool.close();
  await assert.rejects(pool.hash(Buffer.alloc(64 * KiB), 16 * KiB), /hash pool closed/);
});

test("a process with an idle pool exits by itself, and waits for answers it is owed", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const script = join(dir, "digest.mjs");
    await writeFile(
      script,
      `import { sharedHashPool, ParallelContentHasher } from ${JSON.stringify(join(CLI_ROOT, "dist", "lib", "hash-pool.js"))};
const h = new ParallelContentHasher(sharedHashPool(), 512 * 1024);
h.update(Buffer.alloc(9 << 20, 1));
console.log((await h.digest()).toString("hex"));
`,
    );
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 30_000, env });
    assert.equal(r.status, 0, r.stderr);
    const expected = new ContentHasher(512 * 1024).update(Buffer.alloc(9 << 20, 1)).digest();
    assert.equal(r.stdout.trim(), expected.toString("hex"));
  } finally {
    await cleanup();
  }
});
