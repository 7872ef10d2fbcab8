/**
 * The data layer's boundaries, checked on the source: SQL only in store/ and db/, no placeholder
 * numbers computed by hand (statements take array parameters), and error codes read only through
 * db/sqlstate.ts and util/errno.ts.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** `src/`-relative paths of the files whose text matches `pattern`. */
function matching(pattern: RegExp, exclude: RegExp = /^$/): string[] {
  return sources(SRC)
    .map((f) => relative(SRC, f))
    .filter((f) => !exclude.test(f) && pattern.test(readFileSync(join(SRC, f), "utf8")));
}

test("SQL lives in store/ and db/ only", () => {
  assert.deepEqual(matching(/\b(SELECT|INSERT|UPDATE|DELETE FROM|UPSERT)\b/, /^(store|db)\//), []); // crdb-lint: ok a pattern, not SQL
});

test("no placeholder numbers computed by hand", () => {
  assert.deepEqual(matching(/\$\$\{/), []);
});

test("error codes are read through db/sqlstate.ts and util/errno.ts, not casts", () => {
  assert.deepEqual(matching(/as \{\s*code\?|as NodeJS\.ErrnoException|\{ code\?: string \}/), []);
});
