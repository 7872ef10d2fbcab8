/**
 * The generated oclif manifest (packages/cli/scripts/write-manifest.mjs, run by `npm run build`)
 * lets oclif start without importing every command. A stale one would hide commands or flags, so
 * the build's manifest must match the commands in dist/ and the check must notice a stale copy.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { CLI_ROOT, tempDir } from "./helpers.js";

const SCRIPT = join(CLI_ROOT, "scripts", "write-manifest.mjs");
const MANIFEST = join(CLI_ROOT, "oclif.manifest.json");

function commandIds(dir: string): string[] {
  const ids: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".js")) continue;
    const rel = relative(join(CLI_ROOT, "dist", "commands"), join(e.parentPath, e.name));
    ids.push(rel.replace(/\.js$/, "").split("/").join(":"));
  }
  return ids.sort();
}

test("the built manifest lists every command in dist/commands and is up to date", () => {
  const manifest = JSON.parse(readFileSync(MANIFEST, "utf8")) as { commands: Record<string, unknown> };
  assert.deepEqual(Object.keys(manifest.commands).sort(), commandIds(join(CLI_ROOT, "dist", "commands")));
  const r = spawnSync(process.execPath, [SCRIPT, "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("the check refuses a stale manifest", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const stale = JSON.parse(readFileSync(MANIFEST, "utf8")) as { commands: Record<string, unknown> };
    delete stale.commands["file:put"];
    const path = join(dir, "oclif.manifest.json");
    writeFileSync(path, `${JSON.stringify(stale, null, 2)}\n`);
    const r = spawnSync(process.execPath, [SCRIPT, "--check", path], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing or stale: run 'npm run build'/);
  } finally {
    await cleanup();
  }
});
