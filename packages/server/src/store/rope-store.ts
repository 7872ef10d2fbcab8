import { HASH_LENGTH, RopeHasher } from "@cacheroach/core";
import { LRUCache } from "lru-cache";
import { byteaArray, inBatches } from "../db/arrays.js";
import type { Db } from "../db/db.js";
import { isForeignKeyViolation } from "../db/sqlstate.js";
import { CacheroachError } from "../errors.js";
import type { ChunkStore } from "./chunk-store.js";
import { CorruptChunkError, damagedContent } from "./damaged-content.js";
import { type LiveHead, readLiveHeads } from "./live-heads.js";

/** A committed rope's header. */
export interface Rope {
  readonly hash: Buffer;
  readonly size: number;
  readonly chunkCount: number;
  readonly chunkSize: number;
}

/** One entry of a rope's chunk list. */
export interface ChunkEntry {
  readonly offset: number;
  readonly hash: Buffer;
  readonly length: number;
}

/** Rows per statement when writing in-memory chunk lists and headers. */
const LIST_BATCH = 500;
/** Ropes per lookup statement. */
const LOOKUP_BATCH = 1000;
/** Rows per statement when copying an upload's chunk list into a rope. */
const COPY_BATCH = 4096;
/** Chunk-list entries up to which ropes are committed in one statement, without a lookup first. */
const SMALL_LISTS = 1000;
/** Chunk-list rows fetched per query while reading. */
const LIST_PAGE = 256;
/** Ropes remembered as checked intact (per process; a rope is immutable once committed). */
const INTACT_CACHE = 100_000;

/**
 * Committed, immutable ropes. A rope's chunk list is written first and its header row last, so
 * a rope whose header exists is complete; identical contents share one rope per tenant.
 */
export class RopeStore {
  private readonly intact = new LRUCache<string, true>({ max: INTACT_CACHE });

  constructor(
    private readonly db: Db,
    private readonly chunks: ChunkStore,
    private readonly readAhead: number,
  ) {}

  /**
   * Loads a rope for reading or linking, or undefined when the tenant has no such rope. A rope
   * returned is intact: its chunk list covers it exactly and every listed chunk is stored with the
   * listed length (checked on first use in this process, see {@link checkIntact}); damaged content
   * is ERR_DATA_LOSS.
   */
  async get(tenantId: string, hash: Buffer): Promise<Rope | undefined> {
    const rope = await this.header(tenantId, hash);
    if (rope) await this.checkIntact(tenantId, rope);
    return rope;
  }

  /** Loads a rope header as stored, or undefined (no check of its chunks). */
  private async header(tenantId: string, hash: Buffer): Promise<Rope | undefined> {
    const r = await this.db.query<{ size: string; chunk_count: string; chunk_size: number }>(
      "SELECT size, chunk_count, chunk_size FROM ropes WHERE tenant_id = $1 AND hash = $2",
      [tenantId, hash],
    );
    const row = r.rows[0];
    return row
      ? { hash, size: Number(row.size), chunkCount: Number(row.chunk_count), chunkSize: row.chunk_size }
      : undefined;
  }

