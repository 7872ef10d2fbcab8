import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { loadMigrations, MIGRATIONS_DIR, MigrationError, migrate } from "../src/migrate.js";

const base = process.env["PG_TEST_URL"] ?? process.env["DATABASE_URL"];
let url: string;
let name: string;

async function withClient<T>(fn: (c: pg.Client) => Promise<T>, u = url): Promise<T> {
  const c = new pg.Client({ connectionString: u });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

before(async () => {
  assert.ok(base, "PG_TEST_URL is not set: run through npm test");
  name = `t_${process.pid}_${randomBytes(4).toString("hex")}`;
  await withClient((c) => c.query(`CREATE DATABASE "${name}"`), base);
  const u = new URL(base!);
  u.pathname = `/${name}`;
  url = u.toString();
});
after(async () => {
  await withClient((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`), base);
});

test("every migration file holds one statement and is named NNNN_slug.sql", async () => {
  const ms = await loadMigrations();
  assert.ok(ms.length > 10);
  ms.forEach((m, i) => {
    // Increasing and unique; gaps are allowed (ranges of numbers are reserved for work in progress).
    assert.match(m.name, /^\d{4}_[a-z0-9_]+\.sql$/, `${m.name} is named NNNN_slug.sql`);
    if (i === 0) assert.equal(m.name.slice(0, 4), "0001", "the first migration is 0001");
    else assert.ok(m.name.slice(0, 4) > ms[i - 1]!.name.slice(0, 4), `${m.name} has a number of its own`);
    const statements = m.sql
      .replace(/--.*$/gm, "")
      .split(";")
      .filter((s) => s.trim() !== "");
    assert.equal(statements.length, 1, `${m.name} holds exactly one DDL statement`);
  });
});

test("several instances migrating at once apply each migration exactly once", async () => {
  const results = await Promise.all(
    Array.from({ length: 4 }, () => withClient((c) => migrate(c, { lockTimeoutMs: 60_000 }))),
  );
  const applied = results.flatMap((r) => r.applied);
  const all = (await loadMigrations()).map((m) => m.name);
  assert.deepEqual([...applied].sort(), all, "each migration applied by exactly one instance");
  const rows = await withClient((c) => c.query("SELECT name FROM schema_migrations ORDER BY name"));
  assert.deepEqual(
    rows.rows.map((r) => r.name),
    all,
  );
  const again = await withClient((c) => migrate(c));
  assert.deepEqual(again.applied, []);
  assert.equal(again.skipped.length, all.length);
});

test("an edited migration is refused with its name", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mig-"));
  try {
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    writeFileSync(join(dir, "0001_create_tenants.sql"), "CREATE TABLE tenants (id UUID PRIMARY KEY);\n");
    await assert.rejects(
      withClient((c) => migrate(c, { dir })),
      (err: unknown) =>
        err instanceof MigrationError &&
        err.code === "ERR_MIGRATION_EDITED" &&
        /0001_create_tenants\.sql/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a database with migrations this build does not know is refused", async () => {
  await withClient((c) =>
    c.query("INSERT INTO schema_migrations (name, checksum) VALUES ('9999_from_the_future.sql', 'x')"),
  );
  try {
    await assert.rejects(
      withClient((c) => migrate(c)),
      (err: unknown) => err instanceof MigrationError && err.code === "ERR_MIGRATION_UNKNOWN",
    );
  } finally {
    await withClient((c) => c.query("DELETE FROM schema_migrations WHERE name = '9999_from_the_future.sql'"));
  }
});

test("a lock held by a live instance makes others wait, a stale one is taken over", async () => {
  await withClient((c) =>
    c.query(
      "INSERT INTO schema_lock (id, holder, expires_at) VALUES (1, 'someone', now() + INTERVAL '1 hour')",
    ),
  );
  await assert.rejects(
    withClient((c) => migrate(c, { lockTimeoutMs: 300 })),
    (err: unknown) => err instanceof MigrationError && err.code === "ERR_MIGRATION_LOCK_TIMEOUT",
  );
  await withClient((c) => c.query("UPDATE schema_lock SET expires_at = now() - INTERVAL '1 second'"));
  const r = await withClient((c) => migrate(c, { lockTimeoutMs: 5000 }));
  assert.deepEqual(r.applied, []);
  const left = await withClient((c) => c.query("SELECT count(*)::INT8 AS n FROM schema_lock"));
  assert.equal(Number(left.rows[0].n), 0, "the lock is released");
});

test("no secondary index starts with its table's primary-key column (a new tenant's lookups would be planned through it)", async () => {
  // A tenant the statistics do not know yet is estimated at one row, so an index that starts with
  // tenant_id like the primary key looks as cheap as it for a lookup by (tenant_id, key): PostgreSQL
  // then picked the smaller one and filtered the whole tenant per row (a new tenant's small-file
  // put and get ran 3-10x slower). Indexes that serve other lookups lead with their own column.
  const rows = await withClient(async (c) => {
    await migrate(c, { lockTimeoutMs: 60_000 });
    return (
      await c.query<{ idx: string }>(`
      SELECT i.relname AS idx FROM pg_index AS x
        JOIN pg_class AS i ON i.oid = x.indexrelid -- crdb-lint: ok PostgreSQL catalogs (the tests run on PostgreSQL)
        JOIN pg_class AS t ON t.oid = x.indrelid -- crdb-lint: ok PostgreSQL catalogs
        JOIN pg_namespace AS n ON n.oid = t.relnamespace
        JOIN pg_index AS p ON p.indrelid = x.indrelid AND p.indisprimary
      WHERE n.nspname = current_schema() AND NOT x.indisprimary AND x.indkey[0] = p.indkey[0]`)
    ).rows;
  });
  assert.deepEqual(
    rows.map((r) => r.idx),
    [],
  );
});

test("a new tenant's rope lists are read by primary key while another tenant fills the statistics", async () => {
  const explain = await withClient(async (c) => {
    await migrate(c, { lockTimeoutMs: 60_000 });
    const big = "00000000-0000-4000-8000-00000000b001";
    const fresh = "00000000-0000-4000-8000-00000000b002";
    await c.query("BEGIN");
    await c.query("INSERT INTO tenants (id, label, version) VALUES ($1, 'big', 1), ($2, 'fresh', 1)", [
      big,
      fresh,
    ]);
    // Another tenant's 20,000 one-chunk ropes, analyzed; then the new tenant's, not analyzed.
    for (const [tenant, n] of [
      [big, 20_000],
      [fresh, 2_000],
    ] as const) {
      await c.query(
        `INSERT INTO chunks (tenant_id, hash, data)
           SELECT $1, sha256(int8send(g) || $2::bytea), '\\x00' FROM generate_series(1, $3) AS g`,
        [tenant, Buffer.from(tenant), n],
      );
      await c.query(
        `INSERT INTO ropes (tenant_id, hash, size, chunk_size, chunk_count)
           SELECT $1, sha256(int8send(-g) || $2::bytea), 1, 65536, 1 FROM generate_series(1, $3) AS g`,
        [tenant, Buffer.from(tenant), n],
      );
      await c.query(
        `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length)
           SELECT $1, sha256(int8send(-g) || $2::bytea), 0, sha256(int8send(g) || $2::bytea), 1
           FROM generate_series(1, $3) AS g`,
        [tenant, Buffer.from(tenant), n],
      );
      await c.query("COMMIT");
      if (tenant === big) await c.query("ANALYZE chunks; ANALYZE ropes; ANALYZE rope_chunks");
      await c.query("BEGIN");
    }
    await c.query("COMMIT");
    // The shape of FileStore's rope check (a count of a rope's list per rope).
    const r = await c.query<{ "QUERY PLAN": string }>(
      `EXPLAIN SELECT (SELECT count(*) FROM rope_chunks AS rc WHERE rc.tenant_id = $1 AND rc.rope_hash = v.hash)
         FROM unnest($2::BYTEA[]) AS v (hash)`,
      [fresh, [Buffer.alloc(32)]],
    );
    return r.rows.map((row) => row["QUERY PLAN"]).join("\n");
  });
  assert.match(explain, /rope_chunks_pkey/, explain);
  assert.doesNotMatch(explain, /Filter: \(rope_hash/, explain);
});
