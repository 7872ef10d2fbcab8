/** `cacheroach gc` against a real server: dry run, reclaiming, text and JSON output, refusals. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import pg from "pg";
import { errorText, jsonOut, runCli, SCRATCHPAD, useCliServer, writeCliConfig } from "./helpers.js";

interface GcOut {
  tenantId: string;
  dryRun: boolean;
  versions: number;
  ropes: number;
  chunks: number;
  bytes: number;
  pendingChunks: number;
}

describe("cacheroach gc", () => {
  const srv = useCliServer({ server: { chunkSize: 64 * 1024, gcMarginMs: 200, gcIntervalMs: 0 } });
  const cli = srv.cli;
  const chunkRows = async () => {
    const db = new pg.Client({ connectionString: srv.ts.databaseUrl });
    await db.connect();
    try {
      const r = await db.query("SELECT count(*)::INT8 AS n FROM chunks WHERE tenant_id = $1", [SCRATCHPAD]);
      return Number(r.rows[0].n);
    } finally {
      await db.end();
    }
  };

  test("reclaims what was deleted or replaced, after a dry run that changes nothing", async () => {
    const a = join(srv.dir, "a.bin");
    await writeFile(a, randomBytes(200 * 1024));
    assert.equal((await cli("file", "put", "/gc/", a)).code, 0);
    await writeFile(a, randomBytes(100 * 1024));
    assert.equal((await cli("file", "put", "/gc/", a)).code, 0);
    assert.equal((await cli("file", "rm", "/gc/a.bin")).code, 0);
    const before = await chunkRows();

    const dry = await cli("gc", "-t", SCRATCHPAD, "--older-than", "0s", "--dry-run", "--json");
    assert.equal(dry.code, 0, errorText(dry));
    const [d] = jsonOut<GcOut[]>(dry);
    assert.equal(d!.dryRun, true);
    assert.equal(d!.versions, 2);
    assert.equal(await chunkRows(), before, "the dry run deleted nothing");

    const kept = await cli("gc", "-t", SCRATCHPAD, "--json");
    assert.equal(kept.code, 0, errorText(kept));
    assert.equal(jsonOut<GcOut[]>(kept)[0]!.versions, 0, "within the default retention of 7 days");

    const run = await cli("gc", "-t", SCRATCHPAD, "--older-than", "0s");
    assert.equal(run.code, 0, errorText(run));
    assert.match(run.stdout, /Versions/);
    assert.match(run.stdout, /\b2\b/);
    assert.match(run.stderr, /freed/);
    assert.ok((await chunkRows()) < before, "chunks were removed");
  });

  test("every tenant by default, as a table", async () => {
    const r = await cli("gc");
    assert.equal(r.code, 0, errorText(r));
    assert.match(r.stdout, /Tenant\s+Versions\s+Uploads\s+Contents\s+Chunks\s+Freed\s+Pending/);
  });

  test("bad input is refused before anything runs", async () => {
    const badDuration = await cli("gc", "--older-than", "soon");
    assert.equal(badDuration.code, 2);
    assert.match(errorText(badDuration), /invalid duration "soon"/);
    const badTenant = await cli("gc", "-t", "no such team");
    assert.equal(badTenant.code, 4);
    assert.match(errorText(badTenant), /no tenant named "no such team"/);
    const unknown = await cli("gc", "-t", "5b3c2d4e-0000-4000-8000-000000000001");
    assert.equal(unknown.code, 4);
  });

  test("needs a super session", async () => {
    const cfg = await writeCliConfig(join(srv.dir, "nobody"), srv.ts.url, "not-a-token");
    const r = await runCli(["gc", "-c", cfg]);
    assert.equal(r.code, 3, errorText(r));
  });
});
