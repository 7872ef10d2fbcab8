/**
 * The local chunk-hash cache (lib/hash-cache.ts): an entry is returned only for the same, unchanged
 * file that had settled before it was hashed; anything else is a miss, never an error.
 */
import assert from "node:assert/strict";
import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import {
  defaultHashCacheDir,
  type FileIdentity,
  HASH_CACHE_ENV,
  HashCache,
  identityOf,
  nowNs,
  SETTLE_NS,
} from "../src/lib/hash-cache.js";
import { tempDir } from "./helpers.js";

const CHUNK = 4;
const hashes = (n: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(32, i + 1));

/** Writes a file of `size` bytes now and returns its identity. */
async function identityOfFile(path: string, size: number): Promise<FileIdentity> {
  await writeFile(path, Buffer.alloc(size, 7));
  return identityOf(await stat(path, { bigint: true }));
}

const HOUR_AGO = nowNs() - 3600n * 1_000_000_000n;

/** An identity that settled long ago (its ctime and mtime are an hour old). */
function settledIdentity(over: Partial<FileIdentity> = {}): FileIdentity {
  return { dev: 1n, ino: 42n, size: 10n, mtimeNs: HOUR_AGO, ctimeNs: HOUR_AGO, ...over };
}

test("an entry round-trips and every changed field of the identity misses", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cache = new HashCache(join(dir, "c"));
    const id = settledIdentity();
    assert.equal(await cache.lookup(id, CHUNK), undefined, "empty cache");
    assert.equal(await cache.record(id, id, nowNs(), CHUNK, hashes(3)), true);
    assert.deepEqual(await cache.lookup(id, CHUNK), hashes(3));
    assert.equal(await cache.lookup(id, CHUNK * 2), undefined, "other chunk size");
    for (const field of ["size", "mtimeNs", "ctimeNs"] as const) {
      assert.equal(await cache.lookup({ ...id, [field]: id[field] + 1n }, CHUNK), undefined, field);
    }
    // Another inode or device is another entry: nothing recorded there.
    assert.equal(await cache.lookup({ ...id, ino: 43n }, CHUNK), undefined);
    assert.equal(await cache.lookup({ ...id, dev: 2n }, CHUNK), undefined);
    await cache.forget(id);
    assert.equal(await cache.lookup(id, CHUNK), undefined, "forgotten");
  } finally {
    await cleanup();
  }
});

test("nothing is recorded for a file that changed during hashing or had not settled before it", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cache = new HashCache(join(dir, "c"));
    const id = settledIdentity();
    const changed = { ...id, ctimeNs: nowNs(), mtimeNs: nowNs() };
    assert.equal(await cache.record(id, changed, nowNs(), CHUNK, hashes(3)), false, "changed while hashed");
    // A real file written just now: ctime is now, so it has not settled.
    const path = join(dir, "fresh");
    const fresh = await identityOfFile(path, 10);
    assert.equal(await cache.record(fresh, fresh, nowNs(), CHUNK, hashes(3)), false, "not settled");
    // An old mtime does not help: ctime records the utimes call itself.
    const old = new Date(Date.now() - 3600_000);
    await utimes(path, old, old);
    const backdated = identityOf(await stat(path, { bigint: true }));
    assert.equal(await cache.record(backdated, backdated, nowNs(), CHUNK, hashes(3)), false, "ctime is new");
    // The same file counts as settled once SETTLE_NS has passed since its ctime.
    const later = backdated.ctimeNs + SETTLE_NS;
    assert.equal(await cache.record(backdated, backdated, later, CHUNK, hashes(3)), true);
    assert.deepEqual(await cache.lookup(backdated, CHUNK), hashes(3));
    assert.equal(await cache.lookup({ ...backdated, size: 11n }, CHUNK), undefined);
  } finally {
    await cleanup();
  }
});

test("a damaged or foreign entry is a miss, and a wrong chunk count is refused", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cacheDir = join(dir, "c");
    const cache = new HashCache(cacheDir);
    const id = settledIdentity();
    await cache.record(id, id, nowNs(), CHUNK, hashes(3));
    const [name] = await readdir(cacheDir);
    const path = join(cacheDir, name!);
    const good = await readFile(path);
    await writeFile(path, good.subarray(0, good.length - 1));
    assert.equal(await cache.lookup(id, CHUNK), undefined, "truncated");
    await writeFile(path, Buffer.concat([Buffer.from("{not json\n"), good.subarray(good.indexOf(10) + 1)]));
    assert.equal(await cache.lookup(id, CHUNK), undefined, "bad header");
    await writeFile(path, "");
    assert.equal(await cache.lookup(id, CHUNK), undefined, "empty");
    // 10 bytes in 4-byte chunks are 3 chunks: an entry claiming 2 is refused when recorded data is read.
    await cache.record(id, id, nowNs(), CHUNK, hashes(2));
    assert.equal(await cache.lookup(id, CHUNK), undefined, "chunk count does not match the size");
  } finally {
    await cleanup();
  }
});

test("the cache keeps at most maxEntries entries and a missing directory is created", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cacheDir = join(dir, "deep", "c");
    const cache = new HashCache(cacheDir, { maxEntries: 3 });
    for (let i = 0; i < 5; i++) {
      const id = settledIdentity({ ino: BigInt(100 + i) });
      assert.equal(await cache.record(id, id, nowNs(), CHUNK, hashes(3)), true);
      await new Promise((r) => setTimeout(r, 15)); // distinct mtimes, so the oldest go first
    }
    assert.equal((await readdir(cacheDir)).length, 3);
    assert.equal(await cache.lookup(settledIdentity({ ino: 100n }), CHUNK), undefined, "oldest removed");
    assert.deepEqual(await cache.lookup(settledIdentity({ ino: 104n }), CHUNK), hashes(3));
  } finally {
    await cleanup();
  }
});

test("the default directory honours CACHEROACH_HASH_CACHE, then XDG_CACHE_HOME", () => {
  assert.equal(defaultHashCacheDir({ [HASH_CACHE_ENV]: "/x/y" }), "/x/y");
  assert.equal(defaultHashCacheDir({ XDG_CACHE_HOME: "/c" }), "/c/cacheroach/chunk-hashes");
  assert.match(defaultHashCacheDir({ HOME: "/h" }), /\.cache\/cacheroach\/chunk-hashes$/);
});
