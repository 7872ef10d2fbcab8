import { byteaArray, inBatches } from "../db/arrays.js";
import type { Db, Queryable } from "../db/db.js";
import { isUniqueViolation } from "../db/sqlstate.js";
import { CacheroachError } from "../errors.js";
import {
  FILE_COLUMNS,
  type FileListRow,
  type FileRecord,
  type FileRow,
  fileFromListRow,
  fileFromRow,
  LIST_COLUMNS,
  type WritePrecondition,
} from "./file-meta.js";
import { belowRange, pathKey } from "./paths.js";
import type { Rope } from "./rope-store.js";

/** What a new file version points at and carries. */
export interface NewVersion {
  readonly rope: Rope;
  readonly contentType: string;
  readonly meta: Record<string, string>;
  readonly precondition: WritePrecondition | undefined;
}

/** One file of a {@link FileStore.putMany} batch. */
export interface PathVersion {
  readonly path: string;
  readonly version: NewVersion;
}

/** One entry of a directory: a file, or a sub-directory (file undefined). */
export interface DirEntry {
  readonly name: string;
  readonly file: FileRecord | undefined;
}

/** One stored version of a file and whether it is the one the path serves. */
export interface StoredVersion {
  readonly file: FileRecord;
  /** The newest version of the path, not deleted. */
  readonly live: boolean;
}

/** A page of a listing. */
export interface FilePage {
  readonly files: FileRecord[];
  /** The last path of this page when more follow (undefined on the last page, even a full one). */
  readonly after: string | undefined;
}

/** Paths per lookup statement. */
const LOOKUP_BATCH = 1000;

/** The heads of tenant $1 at paths $2 (a BYTEA[]). */
const HEADS = `SELECT ${FILE_COLUMNS} FROM files WHERE tenant_id = $1 AND path = ANY($2::BYTEA[])`;
/** {@link HEADS}, locked for update. */
const HEADS_FOR_UPDATE = `${HEADS} FOR UPDATE`;

/** The head update of an insert into `files` of a path that has a head already. */
const SET_HEAD = `ON CONFLICT (tenant_id, path) DO UPDATE SET version = excluded.version, rope_hash = excluded.rope_hash,
  size = excluded.size, chunk_size = excluded.chunk_size, content_type = excluded.content_type,
  meta = excluded.meta, ctime = excluded.ctime, mtime = excluded.mtime, dtime = NULL`;

/**
 * New versions of tenant $1 as arrays in the order of {@link versionValues} ($2 paths … $9
 * ctimes, NULL: now()), and the heads from exactly the rows inserted; returns the heads.
 */
const PUT_MANY = `WITH v AS (
    INSERT INTO file_versions (${FILE_COLUMNS})
    SELECT $1, u.path, u.version, u.rope_hash, u.size, u.chunk_size, u.content_type, u.meta::JSONB,
      COALESCE(u.ctime, now()), now(), NULL::TIMESTAMPTZ
    FROM unnest($2::BYTEA[], $3::INT8[], $4::BYTEA[], $5::INT8[], $6::INT4[], $7::TEXT[], $8::TEXT[], $9::TIMESTAMPTZ[])
      AS u (path, version, rope_hash, size, chunk_size, content_type, meta, ctime)
    RETURNING ${FILE_COLUMNS})
  INSERT INTO files (${FILE_COLUMNS}) SELECT ${FILE_COLUMNS} FROM v
  ${SET_HEAD}
  RETURNING ${FILE_COLUMNS}`;

/**
 * At most $3 distinct paths of live files of tenant $1 holding content $2, within the key ranges
 * [$4[i], $5[i]): one range scan of files_by_content per range.
 */
const LIVE_HOLDERS = `SELECT DISTINCT f.path FROM unnest($4::BYTEA[], $5::BYTEA[]) AS r (lo, hi)
  CROSS JOIN LATERAL (SELECT path FROM files
    WHERE tenant_id = $1 AND rope_hash = $2 AND dtime IS NULL AND path >= r.lo AND path < r.hi
    LIMIT $3) AS f
  LIMIT $3`;

