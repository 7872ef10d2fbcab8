/**
 * Command lines the CLI prints for the user to run next ("First time? … run: cacheroach bootstrap
 * …") must run as printed. `cacheroach` works only where it is on PATH (after `npm install -g
 * ./packages/cli`); in the checkout `npx cacheroach` works; anywhere else, `node <path>/run.js`.
 */
import { existsSync, realpathSync } from "node:fs";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** This CLI's entry point (packages/cli/bin/run.js). */
export const CLI_ENTRY = fileURLToPath(new URL("../../bin/run.js", import.meta.url));

function real(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** A word as the user would type it in a POSIX shell (quoted only when it must be). */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * How the user runs this CLI from `cwd` with `env`'s PATH: "cacheroach" when that resolves to this
 * CLI, else "npx cacheroach" when a node_modules/.bin at or above `cwd` links to it, else
 * `node <path to run.js>` (relative to `cwd` when that is shorter).
 */
export function selfCommand(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  const entry = real(CLI_ENTRY) ?? CLI_ENTRY;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const found = join(dir, "cacheroach");
    if (existsSync(found)) return real(found) === entry ? "cacheroach" : fallback(cwd, entry);
  }
  return fallback(cwd, entry);
}

function fallback(cwd: string, entry: string): string {
  for (let dir = cwd; ; dir = dirname(dir)) {
    if (real(join(dir, "node_modules", ".bin", "cacheroach")) === entry) return "npx cacheroach";
    if (dirname(dir) === dir) break;
  }
  const rel = relative(cwd, entry);
  return `node ${shellWord(rel.length < entry.length ? rel : entry)}`;
}

/** A command line for the user: this CLI's invocation, then `args` (shell-quoted). */
export function commandLine(...args: string[]): string {
  return [selfCommand(), ...args.map(shellWord)].join(" ");
}
