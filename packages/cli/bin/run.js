#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLE_ENV, BUNDLE_FILE, bundleIsFresh } from "./bundle.js";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pjson = JSON.parse(readFileSync(`${root}/package.json`, "utf8"));
// The bundle when it is current (see bundle.js and scripts/write-bundle.mjs), else dist/.
const bundled = process.env[BUNDLE_ENV] !== "0" && bundleIsFresh(root);
let Config, execute, hoistGlobalFlags;
if (bundled) {
  ({ Config, execute, hoistGlobalFlags } = await import(`../${BUNDLE_FILE}`));
  // The commands and the hook come from the bundle (oclif's "explicit" strategy); the manifest
  // still describes them, so oclif loads only the command being run.
  const target = `./${BUNDLE_FILE}`;
  pjson.oclif.commands = { strategy: "explicit", target, identifier: "COMMANDS" };
  pjson.oclif.hooks = { command_not_found: { target, identifier: "commandNotFound" } };
} else {
  ({ Config, execute } = await import("@oclif/core"));
  ({ hoistGlobalFlags } = await import("../dist/lib/global-flags.js"));
}

/** oclif's config, with or without the plugins of package.json. */
const load = (plugins) =>
  Config.load({
    root,
    pjson: { ...pjson, oclif: { ...pjson.oclif, plugins: plugins ? pjson.oclif.plugins : [] } },
  });

/** The command line with global flags moved after the command (see global-flags.ts). */
const hoist = (config) =>
  hoistGlobalFlags(process.argv.slice(2), (id) => {
    const command = config.findCommand(id);
    if (command) return { kind: "command", flags: Object.keys(command.flags ?? {}) };
    return config.findTopic(id) ? { kind: "topic" } : undefined;
  });

/** Whether `args` run one of the CLI's own commands (or print its version). */
function ownCommand(config, args) {
  if (args[0] === "--version") return true;
  const words = [];
  for (const word of args) {
    if (word.startsWith("-")) break;
    words.push(word);
    if (config.findCommand(words.join(":"))) return true;
  }
  return false;
}

// The plugins (help, autocomplete) add only their own commands, and finding them costs several
// ms: they are loaded only when the command line does not name one of ours (`help`, the command
// list, `autocomplete`, a mistyped command the not-found hook matches against all commands).
let config = await load(false);
let args = hoist(config);
if (!ownCommand(config, args)) {
  config = await load(true);
  args = hoist(config);
}
await execute({ args, loadOptions: config });