/**
 * Ropes $2 (a BYTEA[]) of tenant $1 that a new version is about to reference, locked (FOR SHARE)
 * so garbage collection cannot delete them before the version commits, with the count of their
 * chunk-list rows. Garbage collection deletes a rope's header and its list in one transaction
 * after locking the header, so once a header is locked here its list cannot shrink. One
 * primary-key lookup per hash (LATERAL), whatever the statistics say: as `hash = ANY(…)`, an
 * analyzed table let PostgreSQL scan the tenant's ropes per statement (150 ms per 1000 hashes in
 * a tenant of 10 000 ropes, measured by the benchmark's garbage set-up).
 */
const LOCK_ROPES = `SELECT r.hash, r.chunk_count,
    (SELECT count(*) FROM rope_chunks AS rc WHERE rc.tenant_id = $1 AND rc.rope_hash = r.hash) AS listed,
    (SELECT count(*) FROM tenants AS t WHERE t.id = $1 AND t.deleted_at IS NULL) AS tenant_live
  FROM unnest($2::BYTEA[]) AS v (hash)
  CROSS JOIN LATERAL (SELECT hash, chunk_count FROM ropes
    WHERE tenant_id = $1 AND hash = v.hash FOR SHARE) AS r`;

/**
 * Locks the ropes new versions will reference (see {@link LOCK_ROPES}) and checks that each exists
 * with its whole chunk list: a rope committed by this writer may have been collected since (it was
 * unreferenced until now), or rewritten while a collection removed it. ERR_CONTENT_COLLECTED then,
 * and the writer commits the rope again. The same statement refuses a deleted tenant: its rows
 * stay until garbage collection purges them, and writers remember live tenants for a few
 * seconds, so this is where a deletion is noticed.
 */
async function requireRopes(q: Queryable, tenantId: string, ropes: readonly Rope[]): Promise<void> {
  const unique = new Map(ropes.map((r) => [r.hash.toString("hex"), r]));
  const r = await q.query<{ hash: Buffer; chunk_count: string; listed: string; tenant_live: string }>(
    LOCK_ROPES,
    [tenantId, byteaArray([...unique.values()].map((rope) => rope.hash))],
  );
  if (r.rows.some((row) => Number(row.tenant_live) === 0)) {
    throw new CacheroachError("ERR_NOT_FOUND", `tenant ${tenantId} does not exist`);
  }
  const found = new Map(r.rows.map((row) => [row.hash.toString("hex"), row]));
  for (const [k, rope] of unique) {
    const row = found.get(k);
    if (!row || Number(row.listed) !== Number(row.chunk_count)) {
      throw new CacheroachError(
        "ERR_CONTENT_COLLECTED",
        `content ${k.slice(0, 16)}… was ${row ? "found incomplete" : "collected"} while being written (${rope.chunkCount} chunks); write it again`,
      );
    }
  }
}

/** The key range of every path (UTF-8 never holds the byte 0xFF). */
const EVERY_PATH: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.from([0xff])];

/**
 * The key range of an exact path (the path itself: no key lies between it and it + 0x00) or of a
 * "/dir/*" pattern (everything below "/dir").
 */
function pathRange(p: string): [Buffer, Buffer] {
  if (p.endsWith("/*")) return belowRange(p.slice(0, -2));
  const key = pathKey(p);
  return [key, Buffer.concat([key, Buffer.from([0])])];
}

/**
 * Versioned files over committed ropes. Every write makes version n+1 of its path (numbers are
 * never reused, even after deletes); deletes are soft (dtime). The `files` table holds each
 * path's head so a listing is one ordered range scan.
 */
export class FileStore {
  constructor(private readonly db: Db) {}

  /** Checks a precondition against the head without writing (to fail early). */
  async check(tenantId: string, path: string, pre: WritePrecondition | undefined): Promise<void> {
    if (!pre) return;
    const head = await this.head(this.db, tenantId, path, false);
    checkPrecondition(path, head, pre);
  }

