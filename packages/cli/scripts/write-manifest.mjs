#!/usr/bin/env node
/**
 * Writes packages/cli/oclif.manifest.json from the built commands in dist/ (run after `tsc -b`;
 * the root `build` script does). With the manifest, oclif imports only the command being run
 * instead of every command module to learn their flags: start-up of any command falls by about
 * 0.15–0.3 s on this machine. The file is generated, never committed (.gitignore). A stale
 * manifest would hide new commands and flags from oclif, so `--check` (run by the CLI tests) exits
 * 1 when the file (or the file named after `--check`) differs from what this script would write now.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Plugin } from "@oclif/core";

const CLI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MANIFEST_PATH = join(CLI_ROOT, "oclif.manifest.json");

/** The manifest oclif would build by loading every command of dist/commands. */
async function buildManifest() {
  const plugin = new Plugin({
    isRoot: true,
    root: CLI_ROOT,
    type: "core",
    ignoreManifest: true,
    errorOnManifestCreate: true,
  });
  await plugin.load();
  // Commands load concurrently, so their order varies: sort them to make the file reproducible.
  const { commands, ...rest } = plugin.manifest;
  return {
    ...rest,
    commands: Object.fromEntries(Object.entries(commands).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
}

const text = `${JSON.stringify(await buildManifest(), null, 2)}\n`;
const check = process.argv.indexOf("--check");
if (check >= 0) {
  const path = process.argv[check + 1] ?? MANIFEST_PATH;
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {}
  if (current !== text) {
    console.error(`${path} is missing or stale: run 'npm run build'`);
    process.exit(1);
  }
} else {
  writeFileSync(MANIFEST_PATH, text);
}
