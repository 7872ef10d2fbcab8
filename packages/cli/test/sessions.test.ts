/**
 * `cacheroach session delegate|ls|rm`, and the multi-user flow end to end: bootstrap → tenant
 * create → principal create → session delegate → the new user works in their tenant and is
 * refused elsewhere.
 */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { errorText, inDir, jsonOut, runCli, SCRATCHPAD, useCliServer, writeCliConfig } from "./helpers.js";

interface SessionOut {
  id: string;
  principalId: string;
  name: string;
  capabilities: string[];
  scope: { kind: string; tenantId?: string; path?: string; principalId?: string };
  expiresAt: string;
  current?: boolean;
}

describe("sessions and the multi-user flow", () => {
  let root: string;
  let teamA: string;
  let teamB: string;
  let alice: string;
  let aliceCfg: string;
  let grant: string;
  const asRoot = (...argv: string[]) => runCli([...argv, "-c", root]);
  const asAlice = (...argv: string[]) => runCli([...argv, "-c", aliceCfg]);
  const srv = useCliServer({
    setup: async () => {
      root = join(srv.dir, "root.cfg");
    },
  });

  test("bootstrap, two tenants, and alice with her own config", async () => {
    const boot = await runCli([
      "bootstrap",
      "--signing-key",
      Buffer.from(srv.ts.signingKey).toString("base64"),
      "-c",
      root,
      srv.ts.url,
    ]);
    assert.equal(boot.code, 0, errorText(boot));
    teamA = (await asRoot("tenant", "create", "Team A")).stdout.trim();
    teamB = (await asRoot("tenant", "create", "Team B")).stdout.trim();
    assert.match(teamA, /^[0-9a-f-]{36}$/);
    assert.match(teamB, /^[0-9a-f-]{36}$/);
    const created = await inDir(srv.dir, () => asRoot("principal", "create", "alice"));
    assert.equal(created.code, 0, errorText(created));
    alice = created.stdout.trim();
    aliceCfg = join(srv.dir, "alice.cfg");
    assert.equal((await stat(aliceCfg)).mode & 0o777, 0o600);
    // A fresh user may do nothing yet.
    const none = await asAlice("tenant", "ls");
    assert.equal(none.code, 0);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /no tenants are visible/);
  });

  test("session delegate --for alice --on tenant --id A --capabilities read,write", async () => {
    const r = await asRoot(
      "session",
      "delegate",
      "--for",
      alice,
      "--on",
      "tenant",
      "--id",
      teamA,
      "--capabilities",
      "read,write",
    );
    assert.equal(r.code, 0, errorText(r));
    grant = r.stdout.trim();
    assert.match(grant, /^[0-9a-f-]{36}$/);
    assert.match(
      r.stderr,
      new RegExp(`Issued session ${grant} to principal ${alice}: read,write on tenant ${teamA} /\\*`),
    );
    assert.doesNotMatch(r.stderr, /Note:/, "24h is within root's 365d session");
  });

  test("alice works in her tenant", async () => {
    const ls = await asAlice("tenant", "ls");
    assert.match(ls.stdout, new RegExp(`${teamA}\\s+1\\s+Team A`));
    assert.doesNotMatch(ls.stdout, new RegExp(teamB));
    assert.equal((await asAlice("tenant", "default", teamA)).code, 0);
    const local = join(srv.dir, "notes.txt");
    await writeFile(local, "alice's notes\n");
    const put = await asAlice("file", "put", "/docs/", local);
    assert.equal(put.code, 0, errorText(put));
    const out = join(srv.dir, "notes.copy");
    const get = await asAlice("file", "get", "/docs/notes.txt", "-o", out);
    assert.equal(get.code, 0, errorText(get));
    assert.equal(await readFile(out, "utf8"), "alice's notes\n");
    assert.equal((await asAlice("file", "ls", "-R")).stdout, "/docs/notes.txt\n");
    assert.equal(
      (await asRoot("file", "ls", "-R", "-t", teamA)).stdout,
      "/docs/notes.txt\n",
      "root sees it too",
    );
  });

  test("alice is refused in another tenant, naming the missing capability (exit 3)", async () => {
    const local = join(srv.dir, "notes.txt");
    const put = await asAlice("file", "put", "-t", teamB, "/docs/", local);
    assert.equal(put.code, 3);
    assert.match(
      errorText(put),
      new RegExp(`permission denied: this session lacks write on /docs/notes.txt in tenant ${teamB}`),
    );
    assert.match(errorText(put), /session delegate/);
    const get = await asAlice("file", "get", "-t", teamB, "/docs/notes.txt", "-o", join(srv.dir, "nope"));
    assert.equal(get.code, 3);
    assert.match(errorText(get), /lacks read/);
    const ls = await asAlice("file", "ls", "-t", teamB);
    assert.equal(ls.code, 3);
    assert.match(errorText(ls), /lacks read/);
    assert.equal((await asRoot("file", "ls", "-t", teamB)).stdout, "", "nothing was written to B");
  });

  test("alice cannot delete her tenant, nor delegate what she may not (exit 3)", async () => {
    const rm = await asAlice("tenant", "rm", teamA, "--yes");
    assert.equal(rm.code, 3);
    assert.match(errorText(rm), /`cacheroach tenant rm` needs a super session/);
    assert.match((await asRoot("tenant", "ls")).stdout, new RegExp(teamA), "still there");
    const del = await asAlice("session", "delegate", "--for", alice, "--id", teamA, "--capabilities", "read");
    assert.equal(del.code, 3);
    assert.match(errorText(del), /you may not delegate read on \/\* in tenant/);
    const create = await asAlice("tenant", "create", "Mine");
    assert.equal(create.code, 3);
  });

  test("session ls shows alice's login and her grant", async () => {
    const r = await asAlice("session", "ls");
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /^ID\s+Principal\s+Name\s+Capabilities\s+Scope\s+Expires\n/);
    assert.match(
      r.stdout,
      new RegExp(`${grant}\\s+${alice}\\s+read,write\\s+tenant ${teamA} /\\*\\s+\\d{4}-`),
    );
    assert.match(
      r.stdout,
      new RegExp(`\\* +${alice}\\s+<self>\\s+read,write,delegate,pii,fetch\\s+principal ${alice}`),
    );
    const j = jsonOut<SessionOut[]>(await asAlice("session", "ls", "--json"));
    assert.equal(j.length, 2);
    assert.deepEqual(j.find((s) => s.id === grant)?.scope, { kind: "tenant", tenantId: teamA, path: "/*" });
    assert.equal(j.find((s) => s.name === "<self>")?.current, true);
  });

  test("session rm revokes the grant: alice is refused at once", async () => {
    const r = await asRoot("session", "rm", grant);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, new RegExp(`${grant}\\s+revoked`));
    const put = await asAlice("file", "put", "/docs/", join(srv.dir, "notes.txt"));
    assert.equal(put.code, 3);
    assert.match(errorText(put), /lacks write/);
  });

  test("delegate defaults: yourself, the default tenant, /*, read, 24h; -o writes a working config", async () => {
    const out = join(srv.dir, "reader.cfg");
    const r = await asRoot("session", "delegate", "--json", "--name", "reader", "--note", "ci", "-o", out);
    assert.equal(r.code, 0, errorText(r));
    const s = jsonOut<SessionOut & { config: string; capped: boolean }>(r);
    assert.equal(s.scope.kind, "tenant");
    assert.equal(s.scope.tenantId, SCRATCHPAD, "bootstrap's default tenant");
    assert.equal(s.scope.path, "/*");
    assert.deepEqual(s.capabilities, ["read"]);
    assert.equal(s.name, "reader");
    assert.equal(s.config, out);
    assert.equal(s.capped, false);
    const left = Date.parse(s.expiresAt) - Date.now();
    assert.ok(left > 23.9 * 3_600_000 && left <= 24 * 3_600_000, `24h: ${left}`);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const cfg = JSON.parse(await readFile(out, "utf8")) as { server: string; defaultTenant: string };
    assert.equal(cfg.server, srv.ts.url);
    assert.equal(cfg.defaultTenant, SCRATCHPAD);
    assert.equal((await runCli(["file", "ls", "-c", out])).code, 0, "it may read");
    const put = await runCli(["file", "put", "-c", out, "/", join(srv.dir, "notes.txt")]);
    assert.equal(put.code, 3, "but not write");
    assert.match(errorText(put), /lacks write/);

    const dup = await asRoot("session", "delegate", "--name", "reader");
    assert.equal(dup.code, 5);
    assert.match(errorText(dup), /a session named "reader" already exists/);
    assert.match(errorText(dup), /choose another --name/);

    const taken = await asRoot("session", "delegate", "-o", out);
    assert.equal(taken.code, 5, "the --out file is not replaced");
  });

  test("a duration beyond the caller's own session is capped, and it says so", async () => {
    const short = join(srv.dir, "short.cfg");
    await writeCliConfig(short, srv.ts.url, srv.ts.superToken);
    const r = await runCli(["session", "delegate", "--duration", "30d", "--json", "-c", short]);
    assert.equal(r.code, 0, errorText(r));
    const s = jsonOut<SessionOut & { capped: boolean }>(r);
    assert.equal(s.capped, true);
    assert.ok(Date.parse(s.expiresAt) <= Date.now() + 3_600_000);
    const text = await runCli(["session", "delegate", "--duration", "30d", "-c", short]);
    assert.match(text.stderr, /--duration 30d would outlive your own session; it expires with it/);
  });

  test("--on principal and --on super", async () => {
    const p = await asRoot(
      "session",
      "delegate",
      "--json",
      "--for",
      alice,
      "--on",
      "principal",
      "--capabilities",
      "read,delegate",
    );
    assert.equal(p.code, 0, errorText(p));
    assert.deepEqual(jsonOut<SessionOut>(p).scope, { kind: "principal", principalId: alice });
    const s = await asRoot(
      "session",
      "delegate",
      "--json",
      "--on",
      "super",
      "--capabilities",
      "all",
      "--duration",
      "1h",
    );
    assert.equal(s.code, 0, errorText(s));
    assert.deepEqual(jsonOut<SessionOut>(s).scope, { kind: "super" });
    const bySomeone = await asAlice("session", "delegate", "--on", "super");
    assert.equal(bySomeone.code, 3);
    assert.match(errorText(bySomeone), /only a super session can issue a super session/);
  });

  test("bad input is refused before anything is issued", async () => {
    const before = jsonOut<SessionOut[]>(await asAlice("session", "ls", "--json")).length;
    const cases: [string[], number, RegExp][] = [
      [["--capabilities", "read,fly"], 2, /unknown capability "fly"/],
      [["--capabilities", ","], 2, /names no capability/],
      [["--on", "everything"], 2, /Expected --on=everything to be one of/],
      [["--on", "super", "--id", teamA], 2, /takes no --id/],
      [["--on", "principal", "--path", "/a/*"], 2, /--path applies to --on tenant only/],
      [["--path", "/a/*/b"], 2, /may contain "\*" only as a final/],
      [["--path", "docs"], 2, /must be absolute/],
      [["--id", "nope"], 4, /--id: no tenant named "nope"/],
      [["--for", "nope"], 4, /--for: no principal named "nope"/],
      [["--duration", "soon"], 2, /invalid duration/],
      [
        ["--id", "11111111-2222-3333-4444-555555555555"],
        4,
        /tenant 11111111-2222-3333-4444-555555555555 does not exist/,
      ],
      [
        ["--for", "11111111-2222-3333-4444-555555555555", "--id", teamA],
        4,
        /principal 11111111-2222-3333-4444-555555555555 .*does not exist/,
      ],
    ];
    for (const [argv, code, re] of cases) {
      const r = await asRoot(
        "session",
        "delegate",
        ...(argv.includes("--for") ? [] : ["--for", alice]),
        ...argv,
      );
      assert.equal(r.code, code, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    assert.equal(jsonOut<SessionOut[]>(await asAlice("session", "ls", "--json")).length, before);
    const noTenant = join(srv.dir, "no-tenant.cfg");
    await writeCliConfig(noTenant, srv.ts.url, srv.ts.superToken, null);
    const r = await runCli(["session", "delegate", "-c", noTenant]);
    assert.equal(r.code, 2);
    assert.match(errorText(r), /--id <tenant id> required/);
  });

  test("session rm: unknown and malformed IDs; several at once", async () => {
    const unknown = await asRoot("session", "rm", "11111111-2222-3333-4444-555555555555");
    assert.equal(unknown.code, 4);
    assert.match(errorText(unknown), /no such session/);
    const bad = await asRoot("session", "rm", "xyz");
    assert.equal(bad.code, 2);
    const a = (await asRoot("session", "delegate", "--for", alice, "--id", teamA)).stdout.trim();
    const b = (await asRoot("session", "delegate", "--for", alice, "--id", teamB)).stdout.trim();
    const r = await asRoot("session", "rm", a, "11111111-2222-3333-4444-555555555555", b);
    assert.equal(r.code, 4);
    assert.match(r.stdout, new RegExp(`${a}\\s+revoked`));
    assert.match(r.stdout, new RegExp(`${b}\\s+revoked`));
    assert.match(errorText(r), /1 of 3 sessions could not be revoked/);
    // Revoking your own session warns that the config no longer works.
    const own = await asAlice(
      "session",
      "rm",
      jsonOut<{ id: string }>(await asAlice("auth", "whoami", "--json")).id,
    );
    assert.equal(own.code, 0, errorText(own));
    assert.match(own.stderr, /was this config's own session/);
    assert.equal((await asAlice("auth", "whoami")).code, 3);
  });
  test("delegated authority: bounded by the grant it comes from, listed by issuer, revoked as a subtree", async () => {
    const made = await inDir(srv.dir, () => asRoot("principal", "create", "dave"));
    assert.equal(made.code, 0, errorText(made));
    const dave = made.stdout.trim();
    const daveCfg = join(srv.dir, "dave.cfg");
    const erin = (await inDir(srv.dir, () => asRoot("principal", "create", "erin"))).stdout.trim();
    const daveGrant = (
      await asRoot(
        "session",
        "delegate",
        "--for",
        dave,
        "--id",
        teamA,
        "--capabilities",
        "read,delegate",
        "--duration",
        "1h",
      )
    ).stdout.trim();
    // Dave asks for a day; his grant ends in an hour, so erin's does too, and the CLI says so.
    const d = await runCli([
      "session",
      "delegate",
      "--for",
      erin,
      "--id",
      teamA,
      "--capabilities",
      "read",
      "--duration",
      "24h",
      "--json",
      "-c",
      daveCfg,
    ]);
    assert.equal(d.code, 0, errorText(d));
    const erinGrant = jsonOut<SessionOut & { capped: boolean; authorityId: string; issuedBy: string }>(d);
    assert.equal(erinGrant.capped, true);
    assert.equal(erinGrant.authorityId, daveGrant);
    assert.ok(Date.parse(erinGrant.expiresAt) <= Date.now() + 3_600_000);
    const text = await runCli([
      "session",
      "delegate",
      "--for",
      erin,
      "--id",
      teamA,
      "--capabilities",
      "read",
      "--duration",
      "24h",
      "-c",
      daveCfg,
    ]);
    assert.match(
      text.stderr,
      new RegExp(`would outlive the grant you delegate from \\(session ${daveGrant}\\)`),
    );

    // The operator lists what was issued under dave, and erin's sessions.
    type Listed = SessionOut & { status: string; issuedBy: string };
    const under = jsonOut<Listed[]>(await asRoot("session", "ls", "--issued-by", dave, "--json"));
    assert.deepEqual(
      under.map((s) => s.status),
      ["active", "active"],
    );
    assert.ok(under.every((s) => s.principalId === erin));
    const table = await asRoot("session", "ls", "--for", erin);
    assert.match(table.stdout, /Status\s+Issued by/);
    assert.match(table.stdout, new RegExp(`${erinGrant.id}\\s+${erin}\\s.*active`));
    // Revoking dave's grant revokes what he issued from it.
    const rm = await asRoot("session", "rm", daveGrant);
    assert.equal(rm.code, 0, errorText(rm));
    assert.match(rm.stdout, new RegExp(`${daveGrant}\\s+revoked, with 2 issued under it`));
    const after = jsonOut<Listed[]>(await asRoot("session", "ls", "--issued-by", dave, "--all", "--json"));
    assert.deepEqual(
      after.map((s) => s.status),
      ["revoked", "revoked"],
    );
    assert.deepEqual(jsonOut<Listed[]>(await asRoot("session", "ls", "--issued-by", dave, "--json")), []);
    // Dave may list what he issued, but not another principal's tree, nor erin's sessions.
    assert.equal((await runCli(["session", "ls", "--issued-by", dave, "-c", daveCfg])).code, 0);
    const refused = await runCli(["session", "ls", "--issued-by", erin, "-c", daveCfg]);
    assert.equal(refused.code, 3);
    assert.match(errorText(refused), /super/);
    assert.equal((await runCli(["session", "ls", "--for", erin, "-c", daveCfg])).code, 3);
    assert.equal((await asRoot("session", "ls", "--for", "nope")).code, 4);
  });
});
