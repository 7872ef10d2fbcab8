/**
 * Holds the code map of docs/architecture.md: which package and which server folder may import
 * which, and that the map names every module. A new import that breaks a direction fails here,
 * with the file and the import named. (SQL outside the data layer is caught by
 * packages/server/test/data-layer.test.ts, folder cycles by folder-imports.test.ts.)
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

const ROOT = path.resolve(import.meta.dirname, "..");
const SERVER_SRC = "packages/server/src";

/** Which workspace packages each package's sources may import (tests are free to use `testing`). */
const PACKAGE_DEPS: Record<string, string[]> = {
  proto: [],
  "packages/core": [],
  "packages/schema": [],
  "packages/server": ["@cacheroach/core", "@cacheroach/proto", "@cacheroach/schema"],
  "packages/cli": ["@cacheroach/core", "@cacheroach/proto", "@cacheroach/server"],
  // Browser code: it talks to the server only through the API (generated proto code).
  "packages/web": ["@cacheroach/proto"],
};

/**
 * The CLI loads the server only to run it, through its public entry, from these commands; `start`
 * also builds its flags from the server's settings table, and chunk bodies map the server's error
 * answers by its error table (light entry points).
 */
const CLI_SERVER_IMPORTS: Record<string, readonly string[]> = {
  "packages/cli/src/commands/start.ts": ["@cacheroach/server", "@cacheroach/server/settings"],
  "packages/cli/src/commands/bootstrap.ts": ["@cacheroach/server"],
  "packages/cli/src/lib/chunk-bodies.ts": ["@cacheroach/server/error-table"],
};

/**
 * Allowed imports between the server's folders, lowest layer first. Files directly in src/ are
 * the shared base (errors, ids, logger, config) that folders may import, except the composition
 * roots (server.ts, index.ts, testing.ts), which nothing inside a folder may import.
 */
const SERVER_LAYERS: Record<string, string[]> = {
  util: [],
  net: [],
  // Prometheus metrics; only the composition root feeds it (lower layers keep plain counters).
  metrics: ["net"],
  db: ["util"],
  store: ["db", "util"],
  uploads: ["store", "util"],
  auth: ["store"],
  // Background jobs over the stores: garbage collection and scrub (and their schedules).
  lifecycle: ["db", "store", "util"],
  // The two boundaries use Db only for readiness (/readyz) and Diags.Echo (Db.ping).
  http: ["auth", "db", "net", "store", "uploads", "util"],
  rpc: ["auth", "db", "lifecycle", "net", "store", "uploads", "util"],
};
const COMPOSITION_ROOTS = new Set(["server.ts", "index.ts", "testing.ts"]);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(ROOT, rel)).isDirectory()) {
      if (name !== "gen") out.push(...sourceFiles(rel));
    } else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/** Import specifiers of a source text: static, type-only, re-exports and dynamic `import()`. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)|^import\s+"([^"]+)"/gm,
  ))
    specs.push((m[1] ?? m[2] ?? m[3]) as string);
  return specs;
}

const packageOf = (file: string) => Object.keys(PACKAGE_DEPS).find((p) => file.startsWith(`${p}/`)) as string;
const serverFolderOf = (file: string) => {
  const rest = file.slice(SERVER_SRC.length + 1);
  return rest.includes("/") ? (rest.split("/")[0] as string) : undefined;
};

const allSources = Object.keys(PACKAGE_DEPS).flatMap((p) =>
  sourceFiles(p === "proto" ? "proto/src" : `${p}/src`),
);

test("packages import only the workspace packages they depend on, never another package's files", () => {
  const problems: string[] = [];
  for (const file of allSources) {
    const pkg = packageOf(file);
    for (const spec of importsOf(readFileSync(path.join(ROOT, file), "utf8"))) {
      if (spec.startsWith("@cacheroach/")) {
        const base = spec.split("/").slice(0, 2).join("/");
        if (!PACKAGE_DEPS[pkg]?.includes(base)) problems.push(`${file}: imports ${spec}`);
        else if (base === "@cacheroach/server" && !CLI_SERVER_IMPORTS[file]?.includes(spec))
          problems.push(
            `${file}: imports ${spec} (the CLI loads the server only to run it, from start and bootstrap)`,
          );
      } else if (spec.startsWith(".")) {
        const target = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), spec));
        if (!target.startsWith(`${pkg}/src/`))
          problems.push(`${file}: reaches outside its package with ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test("server folders import only the layers below them, and nothing imports the composition roots", () => {
  const problems: string[] = [];
  for (const file of allSources.filter((f) => f.startsWith(`${SERVER_SRC}/`))) {
    const from = serverFolderOf(file);
    for (const spec of importsOf(readFileSync(path.join(ROOT, file), "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), spec));
      const to = serverFolderOf(target);
      const base = path.basename(target).replace(/\.js$/, ".ts");
      if (to === undefined) {
        if (COMPOSITION_ROOTS.has(base) && !COMPOSITION_ROOTS.has(path.basename(file)))
          problems.push(`${file}: imports the composition root ${base}`);
        continue;
      }
      if (from === undefined || from === to) continue;
      const allowed = SERVER_LAYERS[from];
      if (allowed === undefined) problems.push(`${file}: folder ${from} has no entry in the layer table`);
      else if (!allowed.includes(to))
        problems.push(`${file}: ${from} → ${to} (${spec}) is not an allowed direction`);
    }
  }
  assert.deepEqual(problems, []);
});

test("docs/architecture.md's code map names every package, server folder and top-level server file", () => {
  const doc = readFileSync(path.join(ROOT, "docs/architecture.md"), "utf8");
  const map = doc.slice(doc.indexOf("## Code map"));
  const missing: string[] = [];
  for (const pkg of Object.keys(PACKAGE_DEPS)) if (!map.includes(`${pkg}/`)) missing.push(pkg);
  for (const name of readdirSync(path.join(ROOT, SERVER_SRC))) {
    const isDir = statSync(path.join(ROOT, SERVER_SRC, name)).isDirectory();
    const entry = isDir ? `${name}/` : name;
    if (!map.includes(entry)) missing.push(`${SERVER_SRC}/${entry}`);
    if (isDir && SERVER_LAYERS[name] === undefined)
      missing.push(`${SERVER_SRC}/${name}/ in the layer table of this test`);
  }
  assert.deepEqual(missing, []);
});

test("the import reader sees static, type-only, re-exported and dynamic imports", () => {
  assert.deepEqual(
    importsOf(
      'import type { Db } from "../db/db.js";\nexport { x } from "./x.js";\nawait import("@cacheroach/server");',
    ),
    ["../db/db.js", "./x.js", "@cacheroach/server"],
  );
});
