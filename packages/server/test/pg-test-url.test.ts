import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";

describe("PG_TEST_URL (set by scripts/with-pg.ts)", () => {
  it("is set and reaches a PostgreSQL server that can create and drop a database", async () => {
    const url = process.env["PG_TEST_URL"];
    assert.ok(url, "run the tests through `node --import tsx scripts/with-pg.ts -- …` (npm test does)");
    const client = new pg.Client(url);
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number; version: string }>(
        "SELECT 1 AS one, current_setting('server_version') AS version",
      );
      assert.equal(rows[0]?.one, 1);
      assert.match(rows[0]?.version ?? "", /^\d+/);
      // Test files create their own databases (scripts/with-pg.ts shares one server between them): that must be allowed.
      const name = `t_pgurl_${process.pid}`;
      await client.query(`CREATE DATABASE "${name}"`);
      await client.query(`DROP DATABASE "${name}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  });
});
