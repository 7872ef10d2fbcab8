/**
 * `cacheroach scrub` against a real server: a clean run reports what it checked and exits 0; a
 * byte flipped in a chunk row is named with the file's path and version and exits 6 (text and
 * --json); bad input is a usage error; a session that is not super is refused (exit 3).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SessionSchema, Tokens, Uploads } from "@cacheroach/proto";
import pg from "pg";
import type { ScrubJson } from "../src/commands/scrub.js";
import { errorText, jsonOut, runCli, SCRATCHPAD, useCliServer, writeCliConfig } from "./helpers.js";

describe("cacheroach scrub", () => {
  let tenant: string;
  const srv = useCliServer({
    setup: async (s) => {
      tenant = (await s.cli("tenant", "create", "Scrubbed")).stdout.trim();
    },
  });
  const cli = srv.cli;

  /** Writes a whole file at once (one-shot Begin). */
  async function put(path: string, data: Buffer): Promise<void> {
    await srv.ts
      .client(Uploads, srv.ts.superToken)
      .begin({ tenantId: tenant, path, committed: { case: "contents", value: data } });
  }

  test("a clean tenant: a table of what was checked, exit 0", async () => {
    await put("/photos/beach.jpg", randomBytes(700 * 1024));
    await put("/notes/todo.txt", Buffer.from("buy milk"));
    const r = await cli("scrub", "--tenant", tenant);
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /^Tenant\s+Chunks\s+Bytes\s+Contents\s+Problems\s+Time$/m);
    assert.match(r.stdout, new RegExp(`^${tenant}\\s+3\\s+700 KiB\\s+2\\s+0\\s+[\\d.]+ s$`, "m"));
    assert.match(r.stderr, /no damage found in 1 tenant\(s\)/);
    const j = jsonOut<ScrubJson>(await cli("scrub", "--tenant", tenant, "--json", "--rate", "0"));
    assert.equal(j.damaged, false);
    assert.deepEqual(j.problems, []);
    assert.equal(j.tenants.length, 1);
    assert.equal(j.tenants[0]!.chunksChecked, 3);
    assert.equal(j.tenants[0]!.bytesChecked, 700 * 1024 + 8);
    assert.equal(j.tenants[0]!.ropesChecked, 2);
  });

  test("a flipped byte: the file's path and version are named, exit 6", async () => {
    await put("/photos/beach.jpg", randomBytes(100)); // version 2: the damaged content is version 1
    const sql = new pg.Client({ connectionString: srv.ts.databaseUrl });
    await sql.connect();
    try {
      // The first chunk of version 1 of /photos/beach.jpg.
      const r = await sql.query(
        `UPDATE chunks SET data = set_byte(data, 7, (get_byte(data, 7) + 1) % 256)
         WHERE tenant_id = $1 AND hash = (
           SELECT rc.chunk_hash FROM file_versions AS v
           JOIN rope_chunks AS rc ON rc.tenant_id = v.tenant_id AND rc.rope_hash = v.rope_hash AND rc.off = 0
           WHERE v.tenant_id = $1 AND v.path = $2 AND v.version = 1)`,
        [tenant, Buffer.from("/photos/beach.jpg")],
      );
      assert.equal(r.rowCount, 1);
    } finally {
      await sql.end();
    }
    const text = await cli("scrub", "-t", tenant);
    assert.equal(text.code, 6, errorText(text));
    assert.match(
      text.stdout,
      new RegExp(
        `^DAMAGED  chunk_corrupt  tenant ${tenant}: the chunk at offset 0 of content [0-9a-f]{16}… \\(chunk [0-9a-f]{16}…\\) does not match its hash\\n\\s+breaks /photos/beach\\.jpg@1$`,
        "m",
      ),
    );
    assert.match(text.stdout, new RegExp(`^${tenant}\\s+4\\s+\\S+ \\S+\\s+3\\s+1\\s`, "m"));
    assert.match(
      errorText(text),
      /1 problem\(s\) found in 1 tenant\(s\): the files listed above are damaged/,
    );

    const json = await cli("scrub", "--json");
    assert.equal(json.code, 6);
    const j = jsonOut<ScrubJson>(json);
    assert.equal(j.damaged, true);
    assert.ok(
      j.tenants.some((t) => t.tenantId === SCRATCHPAD),
      "every tenant without --tenant",
    );
    assert.equal(j.problems.length, 1);
    const p = j.problems[0]!;
    assert.equal(p.tenantId, tenant);
    assert.equal(p.kind, "chunk_corrupt");
    assert.equal(p.offset, 0);
    assert.match(p.chunkHash, /^[0-9a-f]{64}$/);
    assert.match(p.contentHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(p.files, [{ path: "/photos/beach.jpg", version: 1, live: false }]);
  });

  test("bad input is a usage error and asks nothing of the server", async () => {
    const bad = await cli("scrub", "--tenant", "no such tenant");
    assert.equal(bad.code, 4);
    assert.match(errorText(bad), /-t\/--tenant: no tenant named "no such tenant"/);
    const rate = await cli("scrub", "--rate", "fast");
    assert.equal(rate.code, 2);
    assert.match(errorText(rate), /invalid --rate "fast"/);
    const unknown = await cli("scrub", "--tenant", "6f1c0000-0000-4000-8000-000000000000");
    assert.equal(unknown.code, 4, errorText(unknown));
  });

  test("a session that is not super is refused (exit 3)", async () => {
    const issued = await srv.ts.client(Tokens, srv.ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: srv.ts.rootPrincipalId,
        capabilities: { read: true, write: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 600_000)),
      }),
    });
    const config = await writeCliConfig(join(srv.dir, "user.cfg"), srv.ts.url, issued.token!.jwt, tenant);
    const r = await runCli(["scrub", "-t", tenant, "-c", config]);
    assert.equal(r.code, 3, errorText(r));
    assert.match(errorText(r), /super/);
  });

  test("--help teaches what it checks, the kinds and the exit codes", async () => {
    const r = await cli("scrub", "--help");
    assert.equal(r.code, 0);
    for (const s of ["BLAKE3", "chunk_corrupt", "rope_mismatch", "PATH@VERSION", "--scrub-rate", "Exits 6"])
      assert.ok(r.stdout.includes(s), s);
  });
});
