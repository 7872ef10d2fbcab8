/**
 * The CLI's bundle (scripts/write-bundle.mjs, run by `npm run build`; bin/bundle.js decides): the
 * build leaves a current bundle, bin/run.js runs it only while every file it was built from is
 * unchanged and otherwise runs dist/, and both give the same results.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { builtinModules } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { saveConfig } from "@cacheroach/cli";
// @ts-expect-error bin/ is plain JavaScript without declarations.
import { BUNDLE_DIR, BUNDLE_FILE, bundleIsFresh, STAMP_FILE, stampOf } from "../bin/bundle.js";
import { CLI_BIN, CLI_ROOT, tempDir } from "./helpers.js";

const REPO_ROOT = join(CLI_ROOT, "..", "..");

function cli(bin: string, argv: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...argv], {
    encoding: "utf8",
    env: { ...process.env, CACHEROACH_CONFIG: "", ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("npm run build leaves a current bundle", () => {
  assert.equal(bundleIsFresh(CLI_ROOT), true, "run `npm run build`");
});

test("the bundle counts as current only while it and each file it was built from are unchanged", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    mkdirSync(join(dir, BUNDLE_DIR), { recursive: true });
    writeFileSync(join(dir, BUNDLE_FILE), "bundle");
    writeFileSync(join(dir, "a.js"), "a");
    writeFileSync(join(dir, "b.js"), "b");
    const stamp = () =>
      writeFileSync(join(dir, STAMP_FILE), JSON.stringify(stampOf(dir, [BUNDLE_FILE, "a.js", "b.js"])));
    stamp();
    assert.equal(bundleIsFresh(dir), true);

    writeFileSync(join(dir, "b.js"), "b2"); // rebuilt by tsc
    assert.equal(bundleIsFresh(dir), false);
    stamp();
    utimesSync(join(dir, "a.js"), new Date(), new Date(Date.now() - 3_600_000)); // same size, other mtime
    assert.equal(bundleIsFresh(dir), false);
    stamp();
    writeFileSync(join(dir, BUNDLE_FILE), "other bundle");
    assert.equal(bundleIsFresh(dir), false);
    stamp();
    assert.equal(bundleIsFresh(dir), true);
    writeFileSync(join(dir, STAMP_FILE), "{not json");
    assert.equal(bundleIsFresh(dir), false);
    stamp();
    rmSync(join(dir, "a.js"));
    assert.equal(bundleIsFresh(dir), false);
    // A stamp that does not start with the bundle itself is not trusted.
    writeFileSync(join(dir, STAMP_FILE), JSON.stringify(stampOf(dir, ["b.js"])));
    assert.equal(bundleIsFresh(dir), false);
  } finally {
    await cleanup();
  }
});

test("bin/run.js runs the bundle while it is current and dist/ once a file it was built from changed", async () => {
  // A copy of the CLI package (mtimes kept) beside links to the rest of the checkout.
  const { dir, cleanup } = await tempDir();
  try {
    const copy = join(dir, "packages", "cli");
    mkdirSync(copy, { recursive: true });
    // cp -p keeps mtimes to the nanosecond (fs.cpSync's preserveTimestamps rounds them).
    const names = ["bin", "dist", "package.json", "oclif.manifest.json"].map((n) => join(CLI_ROOT, n));
    assert.equal(spawnSync("cp", ["-rp", ...names, copy]).status, 0);
    for (const name of ["node_modules", "proto", "packages/core", "packages/server", "packages/schema"]) {
      symlinkSync(join(REPO_ROOT, name), join(dir, name));
    }
    const bin = join(copy, "bin", "run.js");
    const missing = ["auth", "whoami", "-c", join(dir, "missing.cfg")];
    // Mark the message a missing config produces, differently in the bundle's output files (not
    // inputs: the bundle stays current) and in dist/.
    const original = "no cacheroach config at";
    for (const f of readdirSync(join(copy, BUNDLE_DIR))) {
      const path = join(copy, BUNDLE_DIR, f);
      if (f.endsWith(".js") && f !== "cli.js") {
        writeFileSync(path, readFileSync(path, "utf8").replaceAll(original, "BUNDLE no config at"));
      }
    }
    const bundled = cli(bin, missing);
    assert.equal(bundled.code, 3, bundled.stderr);
    assert.match(bundled.stderr, /BUNDLE no config at/);
    // The same run from dist/ (CACHEROACH_BUNDLE=0, or the real checkout) says it as written.
    assert.match(cli(bin, missing, { CACHEROACH_BUNDLE: "0" }).stderr, /: no cacheroach config at/);

    const config = join(copy, "dist", "lib", "config.js");
    writeFileSync(config, readFileSync(config, "utf8").replace(original, "DIST no config at")); // as tsc -b would
    const fallback = cli(bin, missing);
    assert.equal(fallback.code, 3, fallback.stderr);
    assert.match(fallback.stderr, /DIST no config at/);
  } finally {
    await cleanup();
  }
});

test("the bundle and dist/ answer alike", () => {
  for (const argv of [
    ["--version"],
    ["file", "ls", "--help"],
    ["help", "tenant"],
    ["-c", "/nonexistent/x.cfg", "tenant", "ls"],
    ["file", "lss"],
    ["start", "--print-config", "--data-dir", "/nonexistent", "--json"],
  ]) {
    const bundled = cli(CLI_BIN, argv);
    const dist = cli(CLI_BIN, argv, { CACHEROACH_BUNDLE: "0" });
    assert.deepEqual(bundled, dist, argv.join(" "));
  }
});

test("the bundle's Headers for Connect (bin/headers.js) answers as the global Headers", async () => {
  // @ts-expect-error bin/ is plain JavaScript without declarations.
  const { Headers: Lite } = await import("../bin/headers.js");
  const script = (H: typeof Headers) => {
    const out: unknown[] = [];
    const h = new H({ "Content-Type": " application/proto ", "X-B": "1" });
    h.append("x-b", "2");
    h.append("Set-Cookie", "a=1");
    h.append("set-cookie", "b=2");
    h.set("Authorization", "Bearer t");
    out.push(h.get("X-B"), h.get("content-type"), h.get("missing"), h.has("AUTHORIZATION"), h.getSetCookie());
    out.push([...h], [...h.keys()], [...h.values()]);
    h.forEach((v, k) => {
      out.push(`${k}=${v}`);
    });
    h.delete("x-b");
    out.push(
      [...h.entries()],
      [...new H(h)],
      [
        ...new H([
          ["a", "1"],
          ["A", "2"],
        ]),
      ],
    );
    out.push([...new H(undefined)], [...new H([])]);
    return out;
  };
  assert.deepEqual(script(Lite), script(Headers));
  assert.throws(() => new Lite([["only-name"]]), TypeError);
});

test("a bundled command to an http:// server loads neither node:https nor node:http2", async () => {
  // A server that answers every Connect call "unauthenticated": the command makes its call and fails.
  const server = createServer((_req, res) =>
    res
      .writeHead(401, { "content-type": "application/json" })
      .end(JSON.stringify({ code: "unauthenticated", message: "no such token" })),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { dir, cleanup } = await tempDir();
  try {
    const config = join(dir, "cli.cfg");
    await saveConfig(config, {
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: "t",
    });
    // Reports the built-in modules the process loaded, on exit.
    const probe = join(dir, "probe.cjs");
    const report =
      "process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join(' ')";
    writeFileSync(
      probe,
      `process.on("exit", () => process.stderr.write("\\nLOADED " + ${report} + "\\n"));\n`,
    );
    const loaded = async (env: Record<string, string>) => {
      const child = spawn(process.execPath, ["-r", probe, CLI_BIN, "-c", config, "auth", "whoami"], {
        env: { ...process.env, CACHEROACH_CONFIG: "", ...env },
      });
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const [code] = await once(child, "exit");
      assert.notEqual(code, 0, stderr);
      const line = stderr.split("\n").find((l) => l.startsWith("LOADED "));
      assert.ok(line, stderr);
      return new Set(line.slice(7).split(" "));
    };
    const bundled = await loaded({});
    assert.ok(bundled.has("http"), "the call went over node:http");
    assert.ok(!bundled.has("https") && !bundled.has("http2") && !bundled.has("tls"), [...bundled].join(" "));
    // dist/ (Connect's modules import both) shows that the probe sees them.
    const dist = await loaded({ CACHEROACH_BUNDLE: "0" });
    assert.ok(dist.has("https") && dist.has("http2"));
  } finally {
    server.close();
    await cleanup();
  }
});

test("a bundled command loads the descriptors of the proto files it uses, not the whole API's", () => {
  const dir = join(CLI_ROOT, BUNDLE_DIR);
  const entry = readFileSync(join(CLI_ROOT, BUNDLE_FILE), "utf8");
  /** The text of a command's file and of every file it imports statically, transitively. */
  const loaded = (id: string) => {
    const file = new RegExp(`"${id}":lazy\\(\\(\\)=>import\\("\\./([^"]+)"\\)\\)`).exec(entry)?.[1];
    assert.ok(file, `${id} in ${BUNDLE_FILE}`);
    const seen = new Set<string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const m of readFileSync(join(dir, name), "utf8").matchAll(/\bfrom\s*"\.\/([^"]+)"/g)) visit(m[1]!);
    };
    visit(file);
    return [...seen].map((name) => readFileSync(join(dir, name), "utf8")).join("\n");
  };
  const whoami = loaded("auth:whoami");
  assert.match(whoami, /"cacheroach\/v1\/tokens\.proto"/);
  for (const unused of ["files", "uploads", "scrub", "gc", "vhosts"]) {
    assert.doesNotMatch(
      whoami,
      new RegExp(`"cacheroach/v1/${unused}\\.proto"`),
      `auth whoami builds ${unused}.proto`,
    );
  }
  const ls = loaded("file:ls");
  assert.match(ls, /"cacheroach\/v1\/files\.proto"/);
  assert.doesNotMatch(ls, /"cacheroach\/v1\/uploads\.proto"/);
});