  /**
   * Throws ERR_DATA_LOSS unless the rope's chunk list covers [0, size) in order (every chunk
   * `chunkSize` long but the last) and every listed chunk is stored with the listed length. One
   * aggregate statement; `length(data)` reads a stored value's header, not its bytes, on
   * PostgreSQL. Ropes are immutable, so a rope found intact is remembered.
   */
  async checkIntact(tenantId: string, rope: Rope): Promise<void> {
    const key = `${tenantId}:${rope.hash.toString("hex")}`;
    if (this.intact.has(key)) return;
    const r = await this.db.query<{
      n: string;
      total: string | null;
      first: string | null;
      last: string | null;
      misplaced: string | null;
      missing_at: string | null;
      wrong_at: string | null;
    }>(
      `SELECT count(*) AS n, sum(rc.length) AS total, min(rc.off) AS first, max(rc.off) AS last,
         sum(CASE WHEN rc.off % $3 <> 0 OR (rc.length <> $3 AND rc.off + rc.length <> $4) THEN 1 ELSE 0 END) AS misplaced,
         min(CASE WHEN c.stored IS NULL THEN rc.off END) AS missing_at,
         min(CASE WHEN c.stored <> rc.length THEN rc.off END) AS wrong_at
       FROM rope_chunks AS rc
       LEFT JOIN LATERAL (SELECT length(data) AS stored FROM chunks
         WHERE tenant_id = $1 AND hash = rc.chunk_hash OFFSET 0) AS c ON true
       WHERE rc.tenant_id = $1 AND rc.rope_hash = $2`,
      [tenantId, rope.hash, rope.chunkSize, rope.size],
    );
    const row = r.rows[0]!;
    const n = Number(row.n);
    if (row.missing_at !== null)
      throw damagedContent(rope.hash, `the chunk at offset ${row.missing_at} is missing`);
    if (row.wrong_at !== null) {
      throw damagedContent(
        rope.hash,
        `the chunk at offset ${row.wrong_at} is not as long as its chunk list says`,
      );
    }
    const covers =
      n === rope.chunkCount &&
      Number(row.total ?? 0) === rope.size &&
      (n === 0 ||
        (Number(row.first) === 0 &&
          Number(row.last) === (n - 1) * rope.chunkSize &&
          Number(row.misplaced) === 0));
    if (!covers) {
      throw damagedContent(
        rope.hash,
        `its chunk list holds ${n} chunk(s) and ${row.total ?? 0} bytes, not ${rope.chunkCount} and ${rope.size}`,
      );
    }
    this.intact.set(key, true);
  }

  /** Commits a rope from an in-memory chunk list (small, one-shot contents). */
  async commitList(tenantId: string, entries: readonly ChunkEntry[], chunkSize: number): Promise<Rope> {
    return (await this.commitLists(tenantId, [entries], chunkSize))[0]!;
  }

  /**
   * Commits ropes from in-memory chunk lists (whose chunks are stored), in a few statements
   * whatever their number: one lookup of the ropes already committed, then the chunk lists of
   * the others, then their headers (last, so a header always finds its complete list).
   */
  async commitLists(
    tenantId: string,
    lists: readonly (readonly ChunkEntry[])[],
    chunkSize: number,
    rewrite = false,
  ): Promise<Rope[]> {
    const ropes = lists.map((entries): Rope => {
      const h = new RopeHasher();
      for (const e of entries) h.add(e.hash, e.length);
      return { hash: h.digest(), size: h.size, chunkCount: h.count, chunkSize };
    });
    const todo = new Map<string, { rope: Rope; entries: readonly ChunkEntry[] }>();
    for (const [i, rope] of ropes.entries())
      todo.set(rope.hash.toString("hex"), { rope, entries: lists[i]! });
    const entryCount = lists.reduce((n, l) => n + l.length, 0);
    if (entryCount > SMALL_LISTS && !rewrite) {
      // Long lists: skip copying those of ropes already committed (unless asked to rewrite them:
      // a rope found incomplete, see FileStore's rope check).
      const known = await this.existing(
        tenantId,
        [...todo.values()].map((t) => t.rope.hash),
      );
      for (const k of known) todo.delete(k);
      if (todo.size === 0) return ropes;
    }
    try {
      await this.writeLists(tenantId, [...todo.values()], entryCount);
    } catch (err) {
      // A listed chunk was collected after the writer stored it and before this list referenced
      // it (garbage collection); the writer stores it again and retries.
      if (!isForeignKeyViolation(err)) throw err;
      throw new CacheroachError(
        "ERR_CONTENT_COLLECTED",
        "a chunk of this content was collected while it was written; write it again",
        { cause: err },
      );
    }
    return ropes;
  }

  /** The chunk lists, then the headers, of ropes not yet committed (see {@link commitLists}). */
  private async writeLists(
    tenantId: string,
    pending: readonly { rope: Rope; entries: readonly ChunkEntry[] }[],
    entryCount: number,
  ): Promise<void> {
    if (pending.length === 0) return;
    const list = pending.flatMap(({ rope, entries }) => entries.map((e) => ({ rope: rope.hash, e })));
    if (entryCount <= SMALL_LISTS) {
      // Short lists: lists and headers in one statement, atomic, so a header never lacks its list.
      await this.db.bulk(COMMIT_LISTS, [
        tenantId,
        ...listColumns(list),
        ...headerColumns(pending.map((t) => t.rope)),
      ]);
      return;
    }
    await inBatches(list, LIST_BATCH, async (batch) => {
      await this.db.bulk(INSERT_LIST, [tenantId, ...listColumns(batch)]);
    });
    await this.insertHeaders(
      tenantId,
      pending.map((t) => t.rope),
    );
  }

