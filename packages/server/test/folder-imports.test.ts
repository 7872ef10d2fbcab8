/**
 * The folders of packages/server/src import each other in one direction only: no cycle between
 * folders (http ↔ rpc, auth → uploads → http → auth were ones), and the two boundaries, http/
 * (plain HTTP) and rpc/ (Connect), never import each other: server.ts puts both on one port.
 * Files directly in src/ are left out (they hold both shared basics and the composition root); a
 * sub-folder counts as part of its folder (http/handlers is http).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** The folder of src/ a path lies in: sub-folders (http/handlers) belong to theirs. */
function topFolder(path: string): string {
  return path.split(sep)[0]!;
}

/** Folder → the folders its files import (relative imports only; src/ itself is ""). */
function folderGraph(src: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    );
  for (const file of walk(src)) {
    const from = topFolder(relative(src, dirname(file)));
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.\.?\/[^"]+)"/g)) {
      const to = topFolder(relative(src, dirname(resolve(dirname(file), m[1]!))));
      if (to === from) continue;
      graph.set(from, (graph.get(from) ?? new Set()).add(to));
    }
  }
  return graph;
}

/** A cycle among the folders (as a list of folders, first = last), or undefined. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === "done") return undefined;
    if (state.get(n) === "open") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "open");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const cycle = visit(m);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of graph.keys()) {
    const cycle = visit(n);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The graph without src/ itself (see the file comment). */
function subfolders(graph: Map<string, Set<string>>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [from, to] of graph) {
    if (from !== "") out.set(from, new Set([...to].filter((t) => t !== "")));
  }
  return out;
}

test("findCycle finds a cycle and only a cycle", () => {
  const g = (edges: [string, string][]) => {
    const m = new Map<string, Set<string>>();
    for (const [a, b] of edges) m.set(a, (m.get(a) ?? new Set()).add(b));
    return m;
  };
  assert.equal(
    findCycle(
      g([
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ]),
    ),
    undefined,
  );
  assert.deepEqual(
    findCycle(
      g([
        ["a", "b"],
        ["b", "c"],
        ["c", "a"],
      ]),
    ),
    ["a", "b", "c", "a"],
  );
});

test("the folders of src/ import each other without a cycle", () => {
  const graph = subfolders(folderGraph(SRC));
  assert.ok(graph.size >= 5, `found only ${[...graph.keys()].join(", ")}`);
  const cycle = findCycle(graph);
  assert.equal(cycle, undefined, `folder import cycle: ${cycle?.join(" → ")}`);
});

test("http/ and rpc/ never import each other; auth/ imports no workflow or boundary", () => {
  const graph = folderGraph(SRC);
  const forbidden: [string, string][] = [
    ["http", "rpc"],
    ["rpc", "http"],
    ["auth", "uploads"],
    ["auth", "http"],
    ["auth", "rpc"],
    ["uploads", "http"],
    ["uploads", "rpc"],
  ];
  for (const [from, to] of forbidden) assert.ok(!graph.get(from)?.has(to), `${from}/ imports ${to}/`);
});
