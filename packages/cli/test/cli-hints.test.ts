/**
 * Hints that match what was typed, from the user's side (bin/run.js in a child process against a
 * real server): arguments in the wrong order, standard input into a directory, precondition
 * failures by flag, server URLs on the command line, "did you mean" (no poor guesses, no prompt),
 * remote directories given to get and rm, `file rm -r /` needing --yes, topics and counts.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CLI_BIN, CLI_ROOT, spawnCli, useCliServer } from "./helpers.js";

/** Messages on one line each (oclif wraps them at 80 columns otherwise), and no retrying. */
const env = { OCLIF_COLUMNS: "500", CACHEROACH_RETRY_SECONDS: "0" };

describe("hints from what was typed", () => {
  const srv = useCliServer();

  /** `cacheroach <argv> -c <config>` in a child process, from the test's directory. */
  async function cli(argv: string[], input?: string | Buffer) {
    const r = await spawnCli([...argv, "-c", srv.config], {
      env,
      cwd: srv.dir,
      ...(input === undefined ? {} : { input }),
    });
    return { code: r.code, stdout: r.stdout, out: r.stdout.toString(), stderr: r.stderr };
  }

  async function local(name: string, content: string | Buffer): Promise<string> {
    const path = join(srv.dir, name);
    await writeFile(path, content);
    return path;
  }

  test("reversed put and fetch arguments are shown in the right order, file targets too", async () => {
    const file = await cli(["file", "put", "hello.txt", "/x/renamed2.txt"]);
    assert.equal(file.code, 2, file.stderr);
    assert.match(
      file.stderr,
      /the remote path comes first: cacheroach file put \/x\/renamed2\.txt hello\.txt$/m,
    );
    assert.doesNotMatch(file.stderr, /\/hello\.txt\//);
    const dir = await cli(["file", "put", "hello.txt", "/x/"]);
    assert.equal(dir.code, 2, dir.stderr);
    assert.match(dir.stderr, /the remote path comes first: cacheroach file put \/x\/ hello\.txt$/m);
    // fetch stores under the URL's own name: the directory of the file path comes first.
    const fetch = await cli(["file", "fetch", "https://example.com/a.txt", "/in/b.txt"]);
    assert.equal(fetch.code, 2, fetch.stderr);
    assert.match(
      fetch.stderr,
      /the remote path comes first: cacheroach file fetch \/in\/ https:\/\/example\.com\/a\.txt$/m,
    );
  });

  test('"file put /dir/ -" stores standard input as /dir/stdin; "/dir/name -" still works', async () => {
    const bytes = randomBytes(300_000);
    const put = await cli(["file", "put", "/in/", "-"], bytes);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.out, /^\/in\/stdin\s+300000\s+1\s+written$/m);
    const get = await cli(["file", "get", "/in/stdin", "-o", "-"]);
    assert.equal(get.code, 0, get.stderr);
    assert.ok(get.stdout.equals(bytes), "the bytes round-trip");

    const named = await cli(["file", "put", "/in/named.txt", "-"], "hi\n");
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.out, /^\/in\/named\.txt\s+3\s+1\s+written$/m);
    assert.equal((await cli(["file", "get", "/in/named.txt", "-o", "-"])).out, "hi\n");

    // Standard input and files in one command: refused, nothing uploaded.
    await local("other.txt", "other");
    const mixed = await cli(["file", "put", "/mixed/", "-", "other.txt"], "x");
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stderr, /cacheroach file put \/mixed\/stdin -$/m);
    assert.equal((await cli(["file", "ls", "/mixed"])).out, "");

    const help = await cli(["file", "put", "--help"]);
    assert.match(help.out, /stored as <remote-dir>stdin/);
    assert.match(help.out, /echo hello \| cacheroach file put \/inbox\/ -/);
  });

  test("a failed precondition is explained for the flag given", async () => {
    await local("v.txt", "one\n");
    assert.equal((await cli(["file", "put", "/v/", "v.txt"])).code, 0);
    const [head] = JSON.parse((await cli(["file", "ls", "--json", "/v/v.txt"])).out) as {
      contentHash: string;
    }[];

    const stale = await cli(["file", "put", "--if-match", "2", "/v/v.txt", "v.txt"]);
    assert.equal(stale.code, 5, stale.stderr);
    assert.match(
      stale.stderr,
      /\/v\/v\.txt is at version 1 \(ETag [0-9a-f]{64}\), which does not match --if-match 2/,
    );
    assert.match(stale.stderr, /cacheroach file versions \/v\/v\.txt/);
    assert.doesNotMatch(stale.stderr, /no-clobber to overwrite/);

    const missing = await cli(["file", "put", "--if-match", "1", "/v/none.txt", "v.txt"]);
    assert.equal(missing.code, 5, missing.stderr);
    assert.match(missing.stderr, /\/v\/none\.txt does not exist/);
    assert.equal((await cli(["file", "ls", "/v/none.txt"])).out, "");

    for (const flag of ["--no-clobber", "--if-none-match"]) {
      const exists = await cli(["file", "put", flag, "/v/v.txt", "v.txt"]);
      assert.equal(exists.code, 5, exists.stderr);
      assert.match(
        exists.stderr,
        new RegExp(`/v/v\\.txt already exists \\(version 1\\), and ${flag} only creates`),
      );
      assert.match(exists.stderr, new RegExp(`to overwrite it, drop ${flag} \\(or use --if-match 1`));
    }
    // Several files: the one that exists fails with the same words, the other is written.
    await local("w.txt", "w\n");
    const batch = await cli(["file", "put", "--no-clobber", "/v/", "v.txt", "w.txt"]);
    assert.equal(batch.code, 5, batch.stderr);
    assert.match(
      batch.stderr,
      /failed: v\.txt → \/v\/v\.txt: precondition failed: \/v\/v\.txt already exists/,
    );

    // The 12-digit hash of `file ls -w` is not an ETag: said so, with where the whole one is.
    const short = head!.contentHash.slice(0, 12);
    assert.match((await cli(["file", "ls", "-w", "/v/v.txt"])).out, new RegExp(short));
    const shortened = await cli(["file", "put", "--if-match", short, "/v/v.txt", "v.txt"]);
    assert.equal(shortened.code, 2, shortened.stderr);
    assert.match(shortened.stderr, /looks like a shortened content hash \(12 hex digits/);
    assert.match(shortened.stderr, /cacheroach file ls --json \/v\/v\.txt/);
    const whole = await cli([
      "file",
      "put",
      "--always",
      "--if-match",
      head!.contentHash,
      "/v/v.txt",
      "v.txt",
    ]);
    assert.equal(whole.code, 0, whole.stderr);
  });

  test("get and rm of a remote directory say so and give the -r (or -o) command", async () => {
    await local("top.txt", "top\n");
    assert.equal((await cli(["file", "put", "/dir/", "top.txt"])).code, 0);
    assert.equal((await cli(["file", "put", "/rmme/", "top.txt"])).code, 0);

    const slash = await cli(["file", "get", "/dir/", "dl3/"]);
    assert.equal(slash.code, 2, slash.stderr);
    assert.match(slash.stderr, /\/dir\/ is a remote directory/);
    assert.match(slash.stderr, /cacheroach file get -r \/dir\/ dl3\/$/m);
    const bare = await cli(["file", "get", "/dir"]);
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /\/dir is a remote directory, not a file/);
    assert.match(bare.stderr, /cacheroach file get -r \/dir\/$/m);

    // An absolute local directory as the last argument: -o.
    const into = join(srv.dir, "audit", "dl");
    await mkdir(into, { recursive: true });
    const abs = await cli(["file", "get", "/dir/top.txt", `${into}/`]);
    assert.equal(abs.code, 2, abs.stderr);
    assert.match(abs.stderr, /is an existing local directory/);
    assert.match(abs.stderr, new RegExp(`cacheroach file get /dir/top\\.txt -o ${into}/$`, "m"));
    const withO = await cli(["file", "get", "/dir/top.txt", "-o", `${into}/`]);
    assert.equal(withO.code, 0, withO.stderr);
    assert.equal(await readFile(join(into, "top.txt"), "utf8"), "top\n");

    const rmSlash = await cli(["file", "rm", "/rmme/"]);
    assert.equal(rmSlash.code, 2, rmSlash.stderr);
    assert.match(rmSlash.stderr, /cacheroach file rm -r \/rmme\/$/m);
    const rmBare = await cli(["file", "rm", "/rmme"]);
    assert.equal(rmBare.code, 2, rmBare.stderr);
    assert.match(rmBare.stderr, /\/rmme is a remote directory, not a file/);
    assert.match(rmBare.stderr, /cacheroach file rm -r \/rmme\/$/m);
    assert.equal((await cli(["file", "ls", "/rmme"])).out, "/rmme/top.txt\n", "nothing was deleted");
    // A file that is simply missing is still "not found".
    assert.equal((await cli(["file", "rm", "/no/such.txt"])).code, 4);
  });

  test("counts say 1 file, 2 files", async () => {
    await local("p1.txt", "p1\n");
    await local("p2.txt", "p2\n");
    assert.equal((await cli(["file", "put", "/plural/", "p1.txt"])).code, 0);
    const put = await cli(["file", "put", "/plural/", "p1.txt", "p2.txt"]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stderr, /^uploaded 1 file, 3 B; 1 unchanged/m);
    const dry = await cli(["file", "rm", "-r", "-n", "/plural/"]);
    assert.match(dry.stderr, /dry run: 2 files would be deleted/);
    const one = await cli(["file", "rm", "-r", "-n", "/dir/"]);
    assert.match(one.stderr, /dry run: 1 file would be deleted/);
  });

  test("file rm -r / needs --yes (or -y); other deletes do not", async () => {
    const before = (await cli(["file", "ls", "/"])).out;
    assert.notEqual(before, "");
    const refused = await cli(["file", "rm", "-r", "/"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /cacheroach file rm -r \/ --yes$/m);
    assert.equal((await cli(["file", "ls", "/"])).out, before, "nothing was deleted");
    const dry = await cli(["file", "rm", "-r", "--dry-run", "/"]);
    assert.equal(dry.code, 0, dry.stderr);

    const one = await cli(["file", "rm", "-y", "/plural/p1.txt"]);
    assert.equal(one.code, 0, one.stderr);
    const dir = await cli(["file", "rm", "-r", "/plural/"]);
    assert.equal(dir.code, 0, dir.stderr);

    const all = await cli(["file", "rm", "-r", "/", "--yes"]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((await cli(["file", "ls", "/"])).out, "");
  });
});

