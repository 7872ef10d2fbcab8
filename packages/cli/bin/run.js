#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLE_ENV, BUNDLE_FILE, bundleIsFresh } from "./bundle.js";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// The bundle when it is current (see bundle.js and scripts/write-bundle.mjs), else dist/.
const bundled = process.env[BUNDLE_ENV] !== "0" && bundleIsFresh(root);
let Config, execute, hoistGlobalFlags, pjson;
if (bundled) {
  ({ Config, execute, hoistGlobalFlags } = await import(`../${BUNDLE_FILE}`));
  // The commands and the hook come from the bundle (oclif's "explicit" strategy); the manifest
  // still describes them, so oclif loads only the command being run.
  pjson = JSON.parse(readFileSync(`${root}/package.json`, "utf8"));
  const target = `./${BUNDLE_FILE}`;
  pjson.oclif.commands = { strategy: "explicit", target, identifier: "COMMANDS" };
  pjson.oclif.hooks = { command_not_found: { target, identifier: "commandNotFound" } };
} else {
  ({ Config, execute } = await import("@oclif/core"));
  ({ hoistGlobalFlags } = await import("../dist/lib/global-flags.js"));
}

// Global flags may come before the command (`cacheroach -c alice.cfg file ls`): see global-flags.ts.
const config = await Config.load(pjson ? { root, pjson } : import.meta.url);
const args = hoistGlobalFlags(process.argv.slice(2), (id) => {
  const command = config.findCommand(id);
  if (command) return { kind: "command", flags: Object.keys(command.flags ?? {}) };
  return config.findTopic(id) ? { kind: "topic" } : undefined;
});
await execute({ args, loadOptions: config });
