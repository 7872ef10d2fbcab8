/**
 * docker-compose.quickstart.yml and the Dockerfile run `cacheroach` with commands, flags and
 * environment variables of their own. No Docker engine exists where this project is built, so these
 * checks stand in for a run: every cacheroach invocation (and the bootstrap line in
 * docs/operations.md) is checked against the built oclif manifest; the compose file's init script
 * and the image's HEALTHCHECK are run as they are written; and the server's command line and
 * environment start a server on the test PostgreSQL (CockroachDB is not available here).
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parseSigningKey } from "@cacheroach/server";
import { parseSettingValue, SETTINGS } from "@cacheroach/server/settings";
import { createTestDatabase, type TestDatabase } from "@cacheroach/server/testing";
import { parse as parseYaml } from "yaml";
import { RETRY_SECONDS_ENV } from "../src/lib/errors.js";
import { HASH_CACHE_ENV } from "../src/lib/hash-cache.js";
import { SIGNING_KEY_ENV } from "../src/lib/signing-key.js";
import { TRANSPORT_ENV } from "../src/lib/transport.js";
import { CLI_ROOT, ServerProcess, spawnCli, tempDir } from "./helpers.js";

const run = promisify(execFile);
const REPO = join(CLI_ROOT, "..", "..");
const COMPOSE = join(REPO, "docker-compose.quickstart.yml");
const DOCKERFILE = join(REPO, "Dockerfile");
const OPERATIONS = join(REPO, "docs", "operations.md");
/** Where the image puts the repository (its WORKDIR). */
const IMAGE_ROOT = "/app";

interface ManifestFlag {
  name: string;
  char?: string;
  env?: string;
  type: "option" | "boolean";
  allowNo?: boolean;
  options?: string[];
}
interface ManifestCommand {
  flags: Record<string, ManifestFlag>;
  args: Record<string, unknown>;
  strict?: boolean;
}
interface Manifest {
  commands: Record<string, ManifestCommand>;
}

/** A `cacheroach` run that the compose file or the image makes. */
interface Invocation {
  where: string;
  argv: string[];
  env: Record<string, string>;
}