describe("server URLs on the command line", () => {
  test("a path, no scheme or another scheme: exit 7 with the URL to use", async () => {
    const cfg = "/nonexistent/never-written.cfg";
    const cases: [string[], RegExp][] = [
      [["auth", "set", "-c", cfg, "--server", "http://127.0.0.1:13099/api", "--token", "t"], /has a path/],
      [["bootstrap", "-c", cfg, "--signing-key", "x".repeat(44), "127.0.0.1:13099"], /is not a URL/],
      [["auth", "login", "-c", cfg, "ftp://127.0.0.1:13099"], /does not start with http:\/\/ or https:\/\//],
      [["auth", "set", "-c", cfg, "secret-token@127.0.0.1:13099"], /is not a URL \(no scheme\)/],
    ];
    for (const [argv, problem] of cases) {
      const r = await spawnCli(argv, { env });
      assert.equal(r.code, 7, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, problem, argv.join(" "));
      assert.match(r.stderr, /Code: bad_server_url/, argv.join(" "));
      assert.match(r.stderr, /http:\/\/(<token>@)?127\.0\.0\.1:13099/, argv.join(" "));
      assert.doesNotMatch(r.stderr, /secret-token/, "the token is not printed");
    }
  });
});

describe("did you mean", () => {
  /** `cacheroach <argv>` without a config: these never reach a server. */
  const run = (...argv: string[]) => spawnCli(argv, { env });

  test("a partial command is matched against the last words of commands; poor matches get nothing", async () => {
    const ls = await run("ls", "/x");
    assert.equal(ls.code, 2);
    assert.match(ls.stderr, /did you mean: .*cacheroach file ls \/x$/m);
    assert.match(ls.stderr, /or: .*cacheroach tenant ls \/x$/m);
    assert.doesNotMatch(ls.stderr, /gc/);
    const rm = await run("rm", "/a.txt");
    assert.match(rm.stderr, /did you mean: .*cacheroach file rm \/a\.txt$/m);
    for (const words of [["gv"], ["xyzzy"], ["file", "zz"]]) {
      const r = await run(...words);
      assert.equal(r.code, 2);
      assert.doesNotMatch(r.stderr, /did you mean/, words.join(" "));
    }
    // Close misspellings still count.
    assert.match((await run("tenat", "ls")).stderr, /did you mean: .*cacheroach tenant ls$/m);
  });

  test("copy-like words suggest put or get, in the order those take", async () => {
    const up = await run("file", "cp", "a", "/b/");
    assert.equal(up.code, 2);
    assert.match(up.stderr, /did you mean: .*cacheroach file put \/b\/ a$/m);
    assert.doesNotMatch(up.stderr, /file ls/);
    const down = await run("cp", "/b/x.txt", ".");
    assert.match(down.stderr, /did you mean: .*cacheroach file get \/b\/x\.txt \.$/m);
    assert.match(
      (await run("file", "upload", "/x/", "a")).stderr,
      /did you mean: .*cacheroach file put \/x\/ a$/m,
    );
  });

  test("flags before the command: unknown, a command's own, or missing their value", async () => {
    const unknown = await run("-x", "file", "ls");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown flag -x/);
    assert.doesNotMatch(unknown.stderr, /not a cacheroach command|did you mean/);
    const own = await run("-r", "file", "get", "/d/");
    assert.equal(own.code, 2);
    assert.match(own.stderr, /-r is a flag of "file get", not a global flag/);
    assert.match(own.stderr, /cacheroach file get -r \/d\/$/m);
    const noValue = await run("-c", "file", "ls");
    assert.equal(noValue.code, 2);
    assert.match(noValue.stderr, /-c needs a value \(a config file\)/);
    assert.match(noValue.stderr, /cacheroach file ls -c <config>$/m);
  });

  test("on a terminal nothing is asked and nothing is run: the suggestion is printed, exit 2", async (t) => {
    if (spawnSync("script", ["--version"]).status !== 0) return t.skip("needs script(1) for a terminal");
    // script(1) gives the CLI a terminal; an Enter is typed at once, which accepted a (Y/n) prompt.
    const child = spawn("script", ["-qec", `${process.execPath} ${CLI_BIN} tenat ls`, "/dev/null"], {
      cwd: CLI_ROOT,
      env: { ...process.env, ...env, HOME: "/nonexistent" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stdin.write("\n");
    const timer = setTimeout(() => child.kill(), 30_000);
    const code = await new Promise<number | null>((done) => child.on("close", done));
    clearTimeout(timer);
    assert.doesNotMatch(out, /\(Y\/n\)/);
    assert.match(out, /did you mean: .*cacheroach tenant ls/);
    assert.doesNotMatch(out, /not logged in|config/i, "tenant ls was not run");
    assert.equal(code, 2, out);
  });
});

test("topic summaries name every command of the topic; usage lines show <tenant>", async () => {
  const pjson = JSON.parse(await readFile(join(CLI_ROOT, "package.json"), "utf8")) as {
    oclif: { topics: Record<string, { description: string }> };
  };
  const manifest = JSON.parse(await readFile(join(CLI_ROOT, "oclif.manifest.json"), "utf8")) as {
    commands: Record<string, unknown>;
  };
  for (const [topic, { description }] of Object.entries(pjson.oclif.topics)) {
    const listed = /\(([^)]*)\)[^(]*$/.exec(description)?.[1]?.split(/,\s*/) ?? [];
    const commands = Object.keys(manifest.commands)
      .filter((id) => id.startsWith(`${topic}:`))
      .map((id) => id.slice(topic.length + 1));
    assert.deepEqual([...listed].sort(), [...commands].sort(), `topic ${topic}: ${description}`);
  }
  const help = await spawnCli(["file", "get", "--help"], { env });
  assert.match(help.stdout.toString(), /\[-t <tenant>\]/);
  assert.doesNotMatch(help.stdout.toString(), /<uuid>/);
});
