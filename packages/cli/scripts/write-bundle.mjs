#!/usr/bin/env node
/**
 * Bundles the built CLI (dist/, after `tsc -b` and write-manifest.mjs; the root `build` script
 * runs all three) with its dependencies into dist/bundle/ (entry cli.js), so a command loads a
 * handful of files instead of hundreds of modules: CPU per trivial command fell by a third to a
 * half (issue 17's measurements).
 *
 * The bundle exports oclif's Config and execute, hoistGlobalFlags, every command of the manifest
 * as COMMANDS (oclif's "explicit" command strategy) and the command_not_found hook. Each command
 * and the hook is a separate file of dist/bundle/ (esbuild's code splitting, with chunks of shared
 * code) imported only when it runs, so a command compiles and evaluates only what it uses, like
 * the unbundled CLI. The server package and native addons stay outside (loaded from node_modules
 * as before, when needed).
 *
 * A bundle must never run stale code: dist/bundle/stamp.json records the size and mtime of every
 * file it was built from (our dist/ files, and the package.json of each dependency bundled), and
 * bin/run.js uses the bundle only when all of them are unchanged (bin/bundle.js); otherwise it
 * runs dist/ as before. So `tsc -b` alone, an edited dist/ file or an `npm install` make the next
 * run use dist/ until `npm run build` rebuilds the bundle.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { BUNDLE_DIR, BUNDLE_FILE, STAMP_FILE, stampOf } from "../bin/bundle.js";
import { literalDescriptors } from "./literal-descriptors.mjs";

const CLI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = join(CLI_ROOT, BUNDLE_DIR);
const manifest = JSON.parse(readFileSync(join(CLI_ROOT, "oclif.manifest.json"), "utf8"));
const pjson = JSON.parse(readFileSync(join(CLI_ROOT, "package.json"), "utf8"));

/** A module specifier for a file of dist/, from the entry (which resolves in dist/). */
const fromDist = (relativePath) => `./${relativePath.slice(1).join("/")}`;

const hookPath = pjson.oclif.hooks.command_not_found.replace(/^\.\/dist\//, "./");
const entry = [
  'export { Config, execute } from "@oclif/core";',
  'export { hoistGlobalFlags } from "./lib/global-flags.js";',
  // A command's class, loaded when oclif runs it: oclif looks the command up synchronously, and
  // needs nothing of it but `run` (flags, arguments and help come from the manifest).
  "const lazy = (load) => class {",
  "  static async run(argv, config) {",
  "    const command = (await load()).default;",
  "    command.id = this.id;",
  "    command.plugin = this.plugin;",
  "    return command.run(argv, config);",
  "  }",
  "};",
  "export const COMMANDS = {",
  ...Object.entries(manifest.commands).map(
    ([id, c]) => `  ${JSON.stringify(id)}: lazy(() => import(${JSON.stringify(fromDist(c.relativePath))})),`,
  ),
  "};",
  `export const commandNotFound = async function (opts) { return (await import(${JSON.stringify(hookPath)})).default.call(this, opts); };`,
].join("\n");

/** What the CLI uses of @oclif/core, as its index exports it (a name missing here fails the build). */
const OCLIF_PARTS = `
export * as Args from "@oclif/core/args";
export { Command } from "@oclif/core/command";
export { Config } from "@oclif/core/config";
export * as Errors from "@oclif/core/errors";
export { execute } from "@oclif/core/execute";
export * as Flags from "@oclif/core/flags";
export { ux } from "@oclif/core/ux";
// As the index does.
try {
  process.cwd();
} catch (error) {
  if (error.code === "ENOENT") process.stderr.write("WARNING: current directory does not exist\\n");
}
`;

const CONNECT_DIR = `${sep}node_modules${sep}@connectrpc${sep}`;
const PROTO_DIR = join(CLI_ROOT, "..", "..", "proto", "dist") + sep;

/**
 * Which module of @cacheroach/proto defines each name its index exports as is (not the
 * grpcReflection namespaces). Our modules import those names from the defining module directly:
 * through the index, every command reached every generated file, so esbuild put all of them in
 * the chunk every command loads, and each command built the descriptors of the whole API.
 */
const PROTO_EXPORTS = new Map();
{
  const indexPath = join(PROTO_DIR, "index.js");
  const index = await import(pathToFileURL(indexPath).href);
  for (const m of readFileSync(indexPath, "utf8").matchAll(/\bfrom "(\.\/[^"]+)"/g)) {
    const path = join(PROTO_DIR, m[1]);
    for (const [name, value] of Object.entries(await import(pathToFileURL(path).href))) {
      if (index[name] === value && !PROTO_EXPORTS.has(name)) PROTO_EXPORTS.set(name, path);
    }
  }
}
const PROTO_IMPORT = /^import \{([^}]*)\} from "@cacheroach\/proto";$/gm;

