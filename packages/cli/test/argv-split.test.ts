/** splitPositionals: oclif sees the declared arguments; every other positional follows in order. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { splitPositionals } from "../src/lib/argv-split.js";

const FLAGS = {
  out: { type: "option", char: "o" },
  tenant: { type: "option", char: "t" },
  parallelism: { type: "option", char: "p" },
  recursive: { type: "boolean", char: "r" },
  progress: { type: "boolean" },
  json: { type: "boolean" },
};

test("flags and their values go to the parser; positionals beyond `keep` are held back in order", () => {
  const argv = ["-p", "8", "/a", "-o", "-", "/b", "--out=x/", "/c", "-r", "--no-progress", "/d", "-t7", "/e"];
  const { forParser, extra } = splitPositionals(argv, FLAGS, 1);
  assert.deepEqual(forParser, ["-p", "8", "/a", "-o", "-", "--out=x/", "-r", "--no-progress", "-t7"]);
  assert.deepEqual(extra, ["/b", "/c", "/d", "/e"]);
  const two = splitPositionals(argv, FLAGS, 2);
  assert.deepEqual(two.extra, ["/c", "/d", "/e"]);
  assert.ok(two.forParser.includes("/b"));
});

test("a lone '-' is a positional; '--' and unknown flags leave argv whole for oclif to judge", () => {
  assert.deepEqual(splitPositionals(["/a", "-", "/b"], FLAGS, 1).extra, ["-", "/b"]);
  for (const argv of [
    ["/a", "--", "-x"],
    ["/a", "--bogus", "/b"],
    ["/a", "-z", "/b"],
  ]) {
    assert.deepEqual(splitPositionals(argv, FLAGS, 1), { forParser: argv, extra: [] });
  }
});

test("10 000 positionals split in linear time", () => {
  const argv = Array.from({ length: 10_000 }, (_, i) => `/f${i}`);
  const { forParser, extra } = splitPositionals(["-p", "8", ...argv], FLAGS, 1);
  assert.deepEqual(forParser, ["-p", "8", "/f0"]);
  assert.equal(extra.length, 9_999);
  assert.equal(extra[9_998], "/f9999");
});
