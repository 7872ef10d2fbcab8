/** `cacheroach vhost create|ls|rm` against a real server, checked with plain HTTP requests. */
import assert from "node:assert/strict";
import { request } from "node:http";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Uploads } from "@cacheroach/proto";
import { errorText, jsonOut, runCli, SCRATCHPAD, spawnCli, useCliServer } from "./helpers.js";

/** GET / with a Host header and the super token; resolves with status and body. */
function getWithHost(
  url: string,
  host: string,
  token: string,
  path = "/hello.txt",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { host, authorization: `Bearer ${token}` } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("vhost commands", () => {
  let tenant: string;
  const srv = useCliServer({
    server: { vhostRefreshMs: 1 },
    setup: async () => {
      tenant = (await srv.cli("tenant", "create", "Site")).stdout.trim();
      await srv.ts.client(Uploads, srv.ts.superToken).begin({
        tenantId: tenant,
        path: "/hello.txt",
        committed: { case: "contents", value: Buffer.from("hello from the site tenant") },
      });
    },
  });
  const cli = srv.cli;

  test("ls shows the server's default mapping", async () => {
    const r = await cli("vhost", "ls");
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /^Host\s+Tenant ID\n/);
    assert.match(r.stdout, new RegExp(`^\\*\\s+${SCRATCHPAD}$`, "m"));
  });

  test("create maps a host to a tenant, and HTTP for that host serves it", async () => {
    const r = await cli("vhost", "create", tenant, "Files.Example.COM");
    assert.equal(r.code, 0, errorText(r));
    assert.equal(r.stdout, `files.example.com → tenant ${tenant}\n`);
    assert.deepEqual(jsonOut<{ host: string; tenantId: string }[]>(await cli("vhost", "ls", "--json")), [
      { host: "*", tenantId: SCRATCHPAD },
      { host: "files.example.com", tenantId: tenant },
    ]);
    const res = await getWithHost(srv.ts.url, "files.example.com:8080", srv.ts.superToken);
    assert.equal(res.status, 200);
    assert.equal(res.body, "hello from the site tenant");
    assert.equal(
      (await getWithHost(srv.ts.url, "other.example.com", srv.ts.superToken)).status,
      404,
      "* → scratchpad",
    );
  });

  test("mapping a host again replaces the old mapping and says so", async () => {
    const r = await cli("vhost", "create", "--json", SCRATCHPAD, "files.example.com");
    assert.equal(r.code, 0, errorText(r));
    assert.deepEqual(jsonOut(r), { host: "files.example.com", tenantId: SCRATCHPAD, replaced: tenant });
    const back = await cli("vhost", "create", tenant, "files.example.com");
    assert.match(back.stdout, new RegExp(`\\(was tenant ${SCRATCHPAD}\\)`));
  });

  test("rm needs host and tenant to match; otherwise nothing changes (exit 4)", async () => {
    const wrong = await cli("vhost", "rm", SCRATCHPAD, "files.example.com");
    assert.equal(wrong.code, 4);
    assert.match(
      errorText(wrong),
      new RegExp(`mapped to tenant ${tenant}, not ${SCRATCHPAD}; nothing was removed`),
    );
    assert.match(errorText(wrong), new RegExp(`cacheroach vhost rm ${tenant} files.example.com`));
    const none = await cli("vhost", "rm", tenant, "nothing.example.com");
    assert.equal(none.code, 4);
    assert.match(errorText(none), /not mapped to any tenant/);
    assert.match((await cli("vhost", "ls")).stdout, /files\.example\.com/);

    const r = await cli("vhost", "rm", tenant, "files.example.com");
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Removed files\.example\.com → tenant/);
    assert.doesNotMatch((await cli("vhost", "ls")).stdout, /files\.example\.com/);
    assert.equal((await getWithHost(srv.ts.url, "files.example.com", srv.ts.superToken)).status, 404);
  });

  test("rm accepts --yes and -y (and does not need them) (subprocess)", async () => {
    for (const yes of ["--yes", "-y"]) {
      assert.equal((await cli("vhost", "create", "Site", "yes.example.com")).code, 0);
      const r = await spawnCli(["vhost", "rm", "Site", "yes.example.com", yes, "-c", srv.config]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.toString(), new RegExp(`Removed yes\\.example\\.com → tenant ${tenant}`));
    }
    assert.doesNotMatch((await cli("vhost", "ls")).stdout, /yes\.example\.com/);
  });

  test("bad input is a usage error; unknown tenants are exit 4", async () => {
    const cases: [string[], number, RegExp][] = [
      [
        ["vhost", "create", tenant, "http://files.example.com:8080/"],
        2,
        /without scheme or port: files\.example\.com/,
      ],
      [["vhost", "create", tenant, "bad_host!"], 2, /is not a host name/],
      [["vhost", "create", "nope", "a.example.com"], 4, /no tenant named "nope"/],
      [["vhost", "create", tenant], 2, /Missing 1 required arg/],
      [["vhost", "create", "11111111-2222-3333-4444-555555555555", "a.example.com"], 4, /does not exist/],
    ];
    for (const [argv, code, re] of cases) {
      const r = await cli(...argv);
      assert.equal(r.code, code, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), re, argv.join(" "));
    }
    assert.doesNotMatch((await cli("vhost", "ls")).stdout, /a\.example\.com/);
  });

  test("only super sessions manage vhosts (exit 3)", async () => {
    const user = join(srv.dir, "user.cfg");
    assert.equal((await cli("principal", "create", "user", "-o", user)).code, 0);
    for (const argv of [
      ["vhost", "ls"],
      ["vhost", "create", tenant, "x.example.com"],
      ["vhost", "rm", tenant, "*"],
    ]) {
      const r = await runCli([...argv, "-c", user]);
      assert.equal(r.code, 3, argv.join(" "));
      assert.match(errorText(r), /needs a super session/);
    }
  });
});
