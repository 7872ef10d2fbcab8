/**
 * Row 6: listing many files (default 100,000) under one prefix, a page at a time.
 *
 * Population: the files are inserted with SQL straight into `files` (and `file_versions`, so the
 * database stays consistent), every row pointing at the rope of one tiny file committed first
 * through the API. Creating 100,000 files through the API would take minutes and measure the
 * small-file put path (row 5) again; this row measures reading a big directory, which only needs
 * the head rows to exist. The table is ANALYZEd afterwards, as autovacuum would eventually do.
 *
 * Measured: the `Files.List` RPC called directly with page_size 1000, following `next_cursor` to
 * the end — the API cost without a CLI process — decoded as the CLI decodes it (`FilesListBytes`
 * and `listResponseOfBytes`, proto/src/list-decoding.ts) and, for comparison, by protobuf-es'
 * generic decoder; and, for the user's view, `cacheroach file ls -R <prefix> --json` (one CLI
 * process, JSON output).
 *
 * Reference: the same rows read by a raw keyset-paged SELECT of the same columns from the same
 * table, 1000 rows per query (`WHERE tenant_id = $1 AND dtime IS NULL AND path > $after AND path <
 * $end ORDER BY path LIMIT 1000`), on one connection, decoded by `pg` into row objects: the least
 * work any paged listing over this schema must do. One unpaged SELECT of every row is shown too.
 * A warm-up pass runs first, so every variant reads from the same warm buffers.
 */
import { Files, FilesListBytes, listResponseOfBytes, Uploads } from "@cacheroach/proto";
import type { BenchSession } from "./bootstrap.js";
import type { BenchDatabase } from "./database.js";
import { cli } from "./exec.js";

/** Rows (files) per second of each measurement of row 6. */
export interface ListingResults {
  /** Files.List decoded as the CLI does. */
  rpc: number;
  /** Files.List decoded by protobuf-es' generic decoder. */
  rpcProtobufEs: number;
  cli: number;
  rawPaged: number;
  rawOnce: number;
}

const PREFIX = "/list";
const PAGE = 1000;
const COLUMNS =
  "tenant_id, path, version, rope_hash, size, chunk_size, content_type, meta, ctime, mtime, dtime";

/** Inserts `count` files below /list/ in `tenant` with SQL (see the module comment). */
export async function populateListing(
  db: BenchDatabase,
  session: BenchSession,
  tenant: string,
  count: number,
): Promise<void> {
  await session.client(Uploads).begin({
    tenantId: tenant,
    path: "/list-seed.txt",
    committed: { case: "contents", value: Buffer.from("seed\n") },
  });
  const pool = db.pool(1);
  try {
    const values = `SELECT $1::uuid, convert_to('${PREFIX}/f' || lpad(i::text, 7, '0') || '.bin', 'UTF8'), 1,
              s.rope_hash, s.size, s.chunk_size, 'application/octet-stream', '{}'::jsonb, now(), now(), NULL::timestamptz
         FROM generate_series(0, $2::int - 1) AS i,
              (SELECT rope_hash, size, chunk_size FROM files WHERE tenant_id = $1 AND path = convert_to('/list-seed.txt', 'UTF8')) AS s`;
    await pool.query("BEGIN");
    await pool.query(`INSERT INTO file_versions (${COLUMNS}) ${values}`, [tenant, count]);
    const r = await pool.query(`INSERT INTO files (${COLUMNS}) ${values}`, [tenant, count]);
    await pool.query("COMMIT");
    if (r.rowCount !== count) throw new Error(`inserted ${r.rowCount} listing rows, expected ${count}`);
    await pool.query("ANALYZE files");
    await pool.query("ANALYZE file_versions");
  } finally {
    await pool.end();
  }
}

/** Times the raw SELECTs, the Files.List RPC and `file ls -R --json` over the populated prefix. */
export async function listingRows(
  db: BenchDatabase,
  session: BenchSession,
  config: string,
  tenant: string,
  count: number,
): Promise<ListingResults> {
  const pool = db.pool(1);
  const lo = Buffer.from(`${PREFIX}/`);
  const hi = Buffer.from(`${PREFIX}0`); // "0" follows "/" bytewise: the end of everything below /list/
  const rawPagedOnce = async () => {
    let after: Buffer = lo;
    let n = 0;
    for (let pages = 0; pages <= count / PAGE + 1; pages++) {
      const r = await pool.query<{ path: Buffer }>(
        `SELECT ${COLUMNS} FROM files WHERE tenant_id = $1 AND dtime IS NULL AND path > $2 AND path < $3 ORDER BY path LIMIT ${PAGE}`,
        [tenant, after, hi],
      );
      n += r.rows.length;
      if (r.rows.length < PAGE) break;
      after = r.rows[r.rows.length - 1]!.path;
    }
    if (n !== count) throw new Error(`raw paged listing saw ${n} rows, expected ${count}`);
  };
  const timed = async (f: () => Promise<void>) => {
    const t0 = performance.now();
    await f();
    return count / ((performance.now() - t0) / 1000);
  };
  try {
    await rawPagedOnce(); // warm-up
    const rawPaged = await timed(rawPagedOnce);
    const rawOnce = await timed(async () => {
      const r = await pool.query(
        `SELECT ${COLUMNS} FROM files WHERE tenant_id = $1 AND dtime IS NULL AND path >= $2 AND path < $3 ORDER BY path`,
        [tenant, lo, hi],
      );
      if (r.rows.length !== count)
        throw new Error(`raw listing saw ${r.rows.length} rows, expected ${count}`);
    });
    const files = session.client(Files);
    const filesBytes = session.client(FilesListBytes);
    const rpcPagedOnce = async (fast: boolean) => {
      let cursor = "";
      let n = 0;
      for (let pages = 0; pages <= count / PAGE + 1; pages++) {
        const request = { tenantId: tenant, path: PREFIX, cursor, pageSize: PAGE };
        const page = fast ? listResponseOfBytes(await filesBytes.list(request)) : await files.list(request);
        n += page.files.length;
        cursor = page.nextCursor;
        if (cursor === "") break;
      }
      if (n !== count) throw new Error(`Files.List saw ${n} files, expected ${count}`);
    };
    await rpcPagedOnce(true); // warm-up, as for the raw listing
    const rpc = await timed(() => rpcPagedOnce(true));
    const rpcProtobufEs = await timed(() => rpcPagedOnce(false));
    const ls = await cli(config, ["file", "ls", "-R", PREFIX, "-t", tenant, "--json"]);
    const listed = (JSON.parse(ls.stdout) as unknown[]).length;
    if (listed !== count) throw new Error(`file ls listed ${listed} files, expected ${count}`);
    return { rpc, rpcProtobufEs, cli: count / ls.seconds, rawPaged, rawOnce };
  } finally {
    await pool.end();
  }
}
