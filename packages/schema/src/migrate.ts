import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";

/** The directory of this package's numbered SQL migrations. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations/", import.meta.url));

/** One forward-only migration: a numbered file holding exactly one DDL statement. */
export interface Migration {
  /** File name, e.g. `0001_create_tenants.sql`; the number orders migrations. */
  readonly name: string;
  /** The SQL text. */
  readonly sql: string;
  /** sha256 hex of the SQL text; an applied migration whose file changed is refused. */
  readonly checksum: string;
}

/** Stable codes of migration failures. */
export type MigrationErrorCode =
  | "ERR_MIGRATION_EDITED"
  | "ERR_MIGRATION_UNKNOWN"
  | "ERR_MIGRATION_LOCK_TIMEOUT"
  | "ERR_MIGRATION_BAD_NAME";

/** A migration could not be applied safely; the message names the migration and the fix. */
export class MigrationError extends Error {
  readonly code: MigrationErrorCode;
  constructor(code: MigrationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
    this.code = code;
  }
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Where the migrations are; default {@link MIGRATIONS_DIR}. */
  dir?: string;
  /** How long to wait for another instance holding the migration lock; default 120 s. */
  lockTimeoutMs?: number;
  /** How long a lock stays valid if its holder dies mid-migration; default 300 s. */
  leaseSeconds?: number;
  /** Receives a line per applied migration. */
  onApplied?: (name: string) => void;
}

/** Result of {@link migrate}. */
export interface MigrateResult {
  /** Names applied by this call. */
  applied: string[];
  /** Names that were already applied. */
  skipped: string[];
}

const NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/** Reads and orders the migration files in `dir`. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".sql")).sort();
  const out: Migration[] = [];
  for (const name of names) {
    if (!NAME.test(name)) {
      throw new MigrationError(
        "ERR_MIGRATION_BAD_NAME",
        `migration file ${name} must be named NNNN_slug.sql`,
      );
    }
    const sql = await readFile(`${dir}/${name}`, "utf8");
    out.push({ name, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return out;
}

// Bookkeeping tables. CREATE TABLE IF NOT EXISTS can race between instances on PostgreSQL
// (duplicate pg_type rows), so creation is retried once the other instance has finished.
const BOOKKEEPING = [
  `CREATE TABLE IF NOT EXISTS schema_migrations (
     name TEXT PRIMARY KEY,
     checksum TEXT NOT NULL,
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
   )`,
  // A lock row, not an advisory lock: CockroachDB has none. The lease lets a new instance take
  // over from one that died holding it.
  `CREATE TABLE IF NOT EXISTS schema_lock (
     id INT8 PRIMARY KEY,
     holder TEXT NOT NULL,
     expires_at TIMESTAMPTZ NOT NULL
   )`,
];

/**
 * Applies every pending migration, each in its own transaction together with its bookkeeping
 * row. Safe when several instances start at once: a lease row in `schema_lock` admits one
 * migrator at a time. Refuses to run when an applied migration's file was edited, or when the
 * database has migrations this build does not know (a newer build ran against it).
 */
export async function migrate(client: pg.ClientBase, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = await loadMigrations(options.dir);
  for (const ddl of BOOKKEEPING) await retryRace(() => client.query(ddl));

  const holder = randomUUID();
  await acquireLock(client, holder, options.lockTimeoutMs ?? 120_000, options.leaseSeconds ?? 300);
  try {
    const applied = new Map<string, string>();
    const rows = await client.query<{ name: string; checksum: string }>(
      "SELECT name, checksum FROM schema_migrations",
    );
    for (const r of rows.rows) applied.set(r.name, r.checksum);
    const known = new Set(migrations.map((m) => m.name));
    for (const name of applied.keys()) {
      if (!known.has(name)) {
        throw new MigrationError(
          "ERR_MIGRATION_UNKNOWN",
          `database has migration ${name}, which this build does not know; run a build at least as new as the one that applied it`,
        );
      }
    }
    const result: MigrateResult = { applied: [], skipped: [] };
    for (const m of migrations) {
      const done = applied.get(m.name);
      if (done !== undefined) {
        if (done !== m.checksum) {
          throw new MigrationError(
            "ERR_MIGRATION_EDITED",
            `migration ${m.name} was edited after it was applied (checksum ${done.slice(0, 12)} in the database, ${m.checksum.slice(0, 12)} on disk); add a new migration instead`,
          );
        }
        result.skipped.push(m.name);
        continue;
      }
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", [
          m.name,
          m.checksum,
        ]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      }
      result.applied.push(m.name);
      options.onApplied?.(m.name);
    }
    return result;
  } finally {
    await client.query("DELETE FROM schema_lock WHERE id = 1 AND holder = $1", [holder]).catch(() => {});
  }
}

async function acquireLock(client: pg.ClientBase, holder: string, timeoutMs: number, leaseSeconds: number) {
  const deadline = Date.now() + timeoutMs;
  let wait = 50;
  for (;;) {
    // Take the row if it is free or its lease ran out; otherwise the update does nothing.
    const r = await client.query<{ holder: string }>(
      `INSERT INTO schema_lock (id, holder, expires_at) VALUES (1, $1, now() + $2 * INTERVAL '1 second')
       ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE schema_lock.expires_at < now()
       RETURNING holder`,
      [holder, leaseSeconds],
    );
    if (r.rows[0]?.holder === holder) return;
    if (Date.now() > deadline) {
      throw new MigrationError(
        "ERR_MIGRATION_LOCK_TIMEOUT",
        `another instance has held the migration lock for over ${Math.round(timeoutMs / 1000)} s; if it died, the lock frees itself when its lease expires`,
      );
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 1000);
  }
}

/**
 * SQLSTATEs of DDL that raced with another instance's: unique_violation, duplicate_table,
 * duplicate_object, serialization_failure.
 */
const CONCURRENT_DDL: ReadonlySet<string> = new Set(["23505", "42P07", "42710", "40001"]);

async function retryRace<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      // Another instance created it concurrently: PostgreSQL reports that as 23505 (pg_type unique
      // violation), 42P07 (duplicate_table) or 42710 (duplicate_object: 'type … already exists').
      if (attempt < 5 && err instanceof pg.DatabaseError && CONCURRENT_DDL.has(err.code ?? "")) {
        await sleep(50 * (attempt + 1));
        continue;
      }
      throw err;
    }
  }
}