/** The instructions of a Dockerfile: continuation lines joined, comments dropped. */
function dockerfileInstructions(text: string): { op: string; rest: string }[] {
  const out: { op: string; rest: string }[] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (pending === "" && /^\s*(#|$)/.test(line)) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) out.push({ op: m[1]!.toUpperCase(), rest: m[2]! });
  }
  return out;
}

/** What the runtime (last) stage of a Dockerfile runs with. */
function imageConfig(text: string): {
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  expose: number[];
  healthcheck: string[];
  user: string;
  problems: string[];
} {
  const all = dockerfileInstructions(text);
  const last = all.map((i) => i.op).lastIndexOf("FROM");
  const cfg = {
    entrypoint: [] as string[],
    cmd: [] as string[],
    env: {} as Record<string, string>,
    expose: [] as number[],
    healthcheck: [] as string[],
    user: "",
    problems: [] as string[],
  };
  // Shell form would make /bin/sh PID 1, which does not pass SIGTERM on to the server.
  const execForm = (op: string, s: string): string[] => {
    try {
      const v = JSON.parse(s) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    } catch {}
    cfg.problems.push(`Dockerfile ${op} must use the exec (JSON array) form: ${s}`);
    return [];
  };
  for (const { op, rest } of all.slice(last + 1)) {
    if (op === "ENTRYPOINT") cfg.entrypoint = execForm(op, rest);
    else if (op === "CMD") cfg.cmd = execForm(op, rest);
    else if (op === "USER") cfg.user = rest;
    else if (op === "EXPOSE") cfg.expose.push(...rest.split(/\s+/).map((p) => Number.parseInt(p, 10)));
    else if (op === "HEALTHCHECK") {
      const m = /^(?:--\S+\s+)*CMD\s+(.*)$/.exec(rest);
      cfg.healthcheck = m ? execForm(op, m[1]!) : [];
    } else if (op === "ENV") {
      for (const kv of rest.split(/\s+/)) {
        const i = kv.indexOf("=");
        if (i <= 0) cfg.problems.push(`Dockerfile ENV needs KEY=value: ${kv}`);
        else cfg.env[kv.slice(0, i)] = kv.slice(i + 1);
      }
    }
  }
  return cfg;
}

/** Environment variables a command reads: its flags' and those the CLI's libraries read. */
function knownEnv(id: string, cmd: ManifestCommand): Set<string> {
  const names = new Set(Object.values(cmd.flags).flatMap((f) => (f.env ? [f.env] : [])));
  if (cmd.flags["signing-key"]) names.add(SIGNING_KEY_ENV);
  // `start` reads its settings' variables itself (the server's settings table), not through oclif.
  if (id === "start") for (const s of SETTINGS) names.add(s.env);
  if (id !== "start") for (const n of [RETRY_SECONDS_ENV, TRANSPORT_ENV, HASH_CACHE_ENV]) names.add(n);
  return names;
}

/**
 * What is wrong with `cacheroach <argv>` run with `env`, by the manifest: an unknown command,
 * flag or CACHEROACH_* variable, a missing flag value, a value outside a flag's options, or an
 * argument too many. Empty when oclif would accept the line.
 */
function checkInvocation(manifest: Manifest, inv: Invocation): string[] {
  const problems: string[] = [];
  const words: string[] = [];
  for (const a of inv.argv) {
    if (a.startsWith("-")) break;
    words.push(a);
  }
  let n = words.length;
  while (n > 0 && !manifest.commands[words.slice(0, n).join(":")]) n--;
  const id = words.slice(0, n).join(":");
  const cmd = manifest.commands[id];
  if (!cmd) return [`${inv.where}: no cacheroach command "${words.join(" ")}"`];
  const byChar = new Map(Object.values(cmd.flags).flatMap((f) => (f.char ? [[f.char, f] as const] : [])));
  const positionals: string[] = [];
  const rest = inv.argv.slice(n);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--") {
      positionals.push(...rest.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    let flag = name.startsWith("--") ? cmd.flags[name.slice(2)] : byChar.get(name.slice(1));
    if (!flag && name.startsWith("--no-")) {
      const positive = cmd.flags[name.slice(5)];
      if (positive?.allowNo) flag = positive;
    }
    if (!flag) {
      problems.push(`${inv.where}: "cacheroach ${id.replaceAll(":", " ")}" has no flag ${name}`);
      continue;
    }
    if (flag.type === "boolean") {
      if (eq > 0) problems.push(`${inv.where}: ${name} takes no value`);
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : rest[++i];
    if (value === undefined) problems.push(`${inv.where}: ${name} needs a value`);
    else if (flag.options && !flag.options.includes(value))
      problems.push(`${inv.where}: ${name} ${value} is not one of ${flag.options.join(", ")}`);
  }
  if (cmd.strict !== false && positionals.length > Object.keys(cmd.args).length)
    problems.push(`${inv.where}: unexpected arguments ${positionals.join(" ")}`);
  const env = knownEnv(id, cmd);
  for (const [k, v] of Object.entries(inv.env)) {
    if (!k.startsWith("CACHEROACH_")) continue;
    if (!env.has(k)) {
      problems.push(`${inv.where}: "cacheroach ${id.replaceAll(":", " ")}" reads no variable ${k}`);
      continue;
    }
    const setting = id === "start" ? SETTINGS.find((s) => s.env === k) : undefined;
    if (setting) {
      try {
        parseSettingValue(setting, v, k);
      } catch (err) {
        problems.push(`${inv.where}: ${(err as Error).message}`);
      }
      continue;
    }
    const flag = Object.values(cmd.flags).find((f) => f.env === k);
    if (flag?.options && !flag.options.includes(v))
      problems.push(`${inv.where}: ${k}=${v} is not one of ${flag.options.join(", ")}`);
  }
  return problems;
}

interface ComposeService {
  image?: string;
  build?: unknown;
  entrypoint?: string | string[];
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: string[];
  ports?: string[];
}

function serviceEnv(s: ComposeService): Record<string, string> {
  if (Array.isArray(s.environment))
    return Object.fromEntries(
      s.environment.map((kv) => [kv.split("=")[0]!, kv.split("=").slice(1).join("=")]),
    );
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v ?? "")]));
}

/** The services of the compose file that run the image the Dockerfile builds. */
function cacheroachServices(composeText: string): Record<string, ComposeService> {
  const compose = parseYaml(composeText) as { services: Record<string, ComposeService> };
  const built = new Set(
    Object.values(compose.services).flatMap((s) => (s.build && s.image ? [s.image] : [])),
  );
  return Object.fromEntries(
    Object.entries(compose.services).filter(([, s]) => s.build !== undefined || built.has(s.image ?? "")),
  );
}

/**
 * Every problem in the pair: the image's ENTRYPOINT must be this repository's CLI and its CMD and
 * ENV a valid command line; each compose service on the image that keeps the ENTRYPOINT must run
 * a valid command with valid variables (the image's ENV plus its own); nothing may need compose's
 * `$` interpolation; and the published container port must be the one the server binds and the
 * image exposes.
 */
