/**
 * Invoking the CLI as a user does, through bin/run.js in a child process: `cacheroach` on PATH
 * after `npm install -g ./packages/cli`, global flags before the command, help, "did you mean"
 * for a misspelled command, shell completion, and the command lines it prints being runnable.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, realpath, symlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { closestCommand } from "../src/lib/command-suggestion.js";
import { hoistGlobalFlags, type Lookup } from "../src/lib/global-flags.js";
import { CLI_ENTRY, selfCommand, shellWord } from "../src/lib/invocation.js";
import { CLI_BIN, CLI_ROOT, SCRATCHPAD, spawnCli, useCliServer, useTempDir } from "./helpers.js";

const run = promisify(execFile);
const REPO_ROOT = join(CLI_ROOT, "..", "..");

describe("global flags before the command", () => {
  const srv = useCliServer();

  test("-c, --json and -v work before the command and between its words", async () => {
    const a = await spawnCli(["-c", srv.config, "tenant", "ls"]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout.toString(), new RegExp(SCRATCHPAD));

    const b = await spawnCli(["--json", "-c", srv.config, "tenant", "ls"]);
    assert.equal(b.code, 0, b.stderr);
    const tenants = JSON.parse(b.stdout.toString()) as { id: string }[];
    assert.ok(tenants.some((t) => t.id === SCRATCHPAD));

    const c = await spawnCli(["-v", `--config=${srv.config}`, "file", "ls"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /\[cacheroach\] transport/, "--verbose took effect");

    const d = await spawnCli(["tenant", "-c", srv.config, "ls", "--json"]);
    assert.equal(d.code, 0, d.stderr);
    assert.ok(Array.isArray(JSON.parse(d.stdout.toString())));
  });

  test("the config flag's value is not taken for a command word; unknown leading flags stay errors", async () => {
    const a = await spawnCli(["-c", join(srv.dir, "no-such.cfg"), "tenant", "ls"]);
    assert.equal(a.code, 3, a.stderr);
    assert.match(a.stderr, /no cacheroach config at .*no-such\.cfg/);
    const b = await spawnCli(["--frobnicate", "tenant", "ls"]);
    assert.equal(b.code, 2, b.stderr);
  });
});

describe("help, did you mean, completion", () => {
  const tmp = useTempDir();

  test("`help`, `-h` and `help <command>` show usage and exit 0", async () => {
    const root = await spawnCli(["help"]);
    assert.equal(root.code, 0, root.stderr);
    assert.match(root.stdout.toString(), /TOPICS[\s\S]*file[\s\S]*COMMANDS[\s\S]*bootstrap/);
    for (const argv of [
      ["help", "file", "put"],
      ["file", "put", "-h"],
      ["-h", "file", "put"],
    ]) {
      const r = await spawnCli(argv);
      assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout.toString(), /USAGE\s+\$ cacheroach file put/, argv.join(" "));
    }
  });

  test("a misspelled command names the closest one, with the arguments typed, and exits 2", async () => {
    const a = await spawnCli(["tenat", "ls"]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /"cacheroach tenat ls" is not a cacheroach command/);
    assert.match(a.stderr, /did you mean: .*cacheroach tenant ls$/m);
    const b = await spawnCli(["file", "pt", "/docs/", "my notes.txt"]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /did you mean: .*cacheroach file put \/docs\/ 'my notes\.txt'$/m);
    assert.match(b.stderr, /help file$/m);
    const c = await spawnCli(["xyzzy"]);
    assert.equal(c.code, 2);
    assert.doesNotMatch(c.stderr, /did you mean/);
    assert.match(c.stderr, /list the commands: .*help$/m);
  });

  test("bash completion completes topics, commands and flags", async () => {
    const env = { HOME: tmp.dir, XDG_CACHE_HOME: join(tmp.dir, ".cache") };
    const setup = await spawnCli(["autocomplete", "script", "bash"], { env });
    assert.equal(setup.code, 0, setup.stderr);
    const complete = async (line: string): Promise<string[]> => {
      const words = line.split(" ");
      const script = [
        setup.stdout.toString(),
        `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}`,
        `COMP_LINE='${line}'; COMP_POINT=${line.length}`,
        "_cacheroach_autocomplete",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash expansion, not a template
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join("\n");
      const { stdout } = await run("bash", ["-c", script], { env: { ...process.env, ...env } });
      return [...new Set(stdout.split("\n").filter(Boolean))];
    };
    // `autocomplete script` only prints the setup line; the completion function is built by
    // `autocomplete bash` (which also prints the instructions) into the cache dir.
    const build = await spawnCli(["autocomplete", "bash"], { env });
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout.toString(), /cacheroach autocomplete script bash/);
    assert.deepEqual(await complete("cacheroach fi"), ["file"]);
    assert.deepEqual(await complete("cacheroach file p"), ["put"]);
    assert.deepEqual(await complete("cacheroach file put --no-c"), ["--no-clobber"]);
  });
});

describe("cacheroach on PATH", () => {
  const tmp = useTempDir();

  test("`npm install -g ./packages/cli` puts a working `cacheroach` on PATH", async () => {
    const prefix = join(tmp.dir, "global");
    await run(
      "npm",
      ["install", "-g", "--offline", "--no-fund", "--no-audit", "--prefix", prefix, "./packages/cli"],
      {
        cwd: REPO_ROOT,
      },
    );
    const PATH = `${join(prefix, "bin")}:${process.env.PATH}`;
    const { stdout } = await run("cacheroach", ["--version"], {
      env: { ...process.env, PATH },
      cwd: tmp.dir,
    });
    assert.match(stdout, /^@cacheroach\/cli\/\d+\.\d+\.\d+ /);
    // The command lines the CLI prints then start with plain `cacheroach`.
    assert.equal(selfCommand(tmp.dir, { PATH }), "cacheroach");
  });

  test("printed command lines are `npx cacheroach` in the checkout and `node <path>` elsewhere", async () => {
    const PATH = "/usr/bin:/bin";
    assert.equal(selfCommand(REPO_ROOT, { PATH }), "npx cacheroach");
    assert.equal(selfCommand(join(REPO_ROOT, "docs"), { PATH }), "npx cacheroach");
    const elsewhere = selfCommand(tmp.dir, { PATH });
    assert.match(elsewhere, /^node \S*bin\/run\.js$/);
    const { stdout } = await run("bash", ["-c", `${elsewhere} --version`], { cwd: tmp.dir });
    assert.match(stdout, /^@cacheroach\/cli\//);
    // A different `cacheroach` first on PATH is not taken for this one.
    const other = join(tmp.dir, "other-bin");
    await mkdir(other);
    await symlink("/bin/true", join(other, "cacheroach"));
    assert.equal(selfCommand(REPO_ROOT, { PATH: other }), "npx cacheroach");
    assert.equal(await realpath(CLI_ENTRY), await realpath(CLI_BIN));
  });
});

test("hoistGlobalFlags moves only global flags found among the command's words", () => {
  const lookup: Lookup = (id) => {
    if (["file:ls", "tenant:ls", "bootstrap"].includes(id)) {
      return { kind: "command", flags: ["config", "verbose", "json", "tenant"] };
    }
    if (id === "help") return { kind: "command", flags: ["nested-commands"] };
    return ["file", "tenant"].includes(id) ? { kind: "topic" } : undefined;
  };
  const h = (...argv: string[]) => hoistGlobalFlags(argv, lookup);
  assert.deepEqual(h("-c", "x.cfg", "file", "ls", "/a"), ["file", "ls", "-c", "x.cfg", "/a"]);
  assert.deepEqual(h("file", "-v", "ls", "-t", "T"), ["file", "ls", "-v", "-t", "T"]);
  assert.deepEqual(h("--json", "-cx.cfg", "tenant", "ls"), ["tenant", "ls", "--json", "-cx.cfg"]);
  assert.deepEqual(h("--config=a b", "bootstrap", "http://x"), ["bootstrap", "--config=a b", "http://x"]);
  assert.deepEqual(h("file", "ls", "-c", "x"), ["file", "ls", "-c", "x"], "nothing to move");
  assert.deepEqual(h("-v", "help", "file"), ["-v", "help", "file"], "help has no --verbose");
  assert.deepEqual(h("-t", "T", "file", "ls"), ["-t", "T", "file", "ls"], "not a global flag");
  assert.deepEqual(h("-v", "nope"), ["-v", "nope"], "no command");
});

test("closestCommand splits the command words from the arguments", () => {
  const ids = ["file:put", "file:ls", "tenant:ls", "tenant:rm", "bootstrap", "help"];
  assert.deepEqual(closestCommand(["tenat", "ls"], ids), {
    typed: ["tenat", "ls"],
    command: ["tenant", "ls"],
    args: [],
  });
  assert.deepEqual(closestCommand(["file", "pt", "/x/", "a"], ids), {
    typed: ["file", "pt"],
    command: ["file", "put"],
    args: ["/x/", "a"],
  });
  assert.deepEqual(closestCommand(["botstrap", "http://h"], ids)?.command, ["bootstrap"]);
  assert.equal(closestCommand(["xyzzy"], ids), undefined);
  assert.equal(shellWord("it's"), `'it'\\''s'`);
  assert.equal(shellWord("/a/b.txt"), "/a/b.txt");
});
