#!/usr/bin/env node
/**
 * Builds the web UI into dist/ui (run by the root `npm run build`, after `tsc -b` has type-checked
 * it): esbuild bundles src/main.tsx and src/styles.css into content-hashed, minified files under
 * dist/ui/assets/, writes dist/ui/index.html naming them, and a .gz and .br copy of each text
 * file beside it (the server sends a precompressed copy when the browser accepts it; nothing is
 * compressed per request). dist/ui/manifest.json lists every file with its size and compressed
 * sizes. Output is generated, never committed. Takes well under a second.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist", "ui");

rmSync(OUT, { recursive: true, force: true });
mkdirSync(join(OUT, "assets"), { recursive: true });

const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ["src/main.tsx", "src/styles.css"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome115", "firefox115", "safari16"],
  platform: "browser",
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  outdir: join(OUT, "assets"),
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
});

/** The built file of an entry point, as a path below dist/ui. */
function outputOf(entry) {
  for (const [file, meta] of Object.entries(result.metafile.outputs))
    if (meta.entryPoint === entry) return relative(OUT, join(ROOT, file)).split("\\").join("/");
  throw new Error(`esbuild wrote nothing for ${entry}`);
}
const script = outputOf("src/main.tsx");
const style = outputOf("src/styles.css");

const html = readFileSync(join(ROOT, "src", "index.html"), "utf8")
  .replace("%SCRIPT%", `./${script}`)
  .replace("%STYLE%", `./${style}`);
writeFileSync(join(OUT, "index.html"), html);

const files = ["index.html", script, style];
const manifest = { files: {} };
for (const name of files) {
  const body = readFileSync(join(OUT, name));
  const gz = gzipSync(body, { level: 9 });
  const br = brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  writeFileSync(join(OUT, `${name}.gz`), gz);
  writeFileSync(join(OUT, `${name}.br`), br);
  manifest.files[name] = { size: body.length, gzip: gz.length, br: br.length };
}
writeFileSync(join(OUT, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

if (process.argv.includes("--report")) {
  for (const [name, s] of Object.entries(manifest.files))
    console.log(
      `${basename(name).padEnd(28)} ${String(s.size).padStart(8)} B  gzip ${s.gzip} B  br ${s.br} B`,
    );
}
