/** `cacheroach tenant create|ls|default|rm` against a real server. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Tenants } from "@cacheroach/proto";
import {
  CLI_BIN,
  errorText,
  jsonOut,
  runCli,
  SCRATCHPAD,
  spawnCli,
  useCliServer,
  writeCliConfig,
} from "./helpers.js";

/** util-linux script(1) gives the CLI a terminal, to exercise confirmation prompts. */
const HAS_SCRIPT = spawnSync("script", ["--version"]).status === 0;

/** Runs the CLI on a pseudo-terminal, answering its prompt with `answer`. */
function onTerminal(argv: string[], answer: string): Promise<{ code: number | null; output: string }> {
  const cmd = [process.execPath, CLI_BIN, ...argv].map((a) => `'${a}'`).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-qec", cmd, "/dev/null"]);
    let output = "";
    let answered = false;
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      if (!answered && output.includes('Type "yes"')) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

interface TenantOut {
  id: string;
  label: string;
  version: number;
  default: boolean;
}

describe("tenant commands", () => {
  const srv = useCliServer();
  const cli = srv.cli;
  const exists = async (id: string) =>
    srv.ts
      .client(Tenants, srv.ts.superToken)
      .get({ id })
      .then(
        () => true,
        () => false,
      );
  const defaultOf = async (p = srv.config) =>
    (JSON.parse(await readFile(p, "utf8")) as { defaultTenant?: string }).defaultTenant;

  test("create prints the new ID; ls shows ID, Version, Label", async () => {
    const r = await cli("tenant", "create", "Team A");
    assert.equal(r.code, 0, errorText(r));
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.ok(await exists(id));
    const ls = await cli("tenant", "ls");
    assert.equal(ls.code, 0, errorText(ls));
    assert.match(ls.stdout, /^ID\s+Version\s+Label\n/);
    assert.match(ls.stdout, new RegExp(`${id}\\s+1\\s+Team A`));
    assert.match(ls.stdout, new RegExp(`${SCRATCHPAD} \\*\\s+\\d+\\s+Default Scratchpad`), "default marked");
    const j = jsonOut<TenantOut[]>(await cli("tenant", "ls", "--json"));
    assert.deepEqual(
      j.find((t) => t.id === id),
      { id, label: "Team A", version: 1, default: false },
    );
  });

  test("create --default makes it the config's default; --json", async () => {
    const cfg = join(srv.dir, "cfg-default");
    await writeCliConfig(cfg, srv.ts.url, srv.ts.superToken, null);
    const r = await runCli(["tenant", "create", "--default", "--json", "Team B", "-c", cfg]);
    assert.equal(r.code, 0, errorText(r));
    const out = jsonOut<TenantOut>(r);
    assert.equal(out.label, "Team B");
    assert.equal(out.version, 1);
    assert.equal(out.default, true);
    assert.equal(await defaultOf(cfg), out.id);
  });

  test("create with a bad label is a usage error and creates nothing", async () => {
    const before = jsonOut<TenantOut[]>(await cli("tenant", "ls", "--json")).length;
    for (const label of ["   ", "x".repeat(257)]) {
      const r = await cli("tenant", "create", label);
      assert.equal(r.code, 2);
      assert.match(errorText(r), /label must be 1 to 256 characters/);
    }
    assert.equal((await cli("tenant", "create")).code, 2, "missing label");
    assert.equal(jsonOut<TenantOut[]>(await cli("tenant", "ls", "--json")).length, before);
  });

  test("default checks the tenant exists, then stores it", async () => {
    const id = (await cli("tenant", "create", "Team C")).stdout.trim();
    const r = await cli("tenant", "default", id);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Default tenant of .* is now .* \("Team C"\)/);
    assert.equal(await defaultOf(), id);
    // File commands now use it.
    const local = join(srv.dir, "c.txt");
    await writeFile(local, "c");
    assert.equal((await cli("file", "put", "/", local)).code, 0);
    assert.equal((await cli("file", "ls", "-t", id)).stdout, "/c.txt\n");

    const missing = await cli("tenant", "default", "11111111-2222-3333-4444-555555555555");
    assert.equal(missing.code, 4);
    assert.match(errorText(missing), /does not exist .*the default was not changed/);
    const bad = await cli("tenant", "default", "nope");
    assert.equal(bad.code, 4);
    assert.match(errorText(bad), /no tenant named "nope"/);
    assert.equal(await defaultOf(), id, "unchanged by the failures");
    await cli("tenant", "default", SCRATCHPAD);
  });

  test("rm needs --yes without a terminal, and changes nothing otherwise", async () => {
    const id = (await cli("tenant", "create", "Doomed")).stdout.trim();
    const r = await cli("tenant", "rm", id);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /refusing to delete tenant .* without confirmation/);
    assert.match(errorText(r), new RegExp(`cacheroach tenant rm ${id} --yes`));
    assert.ok(await exists(id));

    const stale = await cli("tenant", "rm", id, "--yes", "--version", "7");
    assert.equal(stale.code, 5);
    assert.match(errorText(stale), /is not at version 7 .*nothing was deleted/);
    assert.ok(await exists(id));

    const ok = await cli("tenant", "rm", id, "--yes", "--json");
    assert.equal(ok.code, 0, errorText(ok));
    assert.deepEqual(jsonOut(ok), { id, label: "Doomed", version: 1, deleted: true, wasDefault: false });
    assert.equal(await exists(id), false);

    const gone = await cli("tenant", "rm", id, "--yes");
    assert.equal(gone.code, 4);
    assert.match(errorText(gone), /does not exist/);
    assert.equal((await cli("tenant", "rm", "not-a-uuid", "--yes")).code, 4);
  });

  test("rm as a session that is not super: refused (exit 3) before --yes is asked for", async () => {
    const cfg = join(srv.dir, "ivy.cfg");
    assert.equal((await cli("principal", "create", "ivy", "-o", cfg)).code, 0);
    const id = (await cli("tenant", "create", "Not hers")).stdout.trim();
    for (const target of ["Not hers", id]) {
      const r = await spawnCli(["tenant", "rm", target, "-c", cfg], { env: { OCLIF_COLUMNS: "500" } });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /permission denied: `cacheroach tenant rm` needs a super session/);
      assert.doesNotMatch(r.stderr, /--yes/);
    }
    assert.ok(await exists(id));
  });

  test('rm on a terminal asks, and only "yes" deletes', { skip: !HAS_SCRIPT && "no script(1)" }, async () => {
    const id = (await cli("tenant", "create", "Asked")).stdout.trim();
    const no = await onTerminal(["tenant", "rm", id, "-c", srv.config], "no");
    assert.match(no.output, new RegExp(`About to delete tenant ${id} \\("Asked"\\) and ALL its files`));
    assert.match(no.output, /not confirmed; nothing was changed/);
    assert.equal(no.code, 1);
    assert.ok(await exists(id));
    const yes = await onTerminal(["tenant", "rm", id, "-c", srv.config], "yes");
    assert.equal(yes.code, 0, yes.output);
    assert.match(yes.output, /Deleted tenant/);
    assert.equal(await exists(id), false);
  });

  test("rm --version N and clearing the default tenant", async () => {
    const cfg = join(srv.dir, "cfg-rm-default");
    await writeCliConfig(cfg, srv.ts.url, srv.ts.superToken, null);
    const id = (await runCli(["tenant", "create", "--default", "Short-lived", "-c", cfg])).stdout.trim();
    const r = await runCli(["tenant", "rm", "-y", "--version", "1", id, "-c", cfg]);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Deleted tenant .* at version 1/);
    assert.match(r.stderr, /It was the default tenant/);
    assert.equal(await defaultOf(cfg), undefined);
  });
});
