/**
 * Tenants and principals by name wherever an ID is taken, from the user's side (bin/run.js in a
 * child process): a label or name picks the one match (exactly, else ignoring case); none is
 * exit 4, several are exit 2 naming their IDs; IDs keep working.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { spawnCli, useCliServer } from "./helpers.js";

const srv = useCliServer();
/** Error messages on one line each (oclif wraps them at 80 columns otherwise). */
const env = { OCLIF_COLUMNS: "500" };

async function cr(...argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await spawnCli(["-c", srv.config, ...argv], { cwd: srv.dir, env });
  return { code: r.code, out: r.stdout.toString(), err: r.stderr };
}

test("tenants and principals by name; unknown names exit 4, ambiguous ones exit 2", {
  timeout: 120_000,
}, async () => {
  const team = (await cr("tenant", "create", "Team files")).out.trim();
  const dup1 = (await cr("tenant", "create", "Dup")).out.trim();
  const dup2 = (await cr("tenant", "create", "Dup", "--allow-duplicate")).out.trim();
  assert.match(team, /^[0-9a-f-]{36}$/);
  await writeFile(join(srv.dir, "hello.txt"), "hello\n");

  // -t by label (file commands), exact or ignoring case; the ID keeps working.
  const put = await cr("file", "put", "-t", "Team files", "/notes/", join(srv.dir, "hello.txt"));
  assert.equal(put.code, 0, put.err);
  const ls = await cr("file", "ls", "-R", "-t", "team FILES");
  assert.equal(ls.code, 0, ls.err);
  assert.equal(ls.out, "/notes/hello.txt\n");
  assert.equal((await cr("file", "ls", "-R", "-t", team)).out, "/notes/hello.txt\n");

  const unknown = await cr("file", "ls", "-t", "Nope");
  assert.equal(unknown.code, 4, unknown.err);
  assert.match(unknown.err, /-t\/--tenant: no tenant named "Nope" is visible to this session/);
  assert.match(unknown.err, /cacheroach tenant ls/);
  const ambiguous = await cr("tenant", "default", "Dup");
  assert.equal(ambiguous.code, 2, ambiguous.err);
  assert.match(ambiguous.err, /"Dup" is ambiguous: 2 tenants are called that/);
  assert.ok(ambiguous.err.includes(dup1) && ambiguous.err.includes(dup2), ambiguous.err);
  assert.match(ambiguous.err, /pass the ID of the one you mean/);

  // Principals by name: --for alice, session ls --for, principal rm.
  const alice = (await cr("principal", "create", "alice", "-o", join(srv.dir, "alice.cfg"))).out.trim();
  assert.match(alice, /^[0-9a-f-]{36}$/);
  const grant = await cr(
    "session",
    "delegate",
    "--for",
    "alice",
    "--id",
    "Team files",
    "--capabilities",
    "read,write",
    "--json",
  );
  assert.equal(grant.code, 0, grant.err);
  const issued = JSON.parse(grant.out) as { principalId: string; scope: { tenantId: string } };
  assert.equal(issued.principalId, alice);
  assert.equal(issued.scope.tenantId, team);
  const hers = await cr("session", "ls", "--for", "Alice", "--json");
  assert.equal(hers.code, 0, hers.err);
  assert.equal((JSON.parse(hers.out) as unknown[]).length, 2, "her login and her grant");

  // Alice (not super) works in the tenant by its label, and may name herself, but no one else.
  const asAlice = (...argv: string[]) =>
    spawnCli(["-c", join(srv.dir, "alice.cfg"), ...argv], { cwd: srv.dir, env }).then((r) => ({
      code: r.code,
      out: r.stdout.toString(),
      err: r.stderr,
    }));
  assert.equal((await asAlice("file", "ls", "-R", "-t", "Team files")).out, "/notes/hello.txt\n");
  const self = await asAlice("session", "ls", "--for", "alice");
  assert.equal(self.code, 0, self.err);
  const other = await asAlice("session", "delegate", "--for", "root", "--id", "Team files");
  assert.equal(other.code, 3, other.err);
  assert.match(
    other.err,
    /--for: "root" is not an ID, and looking principals up by name needs a super session/,
  );

  // Her refusal names the command she ran, not the RPC behind it.
  const refused = await asAlice("tenant", "rm", "Team files", "--yes");
  assert.equal(refused.code, 3, refused.err);
  assert.match(refused.err, /permission denied: `cacheroach tenant rm` needs a super session/);
  assert.doesNotMatch(refused.err, /Tenants\/Ensure/);

  const vhost = await cr("vhost", "create", "Team files", "team.example.com");
  assert.equal(vhost.code, 0, vhost.err);
  assert.match(vhost.out, new RegExp(`team\\.example\\.com → tenant ${team}`));

  const rmAlice = await cr("principal", "rm", "alice", "--yes");
  assert.equal(rmAlice.code, 0, rmAlice.err);
  assert.equal((await cr("principal", "rm", "alice", "--yes")).code, 4, "gone");

  const rmTeam = await cr("tenant", "rm", "Team files", "--yes");
  assert.equal(rmTeam.code, 0, rmTeam.err);
  assert.ok(rmTeam.out.includes(team), rmTeam.out);
  assert.equal((await cr("tenant", "rm", "Team files", "--yes")).code, 4, "gone");
  assert.equal((await cr("tenant", "rm", dup1, "--yes")).code, 0, "IDs keep working");
});