/** `import { A, B as C } from "@cacheroach/proto"` as imports from the modules defining A and B. */
function directProtoImports(text) {
  return text.replace(PROTO_IMPORT, (whole, list) => {
    const byModule = new Map();
    for (const spec of list
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean)) {
      const path = PROTO_EXPORTS.get(spec.split(/\s+as\s+/)[0]);
      if (!path) return whole; // a name we cannot place: the index, as before
      byModule.set(path, [...(byModule.get(path) ?? []), spec]);
    }
    return [...byModule]
      .map(([path, specs]) => `import { ${specs.join(", ")} } from ${JSON.stringify(path)};`)
      .join(" ");
  });
}
const HEADERS = join(CLI_ROOT, "bin", "headers.js");
const FILE_DESC = join(CLI_ROOT, "bin", "file-desc.js");

/**
 * oclif modules that load a dependency at import for one function our commands never call
 * (globbing command files: we list them in the manifest; rendering update URLs): the dependency
 * is loaded on that function's first use instead (tinyglobby with fdir and picomatch, ejs).
 * Exact texts of @oclif/core 4.x; one that is not found leaves the module as it is.
 */
const LAZY_REQUIRES = [
  [
    `@oclif${sep}core${sep}lib${sep}config${sep}plugin.js`,
    'const tinyglobby_1 = require("tinyglobby");',
    'const tinyglobby_1 = { get glob() { return require("tinyglobby").glob; } };',
  ],
  [
    `@oclif${sep}core${sep}lib${sep}config${sep}config.js`,
    'const ejs_1 = __importDefault(require("ejs"));',
    'const ejs_1 = { get default() { return require("ejs"); } };',
  ],
];

/**
 * Bundled code that finds files next to itself (import.meta.url, __dirname) is given its original
 * location, relative to the bundle: hash-pool's worker file, invocation's bin/run.js, oclif's own
 * package.json.
 */
