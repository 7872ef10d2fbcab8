/**
 * The CLI README's command reference is generated from the commands (scripts/write-readme.mjs), and
 * every example in it runs, as printed, against a real server: bin/run.js in a bash subprocess,
 * each example in a sandbox of its own (a working directory with the local files examples name,
 * and a HOME whose config holds a super session of its own, so `auth logout` revokes nothing
 * another example needs).
 *
 * What an example cannot mean literally is substituted, openly, in SUBSTITUTIONS below: the
 * documentation's server address, host names and secrets become the test's; the example IDs
 * (tenants, principals, sessions) become objects made for that example. Examples that cannot run
 * here, or that are meant to fail, are listed with the reason in SPECIAL; a listed example that no
 * longer exists fails the test, so the list cannot rot.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import {
  CLI_BIN,
  CLI_ROOT,
  errorText,
  jsonOut,
  type LocalHttp,
  listenHttp,
  runCli,
  SCRATCHPAD,
  useCliServer,
} from "./helpers.js";

const run = promisify(execFile);
const README = join(CLI_ROOT, "README.md");

/** One example of the generated reference: the command it documents and its text. */
interface Example {
  readonly command: string;
  readonly text: string;
}

/** The examples of the generated command reference, continuation lines joined. */
function readmeExamples(md: string): Example[] {
  const start = md.indexOf("<!-- commands -->");
  const stop = md.indexOf("<!-- commandsstop -->");
  const out: Example[] = [];
  let command = "";
  let inExamples = false;
  let pending: string | undefined;
  for (const line of md.slice(start, stop).split("\n")) {
    const heading = /^### `cacheroach (.+)`$/.exec(line);
    if (heading) command = heading[1]!;
    if (/^[A-Z][A-Z ]+$/.test(line)) inExamples = line === "EXAMPLES";
    if (line.startsWith("```")) inExamples = false;
    if (!inExamples) continue;
    const text =
      pending !== undefined ? `${pending} ${line.trim()}` : (/^\s+\$ (.*)$/.exec(line)?.[1] ?? undefined);
    if (text === undefined) continue;
    if (text.endsWith(" \\")) pending = text.slice(0, -2);
    else {
      pending = undefined;
      out.push({ command, text });
    }
  }
  return out;
}

/** Examples that do not simply succeed here: skipped (with why), or expected to fail (with why). */
const SPECIAL: Record<string, { skip: string } | { exit: number; why: string }> = {
  "cacheroach start": { skip: "runs a server until stopped; bootstrap.test.ts starts one and stops it" },
  "cacheroach start --bind 0.0.0.0:13013 --connect postgresql://root@db:26257/cacheroach --signing-key @/run/secrets/hmac":
    { skip: "needs that CockroachDB at db:26257 (docker-compose.quickstart.yml)" },
  "cacheroach auth login https://files.example.com": {
    exit: 3,
    why: "this server has no OIDC issuer, which the command says at once; auth-login.test.ts and browser-login.test.ts log in through a real one",
  },
  "cacheroach auth login --no-browser https://files.example.com": {
    exit: 3,
    why: "as above: no OIDC issuer here",
  },
  "cacheroach tenant rm 5b3c2d4e-0000-4000-8000-000000000001": {
    exit: 2,
    why: "without a terminal to ask on, a delete needs --yes: it refuses before changing anything",
  },
};

/**
 * State an example assumes (as the commands that make it, with the same substitutions), made in
 * its sandbox before it runs.
 */
const GIVEN: Record<string, string> = {
  "cacheroach file get -r /site/ ./site-copy/": "cacheroach file put -r /site/ ./public",
  "cacheroach file rm -r --dry-run /tmp/ && cacheroach file rm -r /tmp/":
    "cacheroach file put /tmp/ ./report.pdf",
  "cacheroach file put --if-match 4 /config/app.json app.json":
    "for v in 1 2 3 4; do printf '%s\\n' $v > app.json && cacheroach file put /config/app.json app.json || exit 1; done; printf 'new\\n' > app.json",
  "cacheroach vhost rm 5b3c2d4e-0000-4000-8000-000000000001 files.example.com":
    "cacheroach vhost create 5b3c2d4e-0000-4000-8000-000000000001 files.example.com",
};