  /**
   * Writes a new version atomically with its precondition check. `onWritten` runs in the same
   * transaction (the upload commit marks its upload row there).
   */
  async put(
    tenantId: string,
    path: string,
    v: NewVersion,
    onWritten?: (q: Queryable, file: FileRecord) => Promise<void>,
  ): Promise<FileRecord> {
    // Two first writes of one path race on the version's primary key; the loser runs again and
    // becomes the next version (or fails its precondition).
    return this.db.tx(
      async (q) => {
        const head = await this.head(q, tenantId, path, true);
        if (v.precondition) checkPrecondition(path, head, v.precondition);
        await requireRopes(q, tenantId, [v.rope]);
        const params = [tenantId, ...versionValues(versionRow(path, head, v))];
        const r = await q.query<FileRow>(
          `INSERT INTO file_versions (${FILE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, now()), now(), NULL)
             RETURNING ${FILE_COLUMNS}`,
          params,
        );
        const row = r.rows[0]!;
        await q.query(
          `INSERT INTO files (${FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL) ${SET_HEAD}`,
          [...params.slice(0, 8), row.ctime, row.mtime],
        );
        const file = fileFromRow(row);
        if (onWritten) await onWritten(q, file);
        return file;
      },
      { retryIf: isUniqueViolation },
    );
  }

  /**
   * Writes a new version of each (distinct) path in one transaction: heads locked in one query,
   * preconditions checked per file, then one statement inserts every version and updates every
   * head. A file whose precondition fails gets its CacheroachError in the result and is not written;
   * the others are. Results are in input order.
   */
  async putMany(tenantId: string, items: readonly PathVersion[]): Promise<(FileRecord | CacheroachError)[]> {
    if (items.length === 0) return [];
    // Concurrent first writes of a path race on the version's primary key: run again, as put().
    return this.db.tx(
      async (q) => {
        const heads = await this.heads(
          tenantId,
          items.map((i) => i.path),
          q,
          true,
        );
        const out: (FileRecord | CacheroachError)[] = new Array(items.length);
        const rows: VersionRow[] = [];
        const written = new Map<string, number>(); // path → index in items
        items.forEach((item, i) => {
          const head = heads.get(item.path);
          const v = item.version;
          const failed = v.precondition && preconditionError(item.path, head, v.precondition);
          if (failed) {
            out[i] = failed;
            return;
          }
          rows.push(versionRow(item.path, head, v));
          written.set(item.path, i);
        });
        if (rows.length === 0) return out;
        await requireRopes(
          q,
          tenantId,
          [...written.values()].map((i) => items[i]!.version.rope),
        );
        // One round trip: the versions, and the heads from exactly the rows inserted.
        const r = await q.query<FileRow>(PUT_MANY, [tenantId, ...versionColumns(rows)]);
        for (const row of r.rows) {
          const file = fileFromRow(row);
          const i = written.get(file.path);
          if (i === undefined) throw new Error(`putMany: unexpected row for ${file.path}`);
          out[i] = file;
        }
        if (r.rows.length !== written.size) throw new Error("putMany: not every version was written");
        return out;
      },
      { retryIf: isUniqueViolation },
    );
  }

  /**
   * The heads (live or deleted) of the given paths, keyed by path; paths without one are absent.
   * With `lock`, the rows are locked for update (inside a transaction).
   */
  async heads(
    tenantId: string,
    paths: readonly string[],
    q: Queryable = this.db,
    lock = false,
  ): Promise<Map<string, FileRecord>> {
    const rows = await inBatches(
      paths,
      LOOKUP_BATCH,
      async (batch) =>
        (await q.query<FileRow>(lock ? HEADS_FOR_UPDATE : HEADS, [tenantId, byteaArray(batch.map(pathKey))]))
          .rows,
    );
    const out = new Map<string, FileRecord>();
    for (const row of rows) {
      const f = fileFromRow(row);
      out.set(f.path, f);
    }
    return out;
  }

  /**
   * The latest live version (`version` 0), or that version when it is not deleted; undefined when
   * there is none. (A database failure throws: absence is only ever this result.)
   */
  async get(tenantId: string, path: string, version = 0): Promise<FileRecord | undefined> {
    if (version === 0) {
      const head = await this.head(this.db, tenantId, path, false);
      return head && !head.dtime ? head : undefined;
    }
    const r = await this.db.query<FileRow>(
      `SELECT ${FILE_COLUMNS} FROM file_versions WHERE tenant_id = $1 AND path = $2 AND version = $3`,
      [tenantId, pathKey(path), version],
    );
    const row = r.rows[0];
    return row && !row.dtime ? fileFromRow(row) : undefined;
  }