test("every tenant or principal argument takes a name or an ID", { timeout: 120_000 }, async () => {
  const tenant = (await cr("tenant", "create", "Named args")).out.trim();
  const twin1 = (await cr("tenant", "create", "Twin")).out.trim();
  const twin2 = (await cr("tenant", "create", "Twin", "--allow-duplicate")).out.trim();
  const carol = (await cr("principal", "create", "carol", "-o", join(srv.dir, "carol.cfg"))).out.trim();

  // The help calls them by what they are, not "ID".
  for (const [cmd, arg] of [
    ["tenant set", "TENANT"],
    ["tenant default", "TENANT"],
    ["tenant rm", "TENANT"],
    ["principal rm", "PRINCIPAL"],
    ["vhost create", "TENANT"],
    ["vhost rm", "TENANT"],
  ] as const) {
    const help = await cr(...cmd.split(" "), "--help");
    assert.match(help.out, new RegExp(`^\\s+${arg}\\s+The (tenant|principal).*name.* or ID`, "m"), cmd);
    assert.doesNotMatch(help.out, /^\s+ID\s/m, cmd);
  }

  // tenant set by label (exactly or ignoring case), by ID; unknown exit 4, ambiguous exit 2.
  const set = await cr("tenant", "set", "named ARGS", "--quota", "1GiB", "--json");
  assert.equal(set.code, 0, set.err);
  assert.equal((JSON.parse(set.out) as { id: string }).id, tenant);
  assert.match((await cr("tenant", "set", tenant)).out, /quota:\s+1 GiB/);
  const unknown = await cr("tenant", "set", "No such tenant", "--quota", "1GiB");
  assert.equal(unknown.code, 4, unknown.err);
  assert.match(unknown.err, /tenant: no tenant named "No such tenant" is visible to this session/);
  const ambiguous = await cr("tenant", "set", "twin", "--quota", "1GiB");
  assert.equal(ambiguous.code, 2, ambiguous.err);
  assert.match(ambiguous.err, /"twin" is ambiguous: 2 tenants are called that/);
  assert.ok(ambiguous.err.includes(twin1) && ambiguous.err.includes(twin2), ambiguous.err);
  for (const id of [twin1, twin2])
    assert.doesNotMatch((await cr("tenant", "set", id)).out, /1 GiB/, "unchanged");
  // A bad value is still refused before any name is looked up.
  const bad = await cr("tenant", "set", "No such tenant", "--quota", "lots");
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /--quota/);

  // tenant default and vhost create/rm by label; principal rm by name.
  assert.equal((await cr("tenant", "default", "Named args")).code, 0);
  assert.equal((await cr("vhost", "create", "Named args", "named.example.com")).code, 0);
  const vrm = await cr("vhost", "rm", "NAMED ARGS", "named.example.com");
  assert.equal(vrm.code, 0, vrm.err);
  assert.match(vrm.out, new RegExp(`Removed named\\.example\\.com → tenant ${tenant}`));
  const prm = await cr("principal", "rm", "Carol", "--yes");
  assert.equal(prm.code, 0, prm.err);
  assert.ok(prm.out.includes(carol), prm.out);
  const gone = await cr("principal", "rm", "carol", "--yes");
  assert.equal(gone.code, 4, gone.err);
  assert.match(gone.err, /principal: no principal named "carol"/);
});

test("create refuses a tenant label or principal name in use (exit 5) unless --allow-duplicate", {
  timeout: 120_000,
}, async () => {
  const tenants = async () =>
    (JSON.parse((await cr("tenant", "ls", "--json")).out) as { label: string }[]).length;
  const principals = async () =>
    (JSON.parse((await cr("principal", "ls", "--json")).out) as { label: string }[]).length;
  const first = (await cr("tenant", "create", "Only one")).out.trim();
  const before = await tenants();
  for (const label of ["Only one", "ONLY ONE", "  only one  "]) {
    const again = await cr("tenant", "create", label);
    assert.equal(again.code, 5, again.err);
    assert.match(
      again.err,
      new RegExp(`a tenant labelled "${label.trim()}" already exists \\(ID ${first}\\); nothing was created`),
    );
    assert.match(again.err, /--allow-duplicate/);
    assert.equal(again.out, "");
  }
  assert.equal(await tenants(), before, "nothing was created");
  const allowed = await cr("tenant", "create", "Only one", "--allow-duplicate");
  assert.equal(allowed.code, 0, allowed.err);
  assert.equal(await tenants(), before + 1);

  const dave = await cr("principal", "create", "dave", "-o", join(srv.dir, "dave.cfg"));
  assert.equal(dave.code, 0, dave.err);
  const davePrincipals = await principals();
  const again = await cr("principal", "create", "Dave", "-o", join(srv.dir, "dave2.cfg"));
  assert.equal(again.code, 5, again.err);
  assert.match(
    again.err,
    new RegExp(`a principal named "Dave" already exists \\(ID ${dave.out.trim()}\\); nothing was created`),
  );
  assert.match(again.err, /cacheroach principal create Dave -o .*dave2\.cfg --allow-duplicate/);
  await assert.rejects(readFile(join(srv.dir, "dave2.cfg")), { code: "ENOENT" });
  // The bootstrap's "root" is taken too, and so is a domain principal's name.
  assert.equal((await cr("principal", "create", "root", "-o", join(srv.dir, "root.cfg"))).code, 5);
  assert.equal((await cr("principal", "create", "dave", "--email-domain", "dave.example")).code, 5);
  assert.equal(await principals(), davePrincipals, "nothing was created");
  const allowedP = await cr(
    "principal",
    "create",
    "dave",
    "-o",
    join(srv.dir, "dave2.cfg"),
    "--allow-duplicate",
  );
  assert.equal(allowedP.code, 0, allowedP.err);
  assert.equal(await principals(), davePrincipals + 1);
});
