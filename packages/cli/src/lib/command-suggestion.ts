/**
 * "Did you mean …?" for a misspelled command: the known command closest to the words typed.
 * oclif hands the hook the whole command line as one ID ("file:pt:/x:a.txt"), so every split of
 * it into command words and arguments is compared with every command of that many words.
 */

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The closest command to what was typed, and the arguments that followed it. */
export interface Suggestion {
  /** The command typed, as words (["file", "pt"]). */
  readonly typed: string[];
  /** The command meant, as words (["file", "put"]). */
  readonly command: string[];
  /** The words after the command (["/x", "a.txt"]). */
  readonly args: string[];
}

/**
 * The command (of `ids`, "file:put" style) closest to a prefix of `words`, if one is close enough
 * to be a likely typo: at most a third of its length different, and at least one letter right.
 */
export function closestCommand(words: readonly string[], ids: readonly string[]): Suggestion | undefined {
  let best: (Suggestion & { distance: number }) | undefined;
  for (const id of ids) {
    const command = id.split(":");
    if (command.length > words.length) continue;
    const typed = words.slice(0, command.length);
    const distance = editDistance(typed.join(" "), command.join(" "));
    if (!best || distance < best.distance) {
      best = { typed, command, args: words.slice(command.length), distance };
    }
  }
  if (!best) return undefined;
  const length = best.command.join(" ").length;
  if (best.distance === 0 || best.distance > Math.max(2, Math.floor(length / 3))) return undefined;
  const { distance: _, ...suggestion } = best;
  return suggestion;
}