  /**
   * At most `limit` stored versions of a path older than `before` (0: from the newest), newest
   * first: live, superseded and deleted ones (one range scan of the primary key).
   */
  async versions(tenantId: string, path: string, before: number, limit: number): Promise<StoredVersion[]> {
    const r = await this.db.query<FileRow & { head_version: string | null }>(
      `SELECT ${FILE_COLUMNS},
         (SELECT h.version FROM files AS h WHERE h.tenant_id = $1 AND h.path = $2 AND h.dtime IS NULL) AS head_version
       FROM file_versions
       WHERE tenant_id = $1 AND path = $2 AND version < $3
       ORDER BY version DESC LIMIT $4`,
      [tenantId, pathKey(path), before === 0 ? Number.MAX_SAFE_INTEGER : before, limit],
    );
    return r.rows.map((row) => ({
      file: fileFromRow(row),
      live: row.head_version !== null && row.dtime === null && row.head_version === row.version,
    }));
  }

  /**
   * Lists live files below `prefix/` ("" = whole tenant), and the file at `prefix` itself when
   * `withPrefix` (callers pass it only when the caller may read that path: a "/dir/*" grant does
   * not cover "/dir"), in bytewise path order, strictly after `after`. `tenantId` must be
   * canonical (as `parseId` returns it): the records carry it as given.
   */
  async list(
    tenantId: string,
    prefix: string,
    after: string | undefined,
    limit: number,
    withPrefix = true,
  ): Promise<FilePage> {
    const [lo, hi] = belowRange(prefix);
    const afterKey = after === undefined ? Buffer.alloc(0) : pathKey(after);
    // The prefix itself ($5) sorts before everything below it ($2 = "prefix/"), so [$5, $3) bounds
    // the index scan on both ends; without the bounds the scan began at the tenant's first path
    // (first page) or ran to its last (last page), filtering out every other file.
    const r = await this.db.query<FileListRow>(
      `SELECT ${LIST_COLUMNS} FROM files
       WHERE tenant_id = $1 AND dtime IS NULL AND path > $4 AND path >= $5 AND path < $3
         AND (path >= $2 OR (path = $5 AND $7))
       ORDER BY path LIMIT $6`,
      // One row more than the page: a listing that ends exactly at a page's end says so, rather
      // than costing the client a call that returns nothing.
      [tenantId, lo, hi, afterKey, pathKey(prefix === "" ? "/" : prefix), limit + 1, withPrefix],
    );
    const more = r.rows.length > limit;
    const files = (more ? r.rows.slice(0, limit) : r.rows).map((row) => fileFromListRow(tenantId, row));
    return { files, after: more ? files[files.length - 1]!.path : undefined };
  }

  /**
   * Paths of at most `limit` live files of the tenant whose content is `ropeHash` and whose path is
   * within `within`: every path, or the given exact paths and "/dir/*" patterns. One indexed
   * lookup (files_by_content) per pattern.
   */
  async liveHolders(
    tenantId: string,
    ropeHash: Buffer,
    within: "all" | readonly string[],
    limit: number,
  ): Promise<string[]> {
    if (within !== "all" && within.length === 0) return [];
    const ranges = within === "all" ? [EVERY_PATH] : within.map(pathRange);
    const r = await this.db.query<{ path: Buffer }>(LIVE_HOLDERS, [
      tenantId,
      ropeHash,
      limit,
      byteaArray(ranges.map((x) => x[0])),
      byteaArray(ranges.map((x) => x[1])),
    ]);
    return r.rows.map((row) => row.path.toString("utf8"));
  }

