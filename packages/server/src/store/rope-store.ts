import { HASH_LENGTH, RopeHasher } from "@cacheroach/core";
import { LRUCache } from "lru-cache";
import type { Db } from "../db/db.js";
import { StoreError } from "../errors.js";
import type { ChunkStore } from "./chunk-store.js";
import { damagedContent } from "./damaged-content.js";
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
    if (entryCount > SMALL_LISTS) {
      // Long lists: skip copying those of ropes already committed.
      const known = await this.existing(
        tenantId,
        [...todo.values()].map((t) => t.rope.hash),
      );
      for (const k of known) todo.delete(k);
      if (todo.size === 0) return ropes;
    }
    const pending = [...todo.values()];
    if (pending.length === 0) return ropes;
    if (entryCount <= SMALL_LISTS) {
      // Short lists: lists and headers in one statement, atomic, so a header never lacks its list.
      const params: unknown[] = [tenantId];
      const rows: string[] = [];
      for (const { rope, entries } of pending) {
        for (const e of entries) {
          params.push(rope.hash, e.offset, e.hash, e.length);
          const n = params.length;
          rows.push(`($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`);
        }
      }
      const headers = pending.map(({ rope }) => {
        params.push(rope.hash, rope.size, rope.chunkCount, rope.chunkSize);
        const n = params.length;
        return `($${n - 3}::BYTEA, $${n - 2}::INT8, $${n - 1}::INT8, $${n}::INT4)`;
      });
      // The headers' SELECT refers to the list insert because CockroachDB refuses a CTE with side
      // effects that the query does not use.
      await this.db.bulk(
        rows.length
          ? `WITH l AS (INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) VALUES ${rows.join(", ")}
               ON CONFLICT (tenant_id, rope_hash, off) DO NOTHING RETURNING 1)
             INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size)
             SELECT $1, h.hash, h.size, h.chunk_count, h.chunk_size
             FROM (VALUES ${headers.join(", ")}) AS h (hash, size, chunk_count, chunk_size)
             WHERE (SELECT count(*) FROM l) >= 0
             ON CONFLICT (tenant_id, hash) DO NOTHING`
          : `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size)
             SELECT $1, h.hash, h.size, h.chunk_count, h.chunk_size
             FROM (VALUES ${headers.join(", ")}) AS h (hash, size, chunk_count, chunk_size)
             ON CONFLICT (tenant_id, hash) DO NOTHING`,
        params,
      );
      return ropes;
    }
    let params: unknown[] = [tenantId];
    let rows: string[] = [];
    const flush = async () => {
      if (rows.length === 0) return;
      await this.db.bulk(
        `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) VALUES ${rows.join(",")}
         ON CONFLICT (tenant_id, rope_hash, off) DO NOTHING`,
        params,
      );
      params = [tenantId];
      rows = [];
    };
    for (const { rope, entries } of pending) {
      for (const e of entries) {
        params.push(rope.hash, e.offset, e.hash, e.length);
        const n = params.length;
        rows.push(`($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`);
        if (rows.length === 500) await flush();
      }
    }
    await flush();
    await this.insertHeaders(
      tenantId,
      pending.map((t) => t.rope),
    );
    return ropes;
  }

  /**
   * Verifies an upload's chunk list (contiguous from 0, every chunk but the last exactly
   * `chunkSize`), computes its rope hash and commits the rope by copying the list in batches.
   * Idempotent: re-running it after a crash finishes the same rope.
   */
  async commitUpload(
    tenantId: string,
    uploadId: string,
    expectedSize: number,
    chunkSize: number,
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
          throw new StoreError("ERR_BAD_UPLOAD_STATE", `upload data is not contiguous at offset ${h.size}`);
        }
        lastShort = row.length !== chunkSize;
        h.add(row.chunk_hash, row.length);
        after = off;
      }
      if (r.rows.length < 4096) break;
    }
    if (h.size !== expectedSize) {
      throw new StoreError(
        "ERR_BAD_UPLOAD_STATE",
        `upload holds ${h.size} bytes but its state says ${expectedSize} (unpublished progress is lost if the server restarts); begin the upload again`,
      );
    }
    const rope: Rope = { hash: h.digest(), size: h.size, chunkCount: h.count, chunkSize };
    if (await this.header(tenantId, rope.hash)) return rope;
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
        const data = await next.data;
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
  async readWhole(tenantId: string, ropes: readonly Rope[]): Promise<Map<string, Buffer | StoreError>> {
    const out = new Map<string, Buffer | StoreError>();
    const lists = new Map<string, ChunkEntry[]>();
    const want = new Map<string, Rope>();
    for (const r of ropes) {
      const k = r.hash.toString("hex");
      if (r.size === 0) out.set(k, Buffer.alloc(0));
      else want.set(k, r);
    }
    const hashes = [...want.values()].map((r) => r.hash);
    for (let i = 0; i < hashes.length; i += 1000) {
      const params: unknown[] = [tenantId];
      const marks = hashes.slice(i, i + 1000).map((h) => {
        params.push(h);
        return `$${params.length}`;
      });
      const r = await this.db.query<{ rope_hash: Buffer; off: string; chunk_hash: Buffer; length: number }>(
        `SELECT rope_hash, off, chunk_hash, length FROM rope_chunks
         WHERE tenant_id = $1 AND rope_hash IN (${marks.join(", ")}) ORDER BY rope_hash, off`,
        params,
      );
      for (const row of r.rows) {
        const k = row.rope_hash.toString("hex");
        let list = lists.get(k);
        if (!list) {
          list = [];
          lists.set(k, list);
        }
        list.push({ offset: Number(row.off), hash: row.chunk_hash, length: row.length });
      }
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
    const out = new Set<string>();
    for (let i = 0; i < hashes.length; i += 1000) {
      const params: unknown[] = [tenantId];
      const marks = hashes.slice(i, i + 1000).map((h) => {
        params.push(h);
        return `$${params.length}`;
      });
      const r = await this.db.query<{ hash: Buffer }>(
        `SELECT hash FROM ropes WHERE tenant_id = $1 AND hash IN (${marks.join(", ")})`,
        params,
      );
      for (const row of r.rows) out.add(row.hash.toString("hex"));
    }
    return out;
  }

  private async insertHeader(tenantId: string, rope: Rope) {
    await this.insertHeaders(tenantId, [rope]);
  }

  private async insertHeaders(tenantId: string, ropes: readonly Rope[]) {
    for (let i = 0; i < ropes.length; i += 500) {
      const params: unknown[] = [tenantId];
      const rows = ropes.slice(i, i + 500).map((rope) => {
        if (rope.hash.length !== HASH_LENGTH) throw new Error("bad rope hash");
        params.push(rope.hash, rope.size, rope.chunkCount, rope.chunkSize);
        const n = params.length;
        return `($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
      });
      await this.db.bulk(
        `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size) VALUES ${rows.join(",")}
         ON CONFLICT (tenant_id, hash) DO NOTHING`,
        params,
      );
    }
  }
}

/** A rope's whole content from its chunk list and chunks, checked to cover it exactly, in order. */
function assembleWhole(
  rope: Rope,
  list: readonly ChunkEntry[],
  chunks: Map<string, Buffer>,
): Buffer | StoreError {
  const parts: Buffer[] = [];
  let pos = 0;
  for (const e of list) {
    const data = chunks.get(e.hash.toString("hex"));
    if (!data) return damagedContent(rope.hash, `the chunk at offset ${e.offset} is missing`);
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
