import assert from "node:assert/strict";
import { mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { FileMetaSchema } from "@cacheroach/proto";
import { mtimeMeta, quickSame, wholeMs } from "../src/lib/file-times.js";

// A download sets a file's time to the remote "mtime" (whole milliseconds); the next sync must see
// that file as unchanged without reading it, whatever the double rounding of the seconds did.
test("a time set from a remote mtime reads back as the same millisecond", async () => {
  const dir = await mkdtemp(join(tmpdir(), "file-times-"));
  try {
    const path = join(dir, "f");
    await writeFile(path, "x");
    const base = Date.parse("2026-12-05T18:45:48.000Z");
    let differed = 0;
    for (let ms = 0; ms < 1000; ms += 7) {
      const t = base + ms;
      await utimes(path, new Date(t), new Date(t));
      const st = await stat(path);
      if (Math.floor(st.mtimeMs) !== t) differed++;
      const remote = create(FileMetaSchema, { size: 1n, meta: mtimeMeta(t) });
      assert.ok(quickSame(1, st.mtimeMs, remote), `${new Date(t).toISOString()} read back as ${st.mtimeMs}`);
      assert.equal(mtimeMeta(st.mtimeMs).mtime, new Date(t).toISOString());
    }
    // The case this guards against does occur on this file system (else the test proves little).
    assert.ok(differed > 0, "no time read back below its millisecond");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("whole milliseconds: a microsecond below counts, anything further does not", () => {
  assert.equal(wholeMs(504), 504);
  assert.equal(wholeMs(503.99995), 504);
  assert.equal(wholeMs(503.998), 503);
  assert.equal(wholeMs(504.9), 504);
  const remote = create(FileMetaSchema, { size: 3n, meta: mtimeMeta(1000) });
  assert.ok(!quickSame(3, 998.5, remote));
  assert.ok(!quickSame(4, 1000, remote), "a different size is a change");
});
