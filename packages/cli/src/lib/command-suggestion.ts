/**
 * "Did you mean …?" for a command line that names no command. oclif hands the hook the whole
 * command line as one ID ("file:pt:/x:a.txt"), so every split of it into command words and
 * arguments is compared with the commands. The typed command words are compared with a command's
 * words, or with its last words only (`ls` → `file ls`, `tenant ls`, …: the topic left out), one
 * word at a time: each typed word must be the command's word, a common synonym of it (`cp`,
 * `upload` → `put`), or a close misspelling of it. Nothing is suggested for a poor match: a wrong
 * guess could name a command that deletes data.
 */

/** Optimal string alignment distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** Words people type for a command word (other tools' names for it). */
const SYNONYMS: Readonly<Record<string, readonly string[]>> = {
  cp: ["put", "get"],
  copy: ["put", "get"],
  upload: ["put"],
  push: ["put"],
  download: ["get"],
  pull: ["get"],
  cat: ["get"],
  list: ["ls"],
  dir: ["ls"],
  del: ["rm"],
  delete: ["rm"],
  remove: ["rm"],
  new: ["create"],
  add: ["create"],
  mk: ["create"],
  history: ["versions"],
};

/**
 * How far typed word `typed` is from command word `word`: 0 for the word or a synonym of it, the
 * edit distance for a close misspelling (at most a third of the word, at least 1; for words of
 * one or two letters only one letter added or two swapped), else undefined.
 */
function wordDistance(typed: string, word: string): number | undefined {
  const t = typed.toLowerCase();
  if (t === word || SYNONYMS[t]?.includes(word)) return 0;
  const d = editDistance(t, word);
  if (word.length <= 2) {
    // One letter changed is half of such a word ("gv" is not "gc"): only an added or swapped one.
    const swapped = t.length === 2 && t === [...word].reverse().join("");
    return swapped || (t.length === word.length + 1 && t.includes(word)) ? 1 : undefined;
  }
  return d <= Math.max(1, Math.floor(word.length / 3)) && d < t.length ? d : undefined;
}

/** A command that may be meant, and the arguments that followed what was typed for it. */
export interface Suggestion {
  /** The command typed, as words (["file", "pt"]). */
  readonly typed: string[];
  /** The command meant, as words (["file", "put"]). */
  readonly command: string[];
  /** The words after the command (["/x", "a.txt"]), reordered where the command wants that. */
  readonly args: string[];
}

interface Candidate extends Suggestion {
  /** Sum of the word distances. */
  distance: number;
  /** Command words left out (the topic of `ls` → `file ls`). */
  missing: number;
  /** The words after the command, as typed. */
  typedArgs: string[];
}

/** The topics suggested first when several commands match as well (the everyday ones). */
const FIRST_TOPICS = ["file"];

/**
 * The arguments of `cp a /b/` as the command meant wants them: `file put` takes the remote (absolute)
 * path first, so a copy from local names to a remote path is reordered.
 */
function argsFor(command: readonly string[], typed: readonly string[], args: string[]): string[] {
  const synonymOfCopy = typed.some((w) => ["cp", "copy"].includes(w.toLowerCase()));
  if (!synonymOfCopy || command[command.length - 1] !== "put" || args.length < 2) return args;
  const last = args[args.length - 1]!;
  if (!last.startsWith("/") || args[0]!.startsWith("/")) return args;
  return [last, ...args.slice(0, -1)];
}

/** For a copy, the direction its arguments show: upload (to an absolute path) or download. */
function copyDirection(args: readonly string[]): "put" | "get" | undefined {
  if (args.length < 2) return undefined;
  const remoteFirst = args[0]!.startsWith("/");
  const remoteLast = args[args.length - 1]!.startsWith("/");
  if (remoteLast && !remoteFirst) return "put";
  if (remoteFirst && !remoteLast) return "get";
  return undefined;
}

/**
 * The commands (of `ids`, "file:put" style) that `words` most likely meant, best first: all those
 * matching equally well (`ls` → every `… ls`), or none when nothing matches well enough.
 */
export function commandSuggestions(words: readonly string[], ids: readonly string[]): Suggestion[] {
  const found: Candidate[] = [];
  for (const id of ids) {
    const command = id.split(":");
    for (let k = 1; k <= Math.min(command.length, words.length); k++) {
      const typed = words.slice(0, k);
      if (typed[0]!.startsWith("-")) continue;
      const tail = command.slice(command.length - k);
      let distance = 0;
      for (const [i, w] of typed.entries()) {
        const d = wordDistance(w, tail[i]!);
        if (d === undefined) {
          distance = Number.POSITIVE_INFINITY;
          break;
        }
        distance += d;
      }
      if (distance === Number.POSITIVE_INFINITY) continue;
      // Exactly the command: oclif would have run it (the hook sees only unknown commands).
      if (distance === 0 && k === command.length && typed.every((w, i) => w === command[i])) continue;
      const args = words.slice(k);
      found.push({
        typed,
        command,
        args: argsFor(command, typed, args),
        typedArgs: args,
        distance,
        missing: command.length - k,
      });
    }
  }
  if (found.length === 0) return [];
  // More words typed and matched is better; then closer; then fewer words left out.
  const rank = (c: Candidate) => [-c.typed.length, c.distance, c.missing];
  const better = (a: Candidate, b: Candidate) => {
    const [x, y] = [rank(a), rank(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  };
  found.sort(better);
  let best = found.filter((c) => better(c, found[0]!) === 0);
  // A copy whose arguments show the direction: only that command.
  const direction = copyDirection(best[0]!.typedArgs);
  if (direction && best.some((c) => c.command.at(-1) === direction)) {
    const typedCopy = best[0]!.typed.some((w) => ["cp", "copy"].includes(w.toLowerCase()));
    if (typedCopy) best = best.filter((c) => c.command.at(-1) === direction);
  }
  const topicRank = (c: Candidate) => {
    const i = FIRST_TOPICS.indexOf(c.command[0]!);
    return i === -1 ? FIRST_TOPICS.length : i;
  };
  best.sort((a, b) => topicRank(a) - topicRank(b) || a.command.join(" ").localeCompare(b.command.join(" ")));
  return best.map(({ typed, command, args }) => ({ typed, command, args }));
}

/** The best suggestion for `words` (see {@link commandSuggestions}), if there is one. */
export function closestCommand(words: readonly string[], ids: readonly string[]): Suggestion | undefined {
  return commandSuggestions(words, ids)[0];
}