  /** True when live files exist strictly below `dir/` ("" = root). */
  async isDirectory(tenantId: string, dir: string): Promise<boolean> {
    const [lo, hi] = belowRange(dir);
    const r = await this.db.query(
      "SELECT 1 FROM files WHERE tenant_id = $1 AND dtime IS NULL AND path >= $2 AND path < $3 LIMIT 1",
      [tenantId, lo, hi],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * The first `limit` immediate children of directory `dir` ("" = root), in bytewise order:
   * files directly in it and the names of sub-directories (which exist only as prefixes of
   * deeper files). One statement, whatever the number of children: a recursive query walks the
   * index inside the database, each step one seek that skips a whole sub-tree (after "dir/a/…"
   * it seeks past "dir/a/" + 0xFF, a byte UTF-8 never contains), so a directory over millions of
   * files lists as fast as its children are few, and without a round trip per child.
   */
  async children(tenantId: string, dir: string, limit: number): Promise<DirEntry[]> {
    if (limit <= 0) return [];
    const [lo, hi] = belowRange(dir);
    const r = await this.db.query<FileRow>(
      `WITH RECURSIVE walk (path, n) AS (
         SELECT (SELECT path FROM files
                 WHERE tenant_id = $1 AND dtime IS NULL AND path >= $2 AND path < $3
                 ORDER BY path LIMIT 1), 1
         UNION ALL
         SELECT (SELECT f.path FROM files f
                 WHERE f.tenant_id = $1 AND f.dtime IS NULL AND f.path < $3
                   AND f.path > CASE WHEN position($4 IN substring(w.path FROM $5)) = 0 THEN w.path
                     ELSE substring(w.path FROM 1 FOR $5 - 1 + position($4 IN substring(w.path FROM $5))) || $6 END
                 ORDER BY f.path LIMIT 1), w.n + 1
         FROM walk w
         WHERE w.path IS NOT NULL AND w.n < $7)
       SELECT ${FILE_COLUMNS} FROM files
       WHERE tenant_id = $1 AND path IN (SELECT path FROM walk WHERE path IS NOT NULL)
       ORDER BY path`,
      [tenantId, lo, hi, Buffer.from("/"), lo.length + 1, Buffer.from([0xff]), limit],
    );
    return r.rows.map((row) => {
      const file = fileFromRow(row);
      const rest = file.path.slice(dir.length + 1);
      const slash = rest.indexOf("/");
      return slash < 0 ? { name: rest, file } : { name: rest.slice(0, slash), file: undefined };
    });
  }

  /** Soft-deletes the live file at a path; returns the deleted version. */
  async delete(tenantId: string, path: string, pre: WritePrecondition | undefined): Promise<number> {
    return this.db.tx(async (q) => {
      const head = await this.head(q, tenantId, path, true);
      if (!head || head.dtime) throw noFile(path);
      if (pre) checkPrecondition(path, head, pre);
      await q.query("UPDATE files SET dtime = now() WHERE tenant_id = $1 AND path = $2", [
        tenantId,
        pathKey(path),
      ]);
      await q.query(
        "UPDATE file_versions SET dtime = now() WHERE tenant_id = $1 AND path = $2 AND dtime IS NULL",
        [tenantId, pathKey(path)],
      );
      return head.version;
    });
  }

  private async head(
    q: Queryable,
    tenantId: string,
    path: string,
    lock: boolean,
  ): Promise<FileRecord | undefined> {
    const r = await q.query<FileRow>(
      `SELECT ${FILE_COLUMNS} FROM files WHERE tenant_id = $1 AND path = $2${lock ? " FOR UPDATE" : ""}`,
      [tenantId, pathKey(path)],
    );
    const row = r.rows[0];
    return row ? fileFromRow(row) : undefined;
  }
}

/** A new version's values besides tenant_id and the times the database sets. */
interface VersionRow {
  readonly path: Buffer;
  /** The next version number after the head's. */
  readonly version: number;
  readonly ropeHash: Buffer;
  readonly size: number;
  readonly chunkSize: number;
  readonly contentType: string;
  /** JSON text. */
  readonly meta: string;
  /** The head's ctime while it is live, else null (now()). */
  readonly ctime: Date | null;
}

function versionRow(path: string, head: FileRecord | undefined, v: NewVersion): VersionRow {
  const live = head && !head.dtime;
  return {
    path: pathKey(path),
    version: (head?.version ?? 0) + 1,
    ropeHash: v.rope.hash,
    size: v.rope.size,
    chunkSize: v.rope.chunkSize,
    contentType: v.contentType,
    meta: JSON.stringify(v.meta),
    ctime: live ? head.ctime : null,
  };
}

/** A version's values in FILE_COLUMNS order, after tenant_id and up to ctime. */
function versionValues(r: VersionRow): unknown[] {
  return [r.path, r.version, r.ropeHash, r.size, r.chunkSize, r.contentType, r.meta, r.ctime];
}

/** Versions' values as the arrays of {@link PUT_MANY}, in the order of {@link versionValues}. */
function versionColumns(rows: readonly VersionRow[]): unknown[] {
  return [
    byteaArray(rows.map((r) => r.path)),
    rows.map((r) => r.version),
    byteaArray(rows.map((r) => r.ropeHash)),
    rows.map((r) => r.size),
    rows.map((r) => r.chunkSize),
    rows.map((r) => r.contentType),
    rows.map((r) => r.meta),
    rows.map((r) => r.ctime),
  ];
}

/** The ERR_NOT_FOUND of a file (`version` 0: its latest version) that {@link FileStore.get} did not find. */
export function noFile(path: string, version = 0): CacheroachError {
  return new CacheroachError(
    "ERR_NOT_FOUND",
    version === 0 ? `no file at ${path}` : `no version ${version} of ${path}`,
  );
}

/**
 * A write precondition that does not hold. Its message names the path and what the caller asked
 * for, never what the path holds; {@link detail} adds that (version, content hash) for callers
 * that may read the path, which the RPC and HTTP boundaries check ({@link revealIf}).
 */
export class PreconditionFailed extends CacheroachError {
  constructor(
    readonly path: string,
    message: string,
    /** The message with what the path holds. */
    readonly detail: string,
  ) {
    super("ERR_PRECONDITION_FAILED", message);
  }

  /** `err` with its detailed message when it is a PreconditionFailed and `mayRead(path)`. */
  static async revealIf<E>(
    err: E,
    mayRead: (path: string) => Promise<boolean>,
  ): Promise<E | CacheroachError> {
    if (!(err instanceof PreconditionFailed) || !(await mayRead(err.path))) return err;
    return new CacheroachError("ERR_PRECONDITION_FAILED", err.detail, { cause: err });
  }
}

/** The ERR_PRECONDITION_FAILED error `pre` fails with, or undefined when it holds. */
export function preconditionError(
  path: string,
  head: FileRecord | undefined,
  pre: WritePrecondition,
): PreconditionFailed | undefined {
  try {
    checkPrecondition(path, head, pre);
    return undefined;
  } catch (err) {
    if (err instanceof PreconditionFailed) return err;
    throw err;
  }
}

/** Throws {@link PreconditionFailed} when `pre` fails, naming what was expected (and found). */
export function checkPrecondition(path: string, head: FileRecord | undefined, pre: WritePrecondition): void {
  const live = head && !head.dtime ? head : undefined;
  const fail = (message: string, detail: string) => {
    throw new PreconditionFailed(path, message, detail);
  };
  switch (pre.kind) {
    case "mustNotExist":
      if (live) fail(`${path} already exists`, `${path} already exists (version ${live.version})`);
      return;
    case "mustExist":
      if (!live) fail(`${path} does not exist`, `${path} does not exist`);
      return;
    case "version":
      if (!live || live.version !== pre.version) {
        fail(
          `${path} is not at the version the precondition names`,
          `${path} is ${live ? `at version ${live.version}` : "absent"}, not version ${pre.version}`,
        );
      }
      return;
    case "contentHash": {
      if (!live?.ropeHash.equals(pre.hash)) {
        const wanted = `${pre.hash.toString("hex").slice(0, 16)}…`;
        fail(
          `${path} does not hold the content the precondition names`,
          `${path} ${live ? `has content ${live.ropeHash.toString("hex").slice(0, 16)}…` : "is absent"}, not ${wanted}`,
        );
      }
      return;
    }
  }
}
