/**
 * Flags before the command that bin/run.js could not move after it (global-flags.ts), so that oclif
 * took the first of them for a command name: `cacheroach -x file ls` (no such global flag),
 * `cacheroach -r file get /d/` (a flag of the command, not a global one), `cacheroach -c file ls`
 * (a global flag missing its value: "file" was taken for it). Each gets a message naming the flag.
 */
import { GLOBAL_FLAGS } from "./global-flags.js";
import { shellWord } from "./invocation.js";

/** A command's flags: their names and one-letter spellings. */
export type FlagNames = readonly { name: string; char?: string | undefined }[];

/** The flags of the command with this ID ("file:ls"), or undefined when there is no such command. */
export type FindCommand = (id: string) => FlagNames | undefined;

/** What is wrong with the leading flags, said for the user. */
export interface LeadingFlagProblem {
  message: string;
  suggestions: string[];
}

/** The longest run of words from `start` that names a command, as words, or undefined. */
function commandAt(words: readonly string[], start: number, find: FindCommand): string[] | undefined {
  for (let end = words.length; end > start; end--) {
    const id = words.slice(start, end);
    if (id.some((w) => w.startsWith("-"))) continue;
    if (find(id.join(":"))) return id;
  }
  return undefined;
}

/** Whether `token` spells the flag `name` (or its char): --name, --name=v, --no-name, -c. */
function spells(token: string, flag: { name: string; char?: string | undefined }): boolean {
  return (
    token === `--${flag.name}` ||
    token.startsWith(`--${flag.name}=`) ||
    token === `--no-${flag.name}` ||
    (flag.char !== undefined && token === `-${flag.char}`)
  );
}

/** The first flag of `token` ("-x" of "-xyz", "--nope" of "--nope=1"), for messages. */
function flagName(token: string): string {
  return token.startsWith("--") ? token.replace(/=.*$/, "") : token.slice(0, 2);
}

/**
 * The problem with the flags that start `words` (a command line that names no command), or
 * undefined when it does not start with a flag or its leading flags are all well-formed global
 * ones (then `rest` is where the words meant as a command begin).
 */
export function leadingFlagProblem(
  words: readonly string[],
  find: FindCommand,
  bin = "cacheroach",
): { problem: LeadingFlagProblem } | { rest: number } {
  const q = (ws: readonly string[]) => ws.map(shellWord).join(" ");
  let i = 0;
  while (i < words.length && words[i]!.startsWith("-") && words[i] !== "--") {
    const token = words[i]!;
    const global = GLOBAL_FLAGS.find((f) => spells(token, f));
    const attached = token.includes("=") || (!token.startsWith("--") && token.length > 2);
    if (global?.takesValue && !attached) {
      const value = words[i + 1];
      const command = commandAt(words, i + 1, find);
      if (value === undefined || value.startsWith("-") || command) {
        const what = `${token} needs a value (${global.value ?? "a value"})`;
        const fixed = command
          ? `${bin} ${q(command)} ${token} <${global.name}> ${q([...words.slice(0, i), ...words.slice(i + 1 + command.length)])}`.trimEnd()
          : `${bin} ${token} <${global.name}> <command>`;
        return { problem: { message: what, suggestions: [fixed.replace(/ {2,}/g, " ")] } };
      }
      i += 2;
      continue;
    }
    if (
      global ||
      GLOBAL_FLAGS.some(
        (f) => f.char !== undefined && token.startsWith(`-${f.char}`) && !token.startsWith("--"),
      )
    ) {
      i++;
      continue;
    }
    // Not a global flag: perhaps one of the command that follows.
    const name = flagName(token);
    let command: string[] | undefined;
    let at = i + 1;
    for (; at < words.length && !command; at++) command = commandAt(words, at, find);
    at--;
    const flags = command ? find(command.join(":")) : undefined;
    if (command && flags?.some((f) => spells(name, f))) {
      const others = [...words.slice(0, at), ...words.slice(at + command.length)];
      return {
        problem: {
          message: `${name} is a flag of "${command.join(" ")}", not a global flag: it goes after the command`,
          suggestions: [`${bin} ${q(command)} ${q(others)}`],
        },
      };
    }
    const globals = GLOBAL_FLAGS.map((f) => `${f.char ? `-${f.char}/` : ""}--${f.name}`).join(", ");
    return {
      problem: {
        message: `unknown flag ${name}${command ? ` ("${command.join(" ")}" has no such flag either)` : ""}`,
        suggestions: [
          command ? `see its flags: ${bin} ${q(command)} --help` : `list the commands: ${bin} help`,
          `the flags that may come before a command: ${globals}`,
        ],
      },
    };
  }
  return { rest: i };
}