  /**
   * Verifies an upload's chunk list (contiguous from 0, every chunk but the last exactly
   * `chunkSize`), computes its rope hash and commits the rope by copying the list in batches.
   * Idempotent: re-running it after a crash finishes the same rope. A rope that exists already is
   * not copied again unless `rewrite` (it was found incomplete or collected; see FileStore).
   */
  async commitUpload(
    tenantId: string,
    uploadId: string,
    expectedSize: number,
    chunkSize: number,
    rewrite = false,
  ): Promise<Rope> {
    const h = new RopeHasher();
    let after = -1;
    let lastShort = false;
    for (;;) {
      const r = await this.db.query<{ off: string; chunk_hash: Buffer; length: number }>(
        "SELECT off, chunk_hash, length FROM upload_chunks WHERE upload_id = $1 AND off > $2 ORDER BY off LIMIT 4096",
        [uploadId, after],
      );
      for (const row of r.rows) {
        const off = Number(row.off);
        if (off !== h.size || lastShort) {
          throw new CacheroachError(
            "ERR_BAD_UPLOAD_STATE",
            `upload data is not contiguous at offset ${h.size}`,
          );
        }
        lastShort = row.length !== chunkSize;
        h.add(row.chunk_hash, row.length);
        after = off;
      }
      if (r.rows.length < 4096) break;
    }
    if (h.size !== expectedSize) {
      throw new CacheroachError(
        "ERR_BAD_UPLOAD_STATE",
        `upload holds ${h.size} bytes but its state says ${expectedSize} (unpublished progress is lost if the server restarts); begin the upload again`,
      );
    }
    const rope: Rope = { hash: h.digest(), size: h.size, chunkCount: h.count, chunkSize };
    if (!rewrite && (await this.header(tenantId, rope.hash))) return rope;
    for (let lo = 0; lo < Math.max(h.size, 1); lo += COPY_BATCH * chunkSize) {
      await this.db.bulk(
        `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length)
         SELECT tenant_id, $2, off, chunk_hash, length FROM upload_chunks
         WHERE upload_id = $1 AND off >= $3 AND off < $4
         ON CONFLICT (tenant_id, rope_hash, off) DO NOTHING`,
        [uploadId, rope.hash, lo, lo + COPY_BATCH * chunkSize],
      );
    }
    await this.insertHeader(tenantId, rope);
    return rope;
  }

  /** A page of a rope's chunk list starting at the chunk holding `fromOffset`. */
  async entries(tenantId: string, rope: Rope, fromOffset: number, limit: number): Promise<ChunkEntry[]> {
    const start = Math.floor(fromOffset / rope.chunkSize) * rope.chunkSize;
    const r = await this.db.query<{ off: string; chunk_hash: Buffer; length: number }>(
      `SELECT off, chunk_hash, length FROM rope_chunks WHERE tenant_id = $1 AND rope_hash = $2 AND off >= $3
       ORDER BY off LIMIT $4`,
      [tenantId, rope.hash, start, limit],
    );
    return r.rows.map((row) => ({ offset: Number(row.off), hash: row.chunk_hash, length: row.length }));
  }