function checkQuickstart(manifest: Manifest, composeText: string, dockerfileText: string): string[] {
  const image = imageConfig(dockerfileText);
  const problems = [...image.problems];
  const cli = `${IMAGE_ROOT}/packages/cli/bin/run.js`;
  if (image.entrypoint.join(" ") !== `node ${cli}`)
    problems.push(`Dockerfile ENTRYPOINT must be ["node", "${cli}"]: ${JSON.stringify(image.entrypoint)}`);
  if (image.user === "" || /^(root|0)(:|$)/.test(image.user))
    problems.push("Dockerfile must end as a non-root USER");
  if (!image.healthcheck.join(" ").includes("/readyz"))
    problems.push("Dockerfile HEALTHCHECK must probe /readyz");
  problems.push(...checkInvocation(manifest, { where: "Dockerfile CMD", argv: image.cmd, env: image.env }));

  const services = cacheroachServices(composeText);
  if (Object.keys(services).length === 0) problems.push("no compose service runs the cacheroach image");
  for (const [name, s] of Object.entries(services)) {
    if (JSON.stringify(s).includes("$"))
      problems.push(`service ${name}: "$" would be interpolated by compose`);
    if (s.entrypoint !== undefined) continue; // not the CLI: the init script has a test of its own
    if (typeof s.command === "string") {
      problems.push(`service ${name}: command must be a list (a string is split by compose's own rules)`);
      continue;
    }
    const env = { ...image.env, ...serviceEnv(s) };
    problems.push(
      ...checkInvocation(manifest, { where: `service ${name}`, argv: s.command ?? image.cmd, env }),
    );
    const bindPort = /:(\d+)$/.exec(env["CACHEROACH_BIND"] ?? "")?.[1];
    for (const p of s.ports ?? []) {
      const target = /:(\d+)(\/tcp)?$/.exec(p)?.[1];
      if (target !== bindPort || !image.expose.includes(Number(target)))
        problems.push(`service ${name}: port ${p} is not the bound (${bindPort}) and exposed port`);
    }
  }
  return problems;
}

async function readManifest(): Promise<Manifest> {
  return JSON.parse(await readFile(join(CLI_ROOT, "oclif.manifest.json"), "utf8")) as Manifest;
}

