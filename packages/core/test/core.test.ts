import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ContentHasher, chunkHash, contentHash, hex, isUuid, RopeHasher, WELL_KNOWN } from "../src/index.js";

test("streaming, in-memory and chunk-by-chunk hashing agree for any way of cutting the input", () => {
  const chunkSize = 1024;
  const data = randomBytes(chunkSize * 5 + 123);
  const whole = contentHash(data, chunkSize);
  for (const piece of [1, 7, 1000, 1024, 1025, 4096]) {
    const h = new ContentHasher(chunkSize);
    for (let off = 0; off < data.length; off += piece) h.update(data.subarray(off, off + piece));
    assert.equal(hex(h.digest()), hex(whole), `pieces of ${piece}`);
    assert.equal(h.length, data.length);
  }
  const rope = new RopeHasher();
  for (let off = 0; off < data.length; off += chunkSize) {
    const c = data.subarray(off, off + chunkSize);
    rope.add(chunkHash(c), c.length);
  }
  assert.equal(hex(rope.digest()), hex(whole));
  assert.equal(rope.size, data.length);
  assert.equal(rope.count, 6);
});

test("a rope hash never equals the chunk hash of the same bytes (domain separation)", () => {
  const data = randomBytes(100);
  assert.notEqual(hex(contentHash(data)), hex(chunkHash(data)));
  // The rope hash covers chunk lengths: the same chunk hash with another length differs.
  const h = chunkHash(data);
  assert.notEqual(hex(new RopeHasher().add(h, 100).digest()), hex(new RopeHasher().add(h, 101).digest()));
});

test("bad chunk sizes and hash lengths are refused", () => {
  assert.throws(() => new ContentHasher(0), RangeError);
  assert.throws(() => contentHash(Buffer.alloc(1), 1.5), RangeError);
  assert.throws(() => new RopeHasher().add(Buffer.alloc(31), 1), RangeError);
});

test("isUuid accepts canonical UUIDs of either case and nothing else", () => {
  assert.ok(isUuid(WELL_KNOWN.scratchpadTenant));
  assert.ok(isUuid(WELL_KNOWN.unauthenticatedPrincipal.toUpperCase()));
  for (const bad of [
    "",
    "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
    `${WELL_KNOWN.scratchpadTenant} `,
    "g0a0a0a0-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
  ])
    assert.ok(!isUuid(bad), bad);
});