  /**
   * Streams bytes [offset, offset+length) of a rope, chunk by chunk, fetching up to `readAhead`
   * chunks ahead. Memory stays bounded by readAhead × chunk size whatever the rope's size.
   */
  async *read(tenantId: string, rope: Rope, offset: number, length: number): AsyncGenerator<Buffer> {
    const end = Math.min(rope.size, offset + length);
    if (offset >= end) return;
    let pos = offset;
    let pageFrom = offset;
    const pending: { entry: ChunkEntry; data: Promise<Buffer> }[] = [];
    let page: ChunkEntry[] = [];
    let pageDone = false;
    const refill = async () => {
      while (pending.length < this.readAhead) {
        if (page.length === 0) {
          if (pageDone) return;
          page = await this.entries(tenantId, rope, pageFrom, LIST_PAGE);
          if (page.length < LIST_PAGE) pageDone = true;
          const last = page[page.length - 1];
          if (last) pageFrom = last.offset + last.length;
          if (page.length === 0) return;
        }
        const entry = page.shift()!;
        if (entry.offset >= end) {
          page = [];
          pageDone = true;
          return;
        }
        const data = this.chunks.get(tenantId, entry.hash);
        data.catch(() => {}); // observed when awaited below; avoid an unhandled rejection meanwhile
        pending.push({ entry, data });
      }
    };
    try {
      while (pos < end) {
        await refill();
        const next = pending.shift();
        if (!next) throw damagedContent(rope.hash, `its chunk list ends before offset ${pos}`);
        const data = await next.data.catch((err: unknown) => {
          if (!(err instanceof CorruptChunkError)) throw err;
          throw damagedContent(rope.hash, `the chunk at offset ${next.entry.offset} does not match its hash`);
        });
        if (data.length !== next.entry.length) {
          throw damagedContent(
            rope.hash,
            `the chunk at offset ${next.entry.offset} is not as long as its chunk list says`,
          );
        }
        const from = Math.max(0, pos - next.entry.offset);
        const to = Math.min(data.length, end - next.entry.offset);
        if (to > from) {
          yield from === 0 && to === data.length ? data : data.subarray(from, to);
          pos = next.entry.offset + to;
        }
      }
    } finally {
      pending.length = 0;
    }
  }

  /**
   * The whole contents of small ropes, keyed by hex rope hash: one query for all their chunk
   * lists, one for their chunks (those not in the chunk cache). Callers bound the total size.
   * Content the database does not hold whole is an ERR_DATA_LOSS in place of its bytes, so one
   * damaged rope does not fail the others.
   */
  async readWhole(tenantId: string, ropes: readonly Rope[]): Promise<Map<string, Buffer | CacheroachError>> {
    const out = new Map<string, Buffer | CacheroachError>();
    const lists = new Map<string, ChunkEntry[]>();
    const want = new Map<string, Rope>();
    for (const r of ropes) {
      const k = r.hash.toString("hex");
      if (r.size === 0) out.set(k, Buffer.alloc(0));
      else want.set(k, r);
    }
    const rows = await inBatches(
      [...want.values()].map((r) => r.hash),
      LOOKUP_BATCH,
      async (batch) =>
        (
          await this.db.query<{ rope_hash: Buffer; off: string; chunk_hash: Buffer; length: number }>(
            `SELECT rope_hash, off, chunk_hash, length FROM rope_chunks
             WHERE tenant_id = $1 AND rope_hash = ANY($2::BYTEA[]) ORDER BY rope_hash, off`,
            [tenantId, byteaArray(batch)],
          )
        ).rows,
    );
    for (const row of rows) {
      const k = row.rope_hash.toString("hex");
      let list = lists.get(k);
      if (!list) {
        list = [];
        lists.set(k, list);
      }
      list.push({ offset: Number(row.off), hash: row.chunk_hash, length: row.length });
    }
    const chunks = await this.chunks.getStored(
      tenantId,
      [...lists.values()].flatMap((l) => l.map((e) => e.hash)),
    );
    for (const [k, rope] of want) out.set(k, assembleWhole(rope, lists.get(k) ?? [], chunks));
    return out;
  }

  /**
   * The live heads of many paths, keyed by path, with the whole contents of those of at most
   * `inlineMax` bytes read in the same statement (see live-heads.ts). Callers bound
   * `inlineMax × paths.length`.
   */
  async liveHeads(
    tenantId: string,
    paths: readonly string[],
    inlineMax: number,
  ): Promise<Map<string, LiveHead>> {
    return readLiveHeads(this.db, tenantId, paths, inlineMax);
  }

  /** Hex hashes of the given ropes that the tenant has committed. */
  private async existing(tenantId: string, hashes: readonly Buffer[]): Promise<Set<string>> {
    const rows = await inBatches(
      hashes,
      LOOKUP_BATCH,
      async (batch) =>
        (
          await this.db.query<{ hash: Buffer }>(
            "SELECT hash FROM ropes WHERE tenant_id = $1 AND hash = ANY($2::BYTEA[])",
            [tenantId, byteaArray(batch)],
          )
        ).rows,
    );
    return new Set(rows.map((row) => row.hash.toString("hex")));
  }

