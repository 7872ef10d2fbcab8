/**
 * Walking a local tree one directory at a time, with its state in plain data: the main thread
 * walks a little, and a large tree's rest goes to a worker thread (walk-thread.ts) that carries
 * on from the same state. Only node:fs here, so the worker loads nothing else.
 */
import { type Dirent, readdirSync, type Stats, statSync } from "node:fs";
import { sep } from "node:path";

/** What a directory entry is, as far as the walk cares (a number: it crosses threads). */
const Kind = { File: 0, Dir: 1, Link: 2, Other: 3 } as const;

/** A directory being walked: its entries sorted by name, and the next to look at. */
export interface WalkFrame {
  /** Prefix of its entries' paths: the directory and a separator ("" for "."). */
  prefix: string;
  /** Its path relative to the root, with "/" separators and a trailing "/" ("" for the root). */
  rel: string;
  names: string[];
  kinds: number[];
  next: number;
}

/** What a walk found, as columns (cheap to send between threads). */
export interface WalkFound {
  /** Paths relative to the root, with "/" separators. */
  rels: string[];
  sizes: number[];
  mtimes: number[];
  /** Full paths of what is not a regular file (sockets, devices, links to directories). */
  skipped: string[];
}

function kindOf(e: Dirent): number {
  if (e.isFile()) return Kind.File;
  if (e.isDirectory()) return Kind.Dir;
  return e.isSymbolicLink() ? Kind.Link : Kind.Other;
}

/** Reads directory `dir` (normalized, no trailing separator unless the root of the file system). */
export function openDir(dir: string, rel: string): WalkFrame {
  const entries = readdirSync(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Paths by concatenation: `dir` is normalized and names hold no separator, so this is what
  // path.join would give, without its per-call normalizing.
  const prefix = dir === "." ? "" : dir === sep ? sep : dir + sep;
  return { prefix, rel, names: entries.map((e) => e.name), kinds: entries.map(kindOf), next: 0 };
}

/** The stat of an entry that is, or links to, a file; undefined for anything else. */
function fileStat(full: string, kind: number): Stats | undefined {
  if (kind === Kind.File) return statSync(full);
  if (kind !== Kind.Link) return undefined;
  const st = statSync(full, { throwIfNoEntry: false });
  return st?.isDirectory() ? undefined : st; // never follow directory links (loops)
}

/** An empty result. */
export function nothingFound(): WalkFound {
  return { rels: [], sizes: [], mtimes: [], skipped: [] };
}

/**
 * Walks on from `stack` until it enters or leaves a directory (or is done: the stack is empty).
 * Files come out in the order of a depth-first walk with each directory's entries sorted by name.
 */
export function walkStep(stack: WalkFrame[], found: WalkFound): void {
  const frame = stack[stack.length - 1];
  if (frame === undefined) return;
  while (frame.next < frame.names.length) {
    const i = frame.next++;
    const name = frame.names[i]!;
    const full = frame.prefix + name;
    if (frame.kinds[i] === Kind.Dir) {
      stack.push(openDir(full, `${frame.rel}${name}/`));
      return;
    }
    const st = fileStat(full, frame.kinds[i]!);
    if (!st?.isFile()) {
      found.skipped.push(full);
      continue;
    }
    found.rels.push(frame.rel + name);
    found.sizes.push(st.size);
    found.mtimes.push(st.mtimeMs);
  }
  stack.pop();
}