test("the bundle's oclif loads tinyglobby and ejs only when used (write-bundle.mjs' LAZY_REQUIRES still apply)", () => {
  const dir = join(CLI_ROOT, BUNDLE_DIR);
  const text = readdirSync(dir)
    .filter((n) => n.endsWith(".js"))
    .map((n) => readFileSync(join(dir, n), "utf8"))
    .join("\n");
  assert.match(text, /get glob\(\)\{return require_[a-z0-9_]+\(\)\.glob\}/);
  assert.match(text, /get default\(\)\{return require_ejs\(\)\}/);
});

test("the bundle loads from node_modules only native addons, and the server only in start and bootstrap", () => {
  const dir = join(CLI_ROOT, BUNDLE_DIR);
  const builtin = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const outside = new Map<string, Set<string>>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".js"))) {
    const text = readFileSync(join(dir, file), "utf8");
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\(\s*|\brequire\(\s*)"([@\w][\w@/.:-]*)"/g)) {
      const spec = m[1]!;
      if (builtin.has(spec)) continue;
      if (!outside.has(spec)) outside.set(spec, new Set());
      outside.get(spec)!.add(file.replace(/-[A-Z0-9]{8}\.js$/, ""));
    }
  }
  // A package loaded from node_modules at run time is a second, unbundled copy of its code (and
  // of what it imports): a light module that every command loads must be bundled instead.
  const allowed: Record<string, (files: Set<string>) => boolean> = {
    "@cacheroach/server": (files) => [...files].every((f) => f === "start" || f === "bootstrap"),
    "@cacheroach/server/settings": (files) => [...files].every((f) => f === "start"),
    "@napi-rs/blake-hash": () => true, // a native addon
    typescript: () => true, // oclif's optional ts-node support, never reached by a bundled run
  };
  for (const [spec, files] of outside) {
    const ok = allowed[spec];
    assert.ok(ok?.(files), `${[...files].join(", ")} load ${spec} from node_modules`);
  }
});