  private async insertHeader(tenantId: string, rope: Rope) {
    await this.insertHeaders(tenantId, [rope]);
  }

  private async insertHeaders(tenantId: string, ropes: readonly Rope[]) {
    for (const rope of ropes) if (rope.hash.length !== HASH_LENGTH) throw new Error("bad rope hash");
    await inBatches(ropes, LIST_BATCH, async (batch) => {
      await this.db.bulk(INSERT_HEADERS, [tenantId, ...headerColumns(batch)]);
    });
  }
}

/** Chunk-list rows of tenant $1 as arrays: rope hashes $2, offsets $3, chunk hashes $4, lengths $5. */
const LIST_ROWS =
  "unnest($2::BYTEA[], $3::INT8[], $4::BYTEA[], $5::INT4[]) AS e (rope_hash, off, chunk_hash, length)";

/** Inserts chunk-list rows ({@link LIST_ROWS}); rows already there are kept. */
const INSERT_LIST = `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length)
  SELECT $1, e.rope_hash, e.off, e.chunk_hash, e.length FROM ${LIST_ROWS}
  ON CONFLICT (tenant_id, rope_hash, off) DO NOTHING`;

/** Inserts rope headers of tenant $1: hashes $2, sizes $3, chunk counts $4, chunk sizes $5. */
const INSERT_HEADERS = `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size)
  SELECT $1, h.hash, h.size, h.chunk_count, h.chunk_size
  FROM unnest($2::BYTEA[], $3::INT8[], $4::INT8[], $5::INT4[]) AS h (hash, size, chunk_count, chunk_size)
  ON CONFLICT (tenant_id, hash) DO NOTHING`;

/**
 * Chunk lists ({@link LIST_ROWS}) and then headers ($6…$9, as in {@link INSERT_HEADERS}) in one
 * statement. The headers' SELECT refers to the list insert because CockroachDB refuses a CTE with
 * side effects that the query does not use.
 */
const COMMIT_LISTS = `WITH l AS (${INSERT_LIST} RETURNING 1)
  INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size)
  SELECT $1, h.hash, h.size, h.chunk_count, h.chunk_size
  FROM unnest($6::BYTEA[], $7::INT8[], $8::INT8[], $9::INT4[]) AS h (hash, size, chunk_count, chunk_size)
  WHERE (SELECT count(*) FROM l) >= 0
  ON CONFLICT (tenant_id, hash) DO NOTHING`;

/** The four array parameters of {@link LIST_ROWS}. */
function listColumns(rows: readonly { rope: Buffer; e: ChunkEntry }[]): unknown[] {
  return [
    byteaArray(rows.map((r) => r.rope)),
    rows.map((r) => r.e.offset),
    byteaArray(rows.map((r) => r.e.hash)),
    rows.map((r) => r.e.length),
  ];
}

/** The four array parameters of rope headers (hash, size, chunk count, chunk size). */
function headerColumns(ropes: readonly Rope[]): unknown[] {
  return [
    byteaArray(ropes.map((r) => r.hash)),
    ropes.map((r) => r.size),
    ropes.map((r) => r.chunkCount),
    ropes.map((r) => r.chunkSize),
  ];
}

/** A rope's whole content from its chunk list and chunks, checked to cover it exactly, in order. */
function assembleWhole(
  rope: Rope,
  list: readonly ChunkEntry[],
  chunks: Map<string, Buffer | CorruptChunkError>,
): Buffer | CacheroachError {
  const parts: Buffer[] = [];
  let pos = 0;
  for (const e of list) {
    const data = chunks.get(e.hash.toString("hex"));
    if (!data) return damagedContent(rope.hash, `the chunk at offset ${e.offset} is missing`);
    if (data instanceof CorruptChunkError)
      return damagedContent(rope.hash, `the chunk at offset ${e.offset} does not match its hash`);
    if (e.offset !== pos) return damagedContent(rope.hash, `its chunk list has no chunk at offset ${pos}`);
    if (data.length !== e.length) {
      return damagedContent(
        rope.hash,
        `the chunk at offset ${e.offset} is not as long as its chunk list says`,
      );
    }
    parts.push(data);
    pos += data.length;
  }
  if (pos !== rope.size) {
    return damagedContent(rope.hash, `its chunk list holds ${pos} bytes, not ${rope.size}`);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, pos);
}