describe("the CLI README", () => {
  let fetchTarget: LocalHttp;
  const srv = useCliServer({
    server: { fetchAllowPrivate: true },
    setup: async (s) => {
      // What the file examples read, remove and sign, in the scratchpad (the configs' default tenant).
      const local = join(s.dir, "fixtures");
      await mkdir(local);
      const put = async (remoteDir: string, name: string, content: string) => {
        await writeFile(join(local, name), content);
        const r = await s.cli("file", "put", remoteDir, join(local, name));
        assert.equal(r.code, 0, errorText(r));
      };
      for (let v = 1; v <= 3; v++) await put("/docs/", "report.pdf", `report version ${v}\n`);
      await put("/docs/", "old.pdf", "old\n");
      await put("/", "a.txt", "a\n");
      await put("/b/", "c.txt", "c\n");
      await put("/logs/", "app.log", "INFO started\nERROR something broke\n");
      await put("/tmp/", "a.txt", "tmp a\n");
      await put("/tmp/", "b.txt", "tmp b\n");
      await writeFile(join(s.dir, "hmac"), Buffer.from(s.ts.signingKey).toString("base64"));
      fetchTarget = await listenHttp((_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("fetched\n");
      });
    },
    teardown: async () => {
      await fetchTarget?.close();
    },
  });

  test("its command reference is what the commands generate (npm run readme)", () => {
    const r = spawnSync(process.execPath, [join(CLI_ROOT, "scripts", "write-readme.mjs"), "--check"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
  });

  test("every example runs as printed", { timeout: 600_000 }, async (t) => {
    const examples = readmeExamples(await readFile(README, "utf8"));
    assert.ok(examples.length >= 40, `found only ${examples.length} examples`);
    const texts = new Set(examples.map((e) => e.text));
    for (const listed of [...Object.keys(SPECIAL), ...Object.keys(GIVEN)]) {
      assert.ok(texts.has(listed), `a table lists a gone example: ${listed}`);
    }
    const failures: string[] = [];
    for (const [i, ex] of examples.entries()) {
      const special = SPECIAL[ex.text];
      if (special && "skip" in special) {
        t.diagnostic(`skipped: ${ex.text} (${special.skip})`);
        continue;
      }
      const expected = special && "exit" in special ? special.exit : 0;
      const sandbox = await prepare(i, ex);
      if (sandbox.given) {
        const g = await runExample(sandbox.given, sandbox);
        assert.equal(g.code, 0, `${sandbox.given}\n${g.output}`);
      }
      const r = await runExample(sandbox.script, sandbox);
      if (r.code !== expected) {
        failures.push(
          `${ex.text}\n  ran: ${sandbox.script}\n  exit ${r.code}, expected ${expected}\n${r.output}`,
        );
      }
    }
    assert.deepEqual(failures, [], failures.join("\n\n"));
  });

  /** A sandbox for example `i` and the example with the substitutions made. */
  async function prepare(i: number, ex: Example) {
    const dir = join(srv.dir, `example-${i}`);
    const home = join(dir, "home");
    const work = join(dir, "work");
    await mkdir(join(work, "public", "css"), { recursive: true });
    await mkdir(join(work, "dist"), { recursive: true });
    await writeFile(join(work, "report.pdf"), "a local report\n");
    await writeFile(join(work, "public", "index.html"), "<h1>site</h1>\n");
    await writeFile(join(work, "public", "css", "site.css"), "h1 {}\n");
    await writeFile(join(work, "dist", "app.tar.gz"), "not really a tarball\n");
    await mkdir(join(work, "build"), { recursive: true });
    await writeFile(join(work, "build", "report.pdf"), "a built report\n");
    await writeFile(join(work, "app.json"), '{"v": 5}\n');
    await mkdir(join(work, "photos", "2026"), { recursive: true });
    await writeFile(join(work, "photos", "2026", "beach.jpg"), "not really a photo\n");
    await mkdir(join(work, "site"), { recursive: true });
    await writeFile(join(work, "site", "index.html"), "<h1>www</h1>\n");
    await mkdir(join(dir, "secure"));
    // A super session of the example's own (a new machine has no config: bootstrap writes it).
    if (ex.command !== "bootstrap") {
      const cfg = join(home, ".cacheroach", "config");
      await mkdir(join(home, ".cacheroach"), { recursive: true, mode: 0o700 });
      const own = await srv.cli(
        "session",
        "delegate",
        "--on",
        "super",
        "--capabilities",
        "all",
        "--duration",
        "1h",
        "-o",
        cfg,
      );
      assert.equal(own.code, 0, errorText(own));
      const dflt = await runCli(["tenant", "default", SCRATCHPAD, "-c", cfg]);
      assert.equal(dflt.code, 0, errorText(dflt));
    } else {
      await mkdir(join(work, ".cacheroach-data"), { recursive: true });
      await writeFile(
        join(work, ".cacheroach-data", "signing-keys"),
        `${await readFile(join(srv.dir, "hmac"), "utf8")}\n`,
      );
    }
    let script = ex.text;
    let given = GIVEN[ex.text];
    for (const [from, to] of await substitutions(i, ex, dir, work)) {
      script = script.replaceAll(from, to);
      given = given?.replaceAll(from, to);
    }
    return { script, given, home, work, dir };
  }

  /**
   * What an example cannot mean literally, as [text, replacement]: the documentation's server,
   * hosts and secrets become the test's; example IDs become objects made for this example.
   */
  async function substitutions(
    i: number,
    ex: Example,
    dir: string,
    work: string,
  ): Promise<[string, string][]> {
    const host = new URL(srv.ts.url).host;
    const subs: [string, string][] = [
      ["http://127.0.0.1:13013", srv.ts.url],
      ["https://eyJhbGciOi...@files.example.com/", `http://${srv.ts.superToken}@${host}/`],
      ["https://files.example.com", srv.ts.url],
      ["@/run/secrets/hmac", `@${join(srv.dir, "hmac")}`],
      ["/secure/bob.cfg", join(dir, "secure", "bob.cfg")],
      ["https://example.com", fetchTarget.url],
      ["https://api.example.com", fetchTarget.url],
    ];
    const text = ex.text;
    const tenant = async () => {
      const r = await srv.cli("tenant", "create", `Example ${i}`);
      assert.equal(r.code, 0, errorText(r));
      return r.stdout.trim();
    };
    const principal = async (name: string, out: string) => {
      const r = await srv.cli("principal", "create", name, "-o", out, "--json");
      assert.equal(r.code, 0, errorText(r));
      return jsonOut<{ id: string }>(r).id;
    };
    for (const id of ["5b3c2d4e-0000-4000-8000-000000000001", "6f1c2a4e-0c8b-4d5e-9f00-1a2b3c4d5e6f"]) {
      if (text.includes(id)) subs.push([id, await tenant()]);
    }
    const principals: [string, string][] = [
      ["6f1d2c3b-0000-4000-8000-000000000002", `user-${i}`],
      ["<alice's principal id>", `alice-${i}`],
      ["<bob's principal id>", `bob-${i}`],
    ];
    for (const [placeholder, name] of principals) {
      if (text.includes(placeholder))
        subs.push([placeholder, await principal(name, join(dir, `${name}.cfg`))]);
    }
    if (text.includes("9a8b7c6d-0000-4000-8000-000000000003")) {
      const r = await srv.cli("session", "delegate", "--on", "tenant", "--id", SCRATCHPAD, "--json");
      assert.equal(r.code, 0, errorText(r));
      subs.push(["9a8b7c6d-0000-4000-8000-000000000003", jsonOut<{ id: string }>(r).id]);
    }
    // A config of another user where an example uses one.
    for (const name of ["alice", "bob"]) {
      if (text.includes(`-c ./${name}.cfg`) && ex.command !== "auth set") {
        await principal(`${name}-${i}`, join(work, `${name}.cfg`));
      }
    }
    return subs;
  }

  async function runExample(script: string, s: { home: string; work: string }) {
    const preamble = `cacheroach() { node ${JSON.stringify(CLI_BIN)} "$@"; }\nset -o pipefail\n`;
    try {
      const { stdout, stderr } = await run("bash", ["-c", `${preamble}${script}`], {
        cwd: s.work,
        env: {
          ...process.env,
          HOME: s.home,
          TOKEN: srv.ts.superToken,
          API_TOKEN: "example-api-token",
          CACHEROACH_RETRY_SECONDS: "0",
          OCLIF_COLUMNS: "200",
        },
        maxBuffer: 16 << 20,
      });
      return { code: 0, output: `${stdout}${stderr}` };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === "number" ? e.code : -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
    }
  }
});

test("readmeExamples joins continued lines and reads only EXAMPLES", () => {
  const md = [
    "<!-- commands -->",
    "### `cacheroach file put`",
    "```",
    "USAGE",
    "  $ cacheroach file put REMOTE-DIR/ LOCAL...",
    "EXAMPLES",
    "  Upload",
    "",
    "    $ cacheroach file put /docs/ a \\",
    "      b",
    "",
    "FLAG DESCRIPTIONS",
    "    $ not an example",
    "```",
    "<!-- commandsstop -->",
  ].join("\n");
  assert.deepEqual(readmeExamples(md), [{ command: "file put", text: "cacheroach file put /docs/ a b" }]);
});