describe("compose quickstart and Dockerfile", () => {
  let manifest: Manifest;
  let composeText: string;
  let dockerfileText: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: TestDatabase | undefined;
  let server: ServerProcess | undefined;

  before(async () => {
    manifest = await readManifest();
    composeText = await readFile(COMPOSE, "utf8");
    dockerfileText = await readFile(DOCKERFILE, "utf8");
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    await cleanup?.();
  });

  test("every cacheroach command, flag and variable they use is one the CLI accepts", () => {
    assert.deepEqual(checkQuickstart(manifest, composeText, dockerfileText), []);
    assert.deepEqual(Object.keys(cacheroachServices(composeText)).sort(), ["cacheroach", "cacheroach-init"]);
  });

  test("a misspelling in a copy of either file is caught", () => {
    const cases: [string, string, string, RegExp][] = [
      ["--connect", "--conect", "compose", /service cacheroach: "cacheroach start" has no flag --conect/],
      ["CACHEROACH_BIND:", "CACHEROACH_BINDS:", "compose", /reads no variable CACHEROACH_BINDS/],
      ['"start", "--connect"', '"strat", "--connect"', "compose", /no cacheroach command "strat"/],
      ['"127.0.0.1:13013:13013"', '"127.0.0.1:13013:13014"', "compose", /port 127.0.0.1:13013:13014 is not/],
      [
        'CMD ["start"]',
        'CMD ["start", "--log-level", "loud"]',
        "Dockerfile",
        /--log-level loud is not one of/,
      ],
      ['CMD ["start"]', "CMD start", "Dockerfile", /CMD must use the exec/],
      ["CACHEROACH_DATA_DIR=", "CACHEROACH_DATADIR=", "Dockerfile", /reads no variable CACHEROACH_DATADIR/],
      ["USER 1000:1000", "USER root", "Dockerfile", /non-root USER/],
    ];
    for (const [from, to, file, expected] of cases) {
      const original = file === "compose" ? composeText : dockerfileText;
      assert.ok(original.includes(from), `${file} contains ${from}`);
      const changed = original.replace(from, to);
      const problems =
        file === "compose"
          ? checkQuickstart(manifest, changed, dockerfileText)
          : checkQuickstart(manifest, composeText, changed);
      assert.match(problems.join("\n"), expected, `${from} → ${to}`);
    }
  });

  test("the bootstrap line in docs/operations.md is a valid command in the container", async () => {
    const docs = await readFile(OPERATIONS, "utf8");
    const lines = [...docs.matchAll(/exec(?: -T)? cacheroach cacheroach (.+)$/gm)].map((m) => m[1]!);
    assert.ok(lines.length > 0, "docs/operations.md shows how to bootstrap in the container");
    // Flags only: an exec'd command inherits the server's variables, which it may ignore.
    for (const line of lines)
      assert.deepEqual(
        checkInvocation(manifest, { where: "docs", argv: line.trim().split(/\s+/), env: {} }),
        [],
      );
  });

  test("the init step writes a key the server accepts, once", async () => {
    const init = cacheroachServices(composeText)["cacheroach-init"]!;
    const entrypoint = init.entrypoint as string[];
    assert.deepEqual(entrypoint.slice(0, 2), ["node", "-e"]);
    // The init service and the server must see the key file through the same named volume.
    const keyFile = serviceEnv(init)[SIGNING_KEY_ENV]!.replace(/^@/, "");
    const mountOf = (s: ComposeService) =>
      (s.volumes ?? []).map((v) => v.split(":")).find(([, target]) => keyFile.startsWith(`${target}/`));
    const server = cacheroachServices(composeText)["cacheroach"]!;
    assert.equal(serviceEnv(server)[SIGNING_KEY_ENV], `@${keyFile}`);
    const volume = mountOf(init)?.[0] ?? "";
    assert.equal(mountOf(server)?.[0], volume, "same volume");
    assert.match(volume, /^[\w.-]+$/, "a named volume, not a host path");

    const keys = join(dir, "keys");
    await mkdir(keys);
    const env = { ...process.env, [SIGNING_KEY_ENV]: `@${join(keys, "signing-key")}` };
    const first = await run(process.execPath, entrypoint.slice(1), { env });
    assert.match(first.stdout, /generated a signing key/);
    const key = await readFile(join(keys, "signing-key"), "utf8");
    assert.equal(parseSigningKey(key).length, 32);
    assert.equal((await stat(join(keys, "signing-key"))).mode & 0o777, 0o600);
    const second = await run(process.execPath, entrypoint.slice(1), { env });
    assert.match(second.stdout, /keeping the signing key/);
    assert.equal(await readFile(join(keys, "signing-key"), "utf8"), key, "a later run keeps the key");
  });

  test("the server service's command line serves, passes the HEALTHCHECK, and bootstraps", async () => {
    db = await createTestDatabase();
    const image = imageConfig(dockerfileText);
    const svc = cacheroachServices(composeText)["cacheroach"]!;
    // The container's environment with its paths moved into the temporary directory, and the
    // CockroachDB URL replaced by the test PostgreSQL's (the flag itself is kept).
    const containerEnv = Object.fromEntries(
      Object.entries({ ...image.env, ...serviceEnv(svc) }).map(([k, v]) => [
        k,
        v.replaceAll("/var/lib/cacheroach", dir),
      ]),
    );
    await mkdir(join(dir, "keys"), { recursive: true });
    await run(
      process.execPath,
      (cacheroachServices(composeText)["cacheroach-init"]!.entrypoint as string[]).slice(1),
      {
        env: { ...process.env, ...containerEnv },
      },
    );
    const argv = (svc.command as string[]).slice(1);
    const connect = argv.indexOf("--connect");
    assert.ok(connect >= 0 && argv[connect + 1]?.startsWith("postgresql://root@cockroach:26257/"));
    argv[connect + 1] = db.url;
    server = await ServerProcess.start(argv, {
      ...process.env,
      ...containerEnv,
      CACHEROACH_LOG_LEVEL: "warn",
    });
    const port = new URL(server.url).port;

    const [probe, ...probeArgs] = image.healthcheck;
    assert.equal(probe, "node");
    const healthEnv = { ...process.env, ...containerEnv, CACHEROACH_BIND: `0.0.0.0:${port}` };
    await run(process.execPath, probeArgs, { env: healthEnv }); // throws unless it exits 0

    // As in the docs: `exec cacheroach cacheroach bootstrap <url>` with the container's environment.
    const boot = await spawnCli(["bootstrap", "-c", join(dir, "admin.config"), server.url], {
      env: containerEnv,
    });
    assert.equal(boot.code, 0, boot.stderr);

    await server.stop();
    await assert.rejects(run(process.execPath, probeArgs, { env: healthEnv }), "stopped server: unhealthy");
  });
});
