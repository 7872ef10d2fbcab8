/**
 * Row 5: many small files (default 10,000 × 4 KiB), put and get at a stated concurrency (default 8),
 * and `file sync` of the same directory once more, unchanged (one Files.List of the remote
 * directory with sizes and "mtime" metadata, one walk of the local tree; no file is read or sent),
 * three times: one CLI process is one sample of a noisy machine, so the row is their median (and
 * the trivial command's time the median of three as well).
 *
 * Through cacheroach: one `cacheroach file put -r -p <c>` of the directory, and one
 * `cacheroach file get -p <c> -o <dir>/ <every path>`, each a single CLI process (its start-up,
 * measured separately and shown in the notes, is included). The CLI sends small files 256 per
 * `Uploads.PutFiles` call (each file its own version and outcome; the server writes the batch's
 * chunks, ropes and versions in a few statements and one commit) and reads them 256 paths per
 * `Files.ReadMany` call (metadata and contents in one answer), verifying every hash and writing
 * each local file through a temp file.
 *
 * The reference is what PostgreSQL does for the same number of rows at the same concurrency, one
 * statement per file, autocommit: single-row `INSERT` of the 4 KiB contents (key = tenant + path),
 * and single-row `SELECT` of it by primary key, from <c> connections. Each durable file write is at
 * least one commit, and each read at least one indexed lookup, so the raw single-row rates are the
 * floor of the database work per file; the ratio shows how much of cacheroach's per-file budget goes
 * elsewhere (more statements per file, the RPC, the CLI).
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BenchDatabase } from "./database.js";
import { cli } from "./exec.js";
import { smallName } from "./payload.js";
import { withClients } from "./raw-chunks.js";

/** Files per second of each measurement of row 5. */
export interface SmallFileResults {
  rawInsert: number;
  rawSelect: number;
  put: number;
  get: number;
  /** Wall time of one trivial CLI command (start-up + one RPC), seconds: the median of three. */
  cliStartup: number;
  /** Wall time of `file sync` of the unchanged directory, seconds: the median of {@link syncRuns}. */
  syncUnchanged: number;
  /** Each run's wall time of that sync, in order. */
  syncRuns: number[];
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

const TABLE = "bench_raw_small";
const TENANT = "00000000-0000-4000-8000-00000000be9d";

/** Raw single-row INSERT/SELECT of the small files' contents at `concurrency`. */
export async function rawSmallRows(
  db: BenchDatabase,
  contents: Buffer[],
  concurrency: number,
): Promise<{ insert: number; select: number }> {
  const pool = db.pool(concurrency);
  try {
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool.query(
      `CREATE TABLE ${TABLE} (tenant_id UUID NOT NULL, path BYTEA NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (tenant_id, path))`,
    );
    await db.checkpoint(pool);
    const key = (i: number) => Buffer.from(`/small/${smallName(i)}`);
    let next = 0;
    let t0 = performance.now();
    await withClients(pool, concurrency, async (c) => {
      while (next < contents.length) {
        const i = next++;
        await c.query(`INSERT INTO ${TABLE} (tenant_id, path, data) VALUES ($1, $2, $3)`, [
          TENANT,
          key(i),
          contents[i],
        ]);
      }
    });
    const insert = contents.length / ((performance.now() - t0) / 1000);
    next = 0;
    t0 = performance.now();
    await withClients(pool, concurrency, async (c) => {
      while (next < contents.length) {
        const i = next++;
        const r = await c.query<{ data: Buffer }>(
          `SELECT data FROM ${TABLE} WHERE tenant_id = $1 AND path = $2`,
          [TENANT, key(i)],
        );
        if (r.rows[0]?.data.length !== contents[i]!.length) throw new Error(`raw select: row ${i} is wrong`);
      }
    });
    const select = contents.length / ((performance.now() - t0) / 1000);
    await pool.query(`DROP TABLE ${TABLE}`);
    return { insert, select };
  } finally {
    await pool.end();
  }
}

/** `file put -r` and `file get` of the small files through the CLI at `concurrency`. */
export async function smallFileRows(
  config: string,
  tenant: string,
  dir: string,
  outDir: string,
  contents: Buffer[],
  concurrency: number,
): Promise<{ put: number; get: number; cliStartup: number; syncUnchanged: number; syncRuns: number[] }> {
  const count = contents.length;
  const p = String(concurrency);
  // "no such path" (exit 4): one RPC and the CLI's start-up.
  const startups: number[] = [];
  for (let i = 0; i < 3; i++) {
    startups.push(
      (await cli(config, ["file", "ls", "-t", tenant, "/nothing-here"], { allowFailure: true })).seconds,
    );
  }
  const put = await cli(
    config,
    ["file", "put", "-r", "-p", p, "-t", tenant, "--no-progress", "/small/", dir],
    {
      stdout: "ignore",
    },
  );
  await mkdir(outDir, { recursive: true });
  const paths = Array.from({ length: count }, (_, i) => `/small/${smallName(i)}`);
  const get = await cli(
    config,
    ["file", "get", "-p", p, "-t", tenant, "--no-progress", "-o", `${outDir}/`, ...paths],
    {
      stdout: "ignore",
    },
  );
  for (const i of [0, count >> 1, count - 1]) {
    if (!(await readFile(join(outDir, smallName(i)))).equals(contents[i]!)) {
      throw new Error(`downloaded ${smallName(i)} differs from the uploaded file`);
    }
  }
  // The directory again, unchanged: one listing, one local walk, nothing read or sent.
  const syncRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    const sync = await cli(config, ["file", "sync", "-t", tenant, "--no-progress", dir, "/small/"]);
    if (!new RegExp(`^0 uploaded .*, ${count} unchanged, 0 deleted`).test(sync.stderr.trim())) {
      throw new Error(`file sync of the unchanged directory did something: ${sync.stderr.trim()}`);
    }
    syncRuns.push(sync.seconds);
  }
  return {
    put: count / put.seconds,
    get: count / get.seconds,
    cliStartup: median(startups),
    syncUnchanged: median(syncRuns),
    syncRuns,
  };
}
