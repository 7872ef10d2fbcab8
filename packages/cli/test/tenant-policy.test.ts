/** `cacheroach tenant set` and `tenant ls --wide` (quotas, limits, retention, usage) against a real server. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Principals, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import type { TenantWideJson } from "../src/lib/tenant-json.js";
import { errorText, jsonOut, runCli, useCliServer, writeCliConfig } from "./helpers.js";

const GiB = 1024 ** 3;
const DEFAULT_QUOTA = GiB;

describe("tenant set and tenant ls --wide", () => {
  const srv = useCliServer({ server: { defaultQuotaBytes: DEFAULT_QUOTA, maxOpenUploads: 100 } });
  const cli = srv.cli;
  const newTenant = async (label: string) =>
    (await srv.ts.client(Tenants, srv.ts.superToken).ensure({ tenant: { label } })).tenant!.id;
  const stored = async (id: string) => (await srv.ts.client(Tenants, srv.ts.superToken).get({ id })).tenant!;

  test("sets, shows and clears a tenant's policy", async () => {
    const t = await newTenant("policy");
    const r = await cli(
      "tenant",
      "set",
      t,
      "--quota",
      "10GiB",
      "--retain-versions",
      "5",
      "--retain",
      "30d",
      "--max-open-uploads",
      "7",
    );
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /quota: +10 GiB\n/);
    assert.match(r.stdout, /max open uploads: 7\n/);
    assert.match(r.stdout, /retain versions: +5\n/);
    assert.match(r.stdout, /retain: +30d\n/);
    assert.deepEqual((await stored(t)).policy, {
      $typeName: "cacheroach.v1.TenantPolicy",
      quotaBytes: 10n * BigInt(GiB),
      retainVersions: 5n,
      retainSeconds: 30n * 86400n,
      maxOpenUploads: 7n,
    });
    // Back to the server's default for one setting; the others stay.
    const d = jsonOut<TenantWideJson & { changed: boolean }>(
      await cli("tenant", "set", t, "--quota", "default", "--json"),
    );
    assert.equal(d.changed, true);
    assert.deepEqual(d.policy, {
      quotaBytes: null,
      maxOpenUploads: 7,
      retainVersions: 5,
      retainSeconds: 2592000,
    });
    assert.equal(d.effectivePolicy.quotaBytes, DEFAULT_QUOTA);
    // "none" is "default" too; "unlimited" is an explicit 0.
    await cli("tenant", "set", t, "--quota", "1MB");
    assert.equal((await stored(t)).policy?.quotaBytes, 1_000_000n);
    await cli("tenant", "set", t, "--quota", "none", "--retain", "default");
    assert.equal((await stored(t)).policy?.quotaBytes, undefined);
    assert.equal((await stored(t)).policy?.retainSeconds, undefined);
    await cli("tenant", "set", t, "--quota", "unlimited", "--retain", "0s");
    assert.equal((await stored(t)).policy?.quotaBytes, 0n);
    assert.equal((await stored(t)).policy?.retainSeconds, 0n);
    // Without flags it shows the policy in force and changes nothing.
    const v = (await stored(t)).version;
    const show = await cli("tenant", "set", t);
    assert.equal(show.code, 0, errorText(show));
    assert.match(show.stdout, /quota: +unlimited\n/);
    assert.match(show.stdout, /retain versions: +5\n/);
    assert.equal((await stored(t)).version, v);
  });

  test("bad values, unknown tenants and non-super sessions change nothing", async () => {
    const t = await newTenant("policy bad");
    await cli("tenant", "set", t, "--quota", "5GiB");
    const before = await stored(t);
    for (const [argv, pattern] of [
      [["--quota", "-5"], /--quota: invalid --quota "-5"; nothing was changed/],
      [["--quota", "10XB"], /--quota: invalid --quota "10XB"/],
      [["--max-open-uploads", "-1"], /--max-open-uploads: invalid number "-1"/],
      [["--retain-versions", "1.5"], /--retain-versions: invalid number "1\.5"/],
      [["--retain-versions", "unlimited"], /--retain-versions: invalid number "unlimited"/],
      [["--retain", "soon"], /--retain: invalid duration "soon"/],
    ] as const) {
      const r = await cli("tenant", "set", t, ...argv);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${errorText(r)}`);
      assert.match(errorText(r), pattern);
    }
    const missing = await cli("tenant", "set", "00000000-0000-4000-8000-00000000dead", "--quota", "1GiB");
    assert.equal(missing.code, 4, errorText(missing));
    assert.match(
      errorText(missing),
      /tenant 00000000-0000-4000-8000-00000000dead does not exist .*nothing was changed/,
    );
    const unknown = await cli("tenant", "set", "nope", "--quota", "1GiB");
    assert.equal(unknown.code, 4, errorText(unknown));
    assert.match(errorText(unknown), /no tenant named "nope"/);
    // A session that may read and write the tenant but is not super.
    const p = await srv.ts.client(Principals, srv.ts.superToken).ensure({
      principal: { claimsJson: JSON.stringify({ name: "writer" }) },
    });
    const login = await srv.ts.client(Tokens, srv.ts.superToken).issue({
      template: {
        principalId: p.principal!.id,
        capabilities: { read: true, write: true },
        scope: { kind: { case: "onLocation", value: { tenantId: t, path: "/*" } } },
      },
    });
    const config = await writeCliConfig(join(srv.dir, "writer-config"), srv.ts.url, login.token!.jwt, t);
    const denied = await runCli(["tenant", "set", t, "--quota", "100GiB", "-c", config]);
    assert.equal(denied.code, 3, errorText(denied));
    assert.match(errorText(denied), /permission denied.*super/s);
    const after = await stored(t);
    assert.deepEqual([after.version, after.policy?.quotaBytes], [before.version, before.policy?.quotaBytes]);
  });

  test("ls --wide shows files, logical and physical bytes, dedup ratio and quota; --json keeps raw numbers", async () => {
    const t = await newTenant("wide");
    const data = randomBytes(300 * 1024);
    const uploads = srv.ts.client(Uploads, srv.ts.superToken);
    for (const path of ["/a", "/b"]) {
      await uploads.begin({ tenantId: t, path, committed: { case: "contents", value: data } });
    }
    await cli("tenant", "set", t, "--quota", "2GiB");
    const r = await cli("tenant", "ls", "--wide");
    assert.equal(r.code, 0, errorText(r));
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^ID +Version +Label +Files +Logical +Physical +Dedup +Quota$/);
    const row = lines.find((l) => l.startsWith(t));
    assert.ok(row, r.stdout);
    assert.match(row, / wide +2 +600 KiB +300 KiB +2\.00x +2 GiB$/);
    // A tenant without a quota of its own shows the server's default.
    assert.match(lines.find((l) => l.includes("Default Scratchpad")) ?? "", /1 GiB \(default\)$/);
    const rows = jsonOut<TenantWideJson[]>(await cli("tenant", "ls", "--wide", "--json"));
    const j = rows.find((x) => x.id === t)!;
    assert.deepEqual(j.usage, {
      files: 2,
      logicalBytes: 600 * 1024,
      chunks: 1,
      physicalBytes: 300 * 1024,
      dedupRatio: 2,
    });
    assert.equal(j.policy.quotaBytes, 2 * GiB);
    // Plain ls keeps its columns and JSON.
    const plain = await cli("tenant", "ls");
    assert.match(plain.stdout.split("\n")[0]!, /^ID +Version +Label$/);
    const plainJson = jsonOut<Record<string, unknown>[]>(await cli("tenant", "ls", "--json"));
    assert.deepEqual(Object.keys(plainJson[0]!).sort(), ["default", "id", "label", "version"]);
  });

  test("a file put over the quota fails at once with a clear message", async () => {
    const t = await newTenant("over quota");
    await cli("tenant", "set", t, "--quota", "1000");
    const local = join(srv.dir, "big.bin");
    await writeFile(local, randomBytes(5000));
    const r = await cli("file", "put", "-t", t, "/", local);
    assert.equal(r.code, 1, errorText(r));
    assert.match(
      errorText(r),
      /over quota: tenant .* is over its quota: it stores 0 bytes of its 1000 bytes quota/,
    );
    assert.match(errorText(r), /cacheroach tenant set <tenant> --quota <size>/);
  });
});
