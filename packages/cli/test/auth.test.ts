/** `cacheroach auth set|whoami|logout` against a real server. */
import assert from "node:assert/strict";
import { copyFile, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Tokens } from "@cacheroach/proto";
import { errorText, jsonOut, runCli, SCRATCHPAD, useCliServer, writeCliConfig } from "./helpers.js";

interface Cfg {
  server: string;
  token: string;
  defaultTenant?: string;
  session?: { id: string; name?: string };
}

describe("auth", () => {
  /** A login token (on_principal(root), all capabilities) and a tenant-scoped read grant token. */
  let loginJwt: string;
  let loginId: string;
  let grantJwt: string;
  const readCfg = async (p: string) => JSON.parse(await readFile(p, "utf8")) as Cfg;
  const srv = useCliServer({
    setup: async () => {
      const tokens = srv.ts.client(Tokens, srv.ts.superToken);
      const expiresAt = timestampFromDate(new Date(Date.now() + 30 * 60_000));
      const login = await tokens.issue({
        template: {
          principalId: srv.ts.rootPrincipalId,
          capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
          scope: { kind: { case: "onPrincipal", value: srv.ts.rootPrincipalId } },
          expiresAt,
          name: "laptop",
          note: "auth test",
        },
      });
      loginJwt = login.token!.jwt;
      loginId = login.issued!.id;
      const grant = await tokens.issue({
        template: {
          principalId: srv.ts.rootPrincipalId,
          capabilities: { read: true },
          scope: { kind: { case: "onLocation", value: { tenantId: SCRATCHPAD, path: "/*" } } },
          expiresAt,
        },
      });
      grantJwt = grant.token!.jwt;
    },
  });

  test("set with the token in the URL validates it and writes a 0600 config", async () => {
    const cfgPath = join(srv.dir, "a", "config");
    const url = srv.ts.url.replace("://", `://${loginJwt}@`) + "/";
    const r = await runCli(["auth", "set", "-c", cfgPath, url]);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, new RegExp(`Logged in to ${srv.ts.url} as principal ${srv.ts.rootPrincipalId}`));
    assert.match(
      r.stdout,
      new RegExp(`Session ${loginId} "laptop": read,write,delegate,pii,fetch on principal`),
    );
    assert.match(r.stderr, /tenant default/, "no default tenant: says how to pick one");
    assert.equal((await stat(cfgPath)).mode & 0o777, 0o600);
    const cfg = await readCfg(cfgPath);
    assert.equal(cfg.server, srv.ts.url);
    assert.equal(cfg.token, loginJwt);
    assert.equal(cfg.session?.id, loginId);
    assert.equal(cfg.defaultTenant, undefined);
    assert.ok(!r.stdout.includes(loginJwt), "the token is not echoed");
  });

  test("set with --server/--token; a tenant-scoped token sets the default tenant", async () => {
    const cfgPath = join(srv.dir, "grant-config");
    const r = await runCli([
      "auth",
      "set",
      "--json",
      "-c",
      cfgPath,
      "--server",
      srv.ts.url,
      "--token",
      grantJwt,
    ]);
    assert.equal(r.code, 0, errorText(r));
    const out = jsonOut<{ defaultTenant: string; session: { scope: { kind: string; path: string } } }>(r);
    assert.equal(out.defaultTenant, SCRATCHPAD);
    assert.deepEqual(out.session.scope, { kind: "tenant", tenantId: SCRATCHPAD, path: "/*" });
    assert.equal((await readCfg(cfgPath)).defaultTenant, SCRATCHPAD);
    // And it works for file commands right away.
    const ls = await runCli(["file", "ls", "-c", cfgPath]);
    assert.equal(ls.code, 0, errorText(ls));
  });

  test("set keeps the previous default tenant for the same server", async () => {
    const cfgPath = join(srv.dir, "keep-config");
    await writeCliConfig(cfgPath, srv.ts.url, "old");
    const r = await runCli(["auth", "set", "-c", cfgPath, "--server", `${srv.ts.url}/`, "--token", loginJwt]);
    assert.equal(r.code, 0, errorText(r));
    assert.equal((await readCfg(cfgPath)).defaultTenant, SCRATCHPAD);
  });

  test("a rejected token changes nothing (exit 3)", async () => {
    const cfgPath = join(srv.dir, "unchanged-config");
    await writeCliConfig(cfgPath, srv.ts.url, srv.ts.superToken);
    const before = await readFile(cfgPath, "utf8");
    const r = await runCli(["auth", "set", "-c", cfgPath, srv.ts.url.replace("://", "://not.a.jwt@")]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /rejected this token/);
    assert.match(errorText(r), /the config was not changed/);
    assert.equal(await readFile(cfgPath, "utf8"), before);
    const tampered = `${loginJwt.slice(0, -4)}AAAA`;
    const t = await runCli(["auth", "set", "-c", cfgPath, "--server", srv.ts.url, "--token", tampered]);
    assert.equal(t.code, 3);
    assert.equal(await readFile(cfgPath, "utf8"), before);
  });

  test("bad input is a usage error naming the fix", async () => {
    const cfgPath = join(srv.dir, "never-written");
    const cases: [string[], RegExp][] = [
      [["auth", "set", srv.ts.url], /no token given/],
      [["auth", "set"], /no server given/],
      [["auth", "set", "--token", "x"], /no server given/],
      [["auth", "set", "--server", srv.ts.url, srv.ts.url.replace("://", "://t@")], /not both/],
      [["auth", "set", `http://a:b@127.0.0.1:9/`], /without a password/],
    ];
    for (const [argv, re] of cases) {
      const r = await runCli([...argv, "-c", cfgPath], { CACHEROACH_TOKEN: undefined });
      assert.equal(r.code, 2, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    // A URL that reaches no cacheroach server (another scheme, none): exit 7, as in a config.
    const badUrls: [string[], RegExp][] = [
      [["auth", "set", "ftp://tok@host/"], /does not start with http:\/\/ or https:\/\//],
      [["auth", "set", "not a url"], /is not a URL/],
    ];
    for (const [argv, re] of badUrls) {
      const r = await runCli([...argv, "-c", cfgPath], { CACHEROACH_TOKEN: undefined });
      assert.equal(r.code, 7, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    await assert.rejects(stat(cfgPath), { code: "ENOENT" });
  });

  test("whoami shows principal, session, name, expiry, scope and capabilities", async () => {
    const cfgPath = join(srv.dir, "whoami-config");
    await writeCliConfig(cfgPath, srv.ts.url, loginJwt);
    const r = await runCli(["auth", "whoami", "-c", cfgPath]);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, new RegExp(`Principal:\\s+${srv.ts.rootPrincipalId} \\(root\\)`));
    assert.match(r.stdout, new RegExp(`Session:\\s+${loginId}`));
    assert.match(r.stdout, /Name:\s+laptop/);
    assert.match(r.stdout, /Expires:\s+\d{4}-\d\d-\d\dT[\d:]+Z \(in (29|30)m\)/);
    assert.match(r.stdout, new RegExp(`Scope:\\s+principal ${srv.ts.rootPrincipalId}`));
    assert.match(r.stdout, /Capabilities:\s+read,write,delegate,pii,fetch/);
    assert.match(r.stdout, /Note:\s+auth test/);
    assert.match(r.stdout, new RegExp(`Default tenant:\\s+${SCRATCHPAD}`));

    const sup = join(srv.dir, "super-config");
    await writeCliConfig(sup, srv.ts.url, srv.ts.superToken, null);
    const j = jsonOut<{ scope: { kind: string }; capabilities: string[]; principalLabel: string }>(
      await runCli(["auth", "whoami", "--json", "-c", sup]),
    );
    assert.equal(j.scope.kind, "super");
    assert.equal(j.principalLabel, "root");

    const grant = join(srv.dir, "grant-whoami");
    await writeCliConfig(grant, srv.ts.url, grantJwt, null);
    const g = await runCli(["auth", "whoami", "-c", grant]);
    assert.equal(g.code, 0, errorText(g));
    assert.match(g.stdout, new RegExp(`Scope:\\s+tenant ${SCRATCHPAD} /\\*`));
    assert.match(g.stdout, /Capabilities:\s+read\n/);
  });

  test("whoami with a bad token is exit 3", async () => {
    const cfgPath = join(srv.dir, "bad-whoami");
    await writeCliConfig(cfgPath, srv.ts.url, "x.y.z", null);
    const r = await runCli(["auth", "whoami", "-c", cfgPath]);
    assert.equal(r.code, 3);
    assert.match(errorText(r), /not authenticated/);
  });

  test("logout revokes the session everywhere and removes the token", async () => {
    const tokens = srv.ts.client(Tokens, srv.ts.superToken);
    const s = await tokens.issue({
      template: {
        principalId: srv.ts.rootPrincipalId,
        capabilities: { read: true, delegate: true },
        scope: { kind: { case: "onPrincipal", value: srv.ts.rootPrincipalId } },
        expiresAt: timestampFromDate(new Date(Date.now() + 600_000)),
      },
    });
    const cfgPath = join(srv.dir, "logout-config");
    const copy = join(srv.dir, "logout-copy");
    await writeCliConfig(cfgPath, srv.ts.url, s.token!.jwt);
    await copyFile(cfgPath, copy);
    const r = await runCli(["auth", "logout", "-c", cfgPath]);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Revoked the session and removed its token/);
    const cfg = await readCfg(cfgPath);
    assert.equal(cfg.token, "");
    assert.equal(cfg.server, srv.ts.url);
    assert.equal(cfg.defaultTenant, SCRATCHPAD);
    assert.equal((await stat(cfgPath)).mode & 0o777, 0o600);

    const again = await runCli(["auth", "whoami", "-c", cfgPath]);
    assert.equal(again.code, 3);
    assert.match(errorText(again), /not logged in: the config .* has no token/);
    assert.match(errorText(again), /auth set/);
    const stolen = await runCli(["auth", "whoami", "-c", copy]);
    assert.equal(stolen.code, 3, "a copy of the token no longer works");

    // Logging out a config whose token the server already rejects: warn, still clear it.
    const warn = await runCli(["auth", "logout", "-c", copy]);
    assert.equal(warn.code, 0, errorText(warn));
    assert.match(warn.stderr, /warning: revoking the session: not authenticated/);
    assert.equal((await readCfg(copy)).token, "");
    const twice = await runCli(["auth", "logout", "-c", copy]);
    assert.equal(twice.code, 0);
    assert.match(twice.stdout, /Already logged out/);
  });
});