const keepLocation = {
  name: "keep-location",
  setup(b) {
    b.onLoad({ filter: /\.(c|m)?js$/ }, (args) => {
      let text = readFileSync(args.path, "utf8");
      // Connect's modules get a plain Headers class instead of undici's (see headers.js).
      if (args.path.includes(CONNECT_DIR) && /\bHeaders\b/.test(text)) {
        text = `import { Headers } from ${JSON.stringify(HEADERS)};\n${text}`;
      }
      if (!args.path.includes(`${sep}node_modules${sep}`) && text.includes('"@cacheroach/proto"')) {
        text = directProtoImports(text);
      }
      for (const [file, eager, lazy] of LAZY_REQUIRES) {
        if (args.path.endsWith(file)) text = text.replace(eager, lazy);
      }
      // Protobuf descriptors decoded now rather than at every start (see literal-descriptors.mjs).
      if (text.includes("fileDesc(")) text = literalDescriptors(text, FILE_DESC);
      const usesUrl = text.includes("import.meta.url");
      const usesDir = /\b__(dirname|filename)\b/.test(text);
      if (!usesUrl && !usesDir) return { contents: text, loader: "js", resolveDir: dirname(args.path) };
      const rel = relative(OUT_DIR, args.path).split(sep).join("/");
      let contents = text;
      if (usesUrl) {
        contents = contents.replaceAll(
          "import.meta.url",
          `new URL(${JSON.stringify(rel)}, import.meta.url).href`,
        );
      } else if (!/\b(var|let|const)\s+__(dirname|filename)\b/.test(text)) {
        contents =
          `var __filename = __crJoin(__crBundleDir, ${JSON.stringify(rel)}), __dirname = __crDirname(__filename);\n` +
          contents;
      }
      return { contents, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

/**
 * The entry above, as a module of dist/. Native addons stay in node_modules, loaded by a `require` when the module importing them is
 * first evaluated (esbuild would hoist a plain external import to the top of the bundle, loading
 * the addon on every run).
 */
const externals = {
  name: "externals",
  setup(b) {
    b.onResolve({ filter: /^bundle-entry$/ }, () => ({ path: "bundle-entry", namespace: "entry" }));
    b.onLoad({ filter: /.*/, namespace: "entry" }, () => ({
      contents: entry,
      loader: "js",
      resolveDir: join(CLI_ROOT, "dist"),
    }));
    // The server too: `start` and `bootstrap` import it (and `start` its settings module) from
    // node_modules, in the files of those commands only. Its error table is bundled: every upload
    // maps chunk-body refusals by it, and as an external it would load a second, unbundled
    // @connectrpc/connect from node_modules on every run (about 100 ms).
    b.onResolve({ filter: /^@cacheroach\/server(\/|$)/ }, (args) =>
      args.path === "@cacheroach/server/error-table" ? undefined : { path: args.path, external: true },
    );
    // The generated protobuf code has no side effects (its descriptors are /*@__PURE__*/): marked
    // so, a command gets only the services and messages it uses, not every file of the package.
    const protoDir = PROTO_DIR;
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === "proto") return undefined;
      const intoProto = args.path === "@cacheroach/proto" || args.path.startsWith(protoDir);
      if (!intoProto && !args.importer.startsWith(protoDir)) return undefined;
      const { kind, resolveDir, importer } = args;
      const r = await b.resolve(args.path, { kind, resolveDir, importer, pluginData: "proto" });
      if (r.errors.length > 0) return { errors: r.errors };
      return r.path.startsWith(protoDir) ? { path: r.path, sideEffects: false } : undefined;
    });
    // Our code takes oclif's parts from their own modules: its index loads all of them (help
    // rendering, ux, plugin-loading helpers) and semver for an engines check of its own.
    b.onResolve({ filter: /^@oclif\/core$/ }, (args) =>
      args.importer.includes(`${sep}node_modules${sep}`) ? undefined : { path: "oclif", namespace: "oclif" },
    );
    b.onLoad({ filter: /.*/, namespace: "oclif" }, () => ({
      contents: OCLIF_PARTS,
      loader: "js",
      resolveDir: CLI_ROOT,
    }));
    // node:https (with tls) and node:http2 cost ~15 ms of CPU to load, and a command to an http://
    // server with the default HTTP/1.1 transport uses neither: modules (ours, Connect's) get each
    // as an object whose properties load it on first use.
    b.onResolve({ filter: /^(node:)?(https|http2)$/ }, (args) =>
      args.namespace === "lazy-builtin"
        ? undefined
        : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" },
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, async (args) => {
      const keys = Object.keys(await import(`node:${args.path}`)).filter((k) => k !== "default");
      return {
        contents: [
          "let loaded;",
          `const load = () => (loaded ??= require("node:${args.path}"));`,
          `for (const key of ${JSON.stringify(keys)})`,
          "  Object.defineProperty(exports, key, { get: () => load()[key], enumerable: true });",
        ].join("\n"),
        loader: "js",
        resolveDir: CLI_ROOT,
      };
    });
    // oclif requires TypeScript only in development mode (a dev dependency, absent in production).
    b.onResolve({ filter: /^typescript(\/|$)/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: /^@napi-rs\// }, (args) =>
      args.kind === "require-call"
        ? { path: args.path, external: true }
        : { path: args.path, namespace: "native-addon" },
    );
    b.onLoad({ filter: /.*/, namespace: "native-addon" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
      resolveDir: CLI_ROOT,
    }));
  },
};

rmSync(`${OUT_DIR}.tmp`, { recursive: true, force: true });
const started = Date.now();
const result = await build({
  absWorkingDir: CLI_ROOT,
  entryPoints: [{ in: "bundle-entry", out: "cli" }],
  bundle: true,
  // Each command in its own files (with chunks of shared code), so a command compiles only what
  // it may run.
  splitting: true,
  chunkNames: "[name]-[hash]",
  platform: "node",
  format: "esm",
  target: "node20",
  // Class and function names stay as written: oclif and the error messages show some of them.
  keepNames: true,
  minifyWhitespace: true,
  minifySyntax: true,
  outdir: `${OUT_DIR}.tmp`,
  banner: {
    js: [
      'import { createRequire as __crCreateRequire } from "node:module";',
      'import { fileURLToPath as __crFileURLToPath } from "node:url";',
      'import { dirname as __crDirname, join as __crJoin } from "node:path";',
      "const require = __crCreateRequire(import.meta.url);",
      "const __crBundleDir = __crDirname(__crFileURLToPath(import.meta.url));",
    ].join("\n"),
  },
  plugins: [keepLocation, externals],
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

// Every input: our own files directly; a dependency through its package.json (npm rewrites it
// whenever it installs another version).
const inputs = new Set(["package.json", "oclif.manifest.json"]);
for (const path of Object.keys(result.metafile.inputs)) {
  if (/^(native-addon|entry|oclif|lazy-builtin):/.test(path)) continue; // not files
  const abs = join(CLI_ROOT, path);
  const nm = abs.lastIndexOf(`${sep}node_modules${sep}`);
  if (nm < 0) {
    inputs.add(relative(CLI_ROOT, abs));
    continue;
  }
  const rest = abs.slice(nm + 14).split(sep);
  const pkg = rest[0].startsWith("@") ? rest.slice(0, 2) : rest.slice(0, 1);
  inputs.add(relative(CLI_ROOT, join(abs.slice(0, nm + 14), ...pkg, "package.json")));
}
// A file written while esbuild ran may differ from what it read: then no bundle (the CLI keeps
// running dist/) and the build fails.
for (const path of inputs) {
  if (statSync(join(CLI_ROOT, path)).mtimeMs > started) {
    throw new Error(`${path} changed while bundling: run the build again`);
  }
}
if (process.env.BUNDLE_META) writeFileSync(process.env.BUNDLE_META, JSON.stringify(result.metafile));

// Into place without a moment when a file that a running CLI may import is missing: the chunks
// (named by content hash) first, then cli.js (replaced in one rename), then the stamp; the files
// of the previous build that this one lacks go last.
const TMP = `${OUT_DIR}.tmp`;
const written = readdirSync(TMP);
mkdirSync(OUT_DIR, { recursive: true });
for (const name of written) if (name !== "cli.js") renameSync(join(TMP, name), join(OUT_DIR, name));
renameSync(join(TMP, "cli.js"), join(CLI_ROOT, BUNDLE_FILE));
rmSync(TMP, { recursive: true, force: true });
const stamp = stampOf(CLI_ROOT, [BUNDLE_FILE, ...[...inputs].sort()]);
writeFileSync(`${join(CLI_ROOT, STAMP_FILE)}.tmp`, `${JSON.stringify(stamp)}\n`);
renameSync(`${join(CLI_ROOT, STAMP_FILE)}.tmp`, join(CLI_ROOT, STAMP_FILE));
for (const name of readdirSync(OUT_DIR)) {
  if (!written.includes(name) && join(OUT_DIR, name) !== join(CLI_ROOT, STAMP_FILE))
    rmSync(join(OUT_DIR, name));
}
