#!/usr/bin/env node
/**
 * Regenerates the command reference of packages/cli/README.md from the commands themselves, so it
 * cannot drift from `--help`: everything between `<!-- commands -->` and `<!-- commandsstop -->`
 * is replaced by one section per command (its summary, then its help exactly as `cacheroach
 * <command> --help` prints it: usage, arguments, flags, description, examples). The rest of the
 * README is hand-written. Run after `npm run build` (it reads dist/ through the manifest).
 *
 * The same idea as `oclif readme`, without the oclif package and its dependencies (about 19 s to
 * install, for one feature): oclif's own Help class renders each command.
 *
 * `--check` (run by the CLI tests) exits 1 when the README differs from what this would write.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Config, Help } from "@oclif/core";

const CLI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const README = join(CLI_ROOT, "README.md");
const START = "<!-- commands -->";
const STOP = "<!-- commandsstop -->";

/** oclif's help renderer with its per-command formatter reachable. */
class ReadmeHelp extends Help {
  commandHelp(command) {
    return this.formatCommand(command);
  }
}

/** The generated command reference (Markdown). */
export async function renderCommands() {
  const config = await Config.load(CLI_ROOT);
  // Wide enough that help text is not wrapped mid-example; fixed so the output never depends on
  // the terminal it was generated in.
  const help = new ReadmeHelp(config, { stripAnsi: true, maxWidth: 100 });
  const own = config.commands
    .filter((c) => c.pluginName === config.pjson.name && !c.hidden)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const bin = config.bin;
  const name = (c) => `${bin} ${c.id.replaceAll(":", " ")}`;
  const index = own.map((c) => `* [\`${name(c)}\`](#${anchor(name(c))})`).join("\n");
  const sections = own.map((c) => {
    const text = help
      .commandHelp(c)
      .split("\n")
      .map((l) => l.trimEnd())
      .join("\n")
      .trim();
    return `### \`${name(c)}\`\n\n${c.summary ?? ""}\n\n\`\`\`\n${text}\n\`\`\``;
  });
  return `${index}\n\n${sections.join("\n\n")}`;
}

/** GitHub's heading anchor for a heading of inline code. */
function anchor(text) {
  return text
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replaceAll(" ", "-");
}

/** The README with its command reference regenerated. */
export async function renderReadme(current) {
  const a = current.indexOf(START);
  const b = current.indexOf(STOP);
  if (a < 0 || b < a) throw new Error(`${README} lacks the markers ${START} … ${STOP}`);
  return `${current.slice(0, a + START.length)}\n${await renderCommands()}\n${current.slice(b)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.indexOf("--check");
  const path = check >= 0 && process.argv[check + 1] ? process.argv[check + 1] : README;
  const current = readFileSync(path, "utf8");
  const text = await renderReadme(current);
  if (check >= 0) {
    if (current !== text) {
      console.error(`${path} is stale: run 'npm run readme' (after 'npm run build')`);
      process.exit(1);
    }
  } else {
    writeFileSync(path, text);
  }
}
