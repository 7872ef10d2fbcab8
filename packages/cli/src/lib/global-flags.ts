/**
 * Global flags before the command: `cacheroach -c alice.cfg file ls`, `cacheroach --json tenant ls`,
 * `cacheroach -v file get …`. oclif takes the first words of argv as the command ID, so a leading
 * flag reads as a command named "-c". bin/run.js therefore moves the global flags found among the
 * command's words to just after them, where oclif parses them as the command's own flags.
 */

/** A global flag: its spellings and whether it takes a value. */
interface GlobalFlag {
  readonly name: string;
  readonly char?: string;
  readonly takesValue: boolean;
  /** What its value is, for messages ("a config file"). */
  readonly value?: string;
}

/** The flags every cacheroach command has (BaseCommand.baseFlags and --json). */
export const GLOBAL_FLAGS: readonly GlobalFlag[] = [
  { name: "config", char: "c", takesValue: true, value: "a config file" },
  { name: "verbose", char: "v", takesValue: false },
  { name: "json", takesValue: false },
];

/** What the CLI knows about a command ID ("file:ls"): a command (with its flag names), a topic, or nothing. */
export type Lookup = (
  id: string,
) => { kind: "command"; flags: readonly string[] } | { kind: "topic" } | undefined;

/** The global flag `token` spells, and how many argv tokens it spans (1 or 2), or undefined. */
function globalFlagAt(argv: readonly string[], i: number): { flag: GlobalFlag; span: number } | undefined {
  const token = argv[i]!;
  for (const flag of GLOBAL_FLAGS) {
    if (token === `--${flag.name}` || (flag.char && token === `-${flag.char}`)) {
      return { flag, span: flag.takesValue && i + 1 < argv.length ? 2 : 1 };
    }
    if (flag.takesValue && token.startsWith(`--${flag.name}=`)) return { flag, span: 1 };
    if (flag.takesValue && flag.char && token.startsWith(`-${flag.char}`) && token.length > 2) {
      return { flag, span: 1 };
    }
  }
  return undefined;
}

/**
 * `argv` with the global flags that stand before or among the command's words moved to just after
 * them (`-c x file ls /a` → `file ls -c x /a`). Unchanged when no command is found, when nothing
 * needs moving, or when the command does not take one of the moved flags (oclif then reports it).
 */
export function hoistGlobalFlags(argv: readonly string[], lookup: Lookup): string[] {
  const words: string[] = [];
  const moved: string[] = [];
  const movedNames = new Set<string>();
  let command: { flags: readonly string[] } | undefined;
  let i = 0;
  while (i < argv.length && !command) {
    const token = argv[i]!;
    if (token === "--") break;
    if (token.startsWith("-")) {
      const found = globalFlagAt(argv, i);
      if (!found) break;
      moved.push(...argv.slice(i, i + found.span));
      movedNames.add(found.flag.name);
      i += found.span;
      continue;
    }
    const hit = lookup([...words, token].join(":"));
    if (!hit) break;
    words.push(token);
    i++;
    if (hit.kind === "command") command = hit;
  }
  if (!command || moved.length === 0) return [...argv];
  for (const name of movedNames) if (!command.flags.includes(name)) return [...argv];
  return [...words, ...moved, ...argv.slice(i)];
}
