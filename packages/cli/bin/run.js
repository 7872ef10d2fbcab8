#!/usr/bin/env node
import { Config, execute } from "@oclif/core";
import { hoistGlobalFlags } from "../dist/lib/global-flags.js";

// Global flags may come before the command (`cacheroach -c alice.cfg file ls`): see global-flags.ts.
const config = await Config.load(import.meta.url);
const args = hoistGlobalFlags(process.argv.slice(2), (id) => {
  const command = config.findCommand(id);
  if (command) return { kind: "command", flags: Object.keys(command.flags ?? {}) };
  return config.findTopic(id) ? { kind: "topic" } : undefined;
});
await execute({ args, loadOptions: config });
