/** `cacheroach principal create|ls|rm` against a real server. */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { errorText, inDir, jsonOut, runCli, spawnCli, useCliServer } from "./helpers.js";

interface PrincipalOut {
  id: string;
  label: string;
  version: number;
  emailDomain: string;
  claims: Record<string, unknown> | null;
}

describe("principal commands", () => {
  const srv = useCliServer();
  const cli = srv.cli;
  const principals = async () => jsonOut<PrincipalOut[]>(await cli("principal", "ls", "--json"));

  test("create writes <username>.cfg in the cwd: a working login, capped at the caller's expiry", async () => {
    const r = await inDir(srv.dir, () => cli("principal", "create", "alice"));
    assert.equal(r.code, 0, errorText(r));
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.match(r.stderr, /Created principal .* \("alice"\)/);
    // The test super session lasts 1 h: the default validity ends with it, as documented.
    assert.doesNotMatch(r.stderr, /would outlive/);
    assert.equal(
      jsonOut<{ capped: boolean }>(
        await cli("principal", "create", "alice-json", "-o", join(srv.dir, "alice-json.cfg"), "--json"),
      ).capped,
      true,
    );
    assert.match(r.stderr, /session delegate --for/);
    const cfgPath = join(srv.dir, "alice.cfg");
    assert.equal((await stat(cfgPath)).mode & 0o777, 0o600);
    const cfg = JSON.parse(await readFile(cfgPath, "utf8")) as {
      server: string;
      token: string;
      defaultTenant?: string;
      session: { name: string; principalId: string; scope: { onPrincipal: string } };
    };
    assert.equal(cfg.server, srv.ts.url);
    assert.equal(cfg.defaultTenant, undefined);
    assert.equal(cfg.session.name, "<self>");
    assert.equal(cfg.session.principalId, id);
    assert.equal(cfg.session.scope.onPrincipal, id);

    const who = await runCli(["auth", "whoami", "--json", "-c", cfgPath]);
    assert.equal(who.code, 0, errorText(who));
    const w = jsonOut<{
      principalId: string;
      principalLabel: string;
      capabilities: string[];
      expiresAt: string;
    }>(who);
    assert.equal(w.principalId, id);
    assert.equal(w.principalLabel, "alice");
    assert.deepEqual(w.capabilities, ["read", "write", "delegate", "pii", "fetch"]);
    assert.ok(Date.parse(w.expiresAt) <= Date.now() + 3_600_000, "not beyond the caller's session");

    const p = (await principals()).find((x) => x.id === id);
    assert.deepEqual(p?.claims, { name: "alice", source: "cli principal" });
    assert.equal(p?.label, "alice");
  });

  test("only a --validity the user chose gets a note when the caller's session ends sooner", async () => {
    const r = await cli(
      "principal",
      "create",
      "frank",
      "-o",
      join(srv.dir, "frank.cfg"),
      "--validity",
      "365d",
    );
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stderr, /Note: --validity 365d would outlive your own session; the login expires with it/);
  });

  test("no note for the default validity under the operator's year-long bootstrap session (subprocess)", async () => {
    const admin = join(srv.dir, "admin.cfg");
    const key = Buffer.from(srv.ts.signingKey).toString("base64");
    const boot = await spawnCli(["bootstrap", "--signing-key", key, "-c", admin, srv.ts.url]);
    assert.equal(boot.code, 0, boot.stderr);
    const r = await spawnCli(["principal", "create", "gina", "-c", admin], { cwd: srv.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Created principal .* \("gina"\)/);
    assert.doesNotMatch(r.stderr, /Note:|would outlive/);
    const cfg = JSON.parse(await readFile(join(srv.dir, "gina.cfg"), "utf8")) as {
      session: { expiresAt: string };
    };
    const adminCfg = JSON.parse(await readFile(admin, "utf8")) as { session: { expiresAt: string } };
    assert.ok(
      Date.parse(cfg.session.expiresAt) <= Date.parse(adminCfg.session.expiresAt),
      "not beyond the operator's",
    );
    assert.ok(Date.parse(cfg.session.expiresAt) > Date.now() + 364 * 86_400_000, "about a year");
  });

  test("an existing config file is never replaced: nothing is created (exit 5); --force replaces it", async () => {
    const out = join(srv.dir, "taken.cfg");
    await writeFile(out, "precious");
    const before = (await principals()).length;
    const r = await cli("principal", "create", "bob", "-o", out);
    assert.equal(r.code, 5);
    assert.match(errorText(r), /taken\.cfg already exists; it was not changed/);
    assert.match(errorText(r), /--force/);
    assert.equal(await readFile(out, "utf8"), "precious");
    assert.equal((await principals()).length, before, "no principal was created");

    const forced = await cli(
      "principal",
      "create",
      "bob",
      "-o",
      out,
      "--force",
      "--validity",
      "10m",
      "--json",
    );
    assert.equal(forced.code, 0, errorText(forced));
    const j = jsonOut<{ id: string; config: string; capped: boolean; sessionId: string }>(forced);
    assert.equal(j.config, out);
    assert.equal(j.capped, false);
    assert.equal(
      (JSON.parse(await readFile(out, "utf8")) as { session: { id: string } }).session.id,
      j.sessionId,
    );
  });

  test("--email-domain creates a domain principal and no config", async () => {
    const r = await inDir(srv.dir, () =>
      cli("principal", "create", "staff", "--email-domain", "Example.COM"),
    );
    assert.equal(r.code, 0, errorText(r));
    const id = r.stdout.trim();
    assert.match(r.stderr, /domain principal .* for everyone with a verified @example\.com email/);
    assert.match(r.stderr, /no config was written/);
    await assert.rejects(stat(join(srv.dir, "staff.cfg")), { code: "ENOENT" });
    const ls = await cli("principal", "ls");
    assert.match(ls.stdout, /^ID\s+Version\s+Label\s+Domain\n/);
    assert.match(ls.stdout, new RegExp(`${id}\\s+1\\s+staff\\s+example\\.com`));
    const dup = await cli("principal", "create", "staff2", "--email-domain", "example.com");
    assert.equal(dup.code, 5);
    assert.match(errorText(dup), /already has that email or email domain/);
  });

  test("bad input is refused before anything is created", async () => {
    const before = (await principals()).length;
    const cases: [string[], number, RegExp][] = [
      [["principal", "create", "x", "--email-domain", "not a domain"], 2, /is not a domain name/],
      [
        ["principal", "create", "x", "--email-domain", "a.com", "-o", join(srv.dir, "x.cfg")],
        2,
        /cannot also be provided|--out/,
      ],
      [
        ["principal", "create", "x", "--validity", "forever", "-o", join(srv.dir, "x.cfg")],
        2,
        /invalid duration/,
      ],
      [["principal", "create", "../evil"], 2, /cannot name a config file after/],
      [
        ["principal", "create", "x", "-o", join(srv.dir, "no", "such", "dir", "x.cfg")],
        2,
        /directory of .* does not exist/,
      ],
      [["principal", "create", "x", "-o", srv.dir], 2, /is not a regular file/],
    ];
    for (const [argv, code, re] of cases) {
      const r = await cli(...argv);
      assert.equal(r.code, code, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    assert.equal((await principals()).length, before);
  });

  test("only super sessions manage principals (exit 3)", async () => {
    const cfg = join(srv.dir, "carol.cfg");
    assert.equal((await cli("principal", "create", "carol", "-o", cfg)).code, 0);
    const r = await runCli(["principal", "create", "mallory", "-o", join(srv.dir, "m.cfg"), "-c", cfg]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /`cacheroach principal create` needs a super session/);
    assert.doesNotMatch(errorText(r), /Principals\/Ensure/, "the command, not the RPC");
    assert.match(errorText(r), /bootstrap/);
    await assert.rejects(stat(join(srv.dir, "m.cfg")), { code: "ENOENT" });
    assert.equal((await runCli(["principal", "ls", "-c", cfg])).code, 3);
  });

  test("rm as a session that is not super: refused (exit 3) before --yes is asked for", async () => {
    const cfg = join(srv.dir, "hank.cfg");
    const hank = (await cli("principal", "create", "hank", "-o", cfg)).stdout.trim();
    for (const argv of [
      ["principal", "rm", "hank"],
      ["principal", "rm", hank],
      ["principal", "rm", "nobody"],
    ]) {
      const r = await spawnCli([...argv, "-c", cfg], { env: { OCLIF_COLUMNS: "500" } });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /permission denied: `cacheroach principal rm` needs a super session/);
      assert.doesNotMatch(r.stderr, /--yes/);
    }
    assert.ok(
      (await principals()).some((p) => p.id === hank),
      "still there",
    );
  });

  test("rm: needs --yes, checks the version, removes the principal and its logins", async () => {
    const cfg = join(srv.dir, "dave.cfg");
    const id = (await cli("principal", "create", "dave", "-o", cfg)).stdout.trim();
    const noYes = await cli("principal", "rm", id);
    assert.equal(noYes.code, 2);
    assert.match(errorText(noYes), /--yes/);
    const stale = await cli("principal", "rm", id, "--yes", "--version", "9");
    assert.equal(stale.code, 5);
    assert.match(errorText(stale), /not at version 9/);
    assert.equal((await runCli(["auth", "whoami", "-c", cfg])).code, 0, "still works");

    const r = await cli("principal", "rm", id, "--yes");
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, new RegExp(`Deleted principal ${id} \\("dave"\\) at version 1`));
    assert.equal(
      (await principals()).some((p) => p.id === id),
      false,
    );
    // Its login dies with it — within the server's session cache window (5 s by default; unlike
    // Tokens.Invalidate, deleting a principal does not evict the cache of the same instance).
    let code = 0;
    for (const t0 = Date.now(); Date.now() - t0 < 10_000; await new Promise((res) => setTimeout(res, 250))) {
      code = (await runCli(["auth", "whoami", "-c", cfg])).code;
      if (code === 3) break;
    }
    assert.equal(code, 3, "its login died with it");

    const again = await cli("principal", "rm", id, "--yes");
    assert.equal(again.code, 4);
    assert.match(errorText(again), /does not exist/);
    assert.equal((await cli("principal", "rm", "bogus", "--yes")).code, 4, "no principal is named so");
  });
});
