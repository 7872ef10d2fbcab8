/**
 * oclif's parser is quadratic in the number of positional arguments (it re-filters its token list
 * for every argument and sorts argv with indexOf): about 0.45 s for 10 000 paths, minutes for
 * 100 000. Variadic commands therefore hand oclif only the positionals it must see (the declared
 * arguments) and take the rest from here, in order. Anything unusual ("--", an unknown flag)
 * leaves argv whole, so oclif reports it as before.
 */

/** What a flag needs to be told apart from a positional: whether it consumes the next token. */
export interface FlagShape {
  readonly type: string;
  readonly char?: string | undefined;
}

/** argv for oclif (flags plus the first `keep` positionals) and the positionals held back. */
export interface SplitArgv {
  readonly forParser: string[];
  readonly extra: string[];
}

/** Splits `argv` so oclif parses at most `keep` positionals; `extra` follow them in order. */
export function splitPositionals(
  argv: readonly string[],
  flags: Readonly<Record<string, FlagShape>>,
  keep: number,
): SplitArgv {
  const whole = { forParser: [...argv], extra: [] };
  const byName = new Map<string, FlagShape>();
  const byChar = new Map<string, FlagShape>();
  for (const [name, f] of Object.entries(flags)) {
    byName.set(name, f);
    if (f.type === "boolean") byName.set(`no-${name}`, f);
    if (f.char) byChar.set(f.char, f);
  }
  const forParser: string[] = [];
  const extra: string[] = [];
  let positionals = 0;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") return whole;
    if (token.startsWith("--")) {
      const name = token.slice(2).split("=", 1)[0]!;
      const f = byName.get(name);
      if (!f) return whole;
      forParser.push(token);
      if (f.type !== "boolean" && !token.includes("=") && i + 1 < argv.length) forParser.push(argv[++i]!);
      continue;
    }
    if (token.startsWith("-") && token.length > 1) {
      const f = byChar.get(token[1]!);
      if (!f) return whole;
      forParser.push(token);
      // "-o value" takes the next token; "-ovalue" and boolean "-r" do not.
      if (f.type !== "boolean" && token.length === 2 && i + 1 < argv.length) forParser.push(argv[++i]!);
      continue;
    }
    if (positionals++ < keep) forParser.push(token);
    else extra.push(token);
  }
  return { forParser, extra };
}
