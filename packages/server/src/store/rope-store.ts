import type { Db, Queryable } from "../db/db.js";
import { StoreError } from "../errors.js";
import { HASH_LENGTH, RopeHasher } from "../rope-hash.js";
import type { ChunkStore } from "./chunk-store.js";

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
/** Chunk-list rows fetched per query while reading. */
const LIST_PAGE = 256;

/**
 * Committed, immutable ropes. A rope's chunk list is written first and its header row last, so
 * a rope whose header exists is complete; identical contents share one rope per tenant.
 */
export class RopeStore {
  constructor(
    private readonly db: Db,
    private readonly chunks: ChunkStore,
    private readonly readAhead: number,
  ) {}

  /** Loads a rope header, or undefined. */
  async get(tenantId: string, hash: Buffer, q: Queryable = this.db): Promise<Rope | undefined> {
    const r = await q.query<{ size: string; chunk_count: string; chunk_size: number }>(
      "SELECT size, chunk_count, chunk_size FROM ropes WHERE tenant_id = $1 AND hash = $2",
      [tenantId, hash],
    );
    const row = r.rows[0];
    return row
      ? { hash, size: Number(row.size), chunkCount: Number(row.chunk_count), chunkSize: row.chunk_size }
      : undefined;
  }

  /** Commits a rope from an in-memory chunk list (small, one-shot contents). */
  async commitList(tenantId: string, entries: readonly ChunkEntry[], chunkSize: number): Promise<Rope> {
    const h = new RopeHasher();
    for (const e of entries) h.add(e.hash, e.length);
    const rope: Rope = { hash: h.digest(), size: h.size, chunkCount: h.count, chunkSize };
    if (await this.get(tenantId, rope.hash)) return rope;
    for (let i = 0; i < entries.length; i += 500) {
      const params: unknown[] = [tenantId, rope.hash];
      const rows = entries.slice(i, i + 500).map((e) => {
        params.push(e.offset, e.hash, e.length);
        const n = params.length;
        return `($1, $2, $${n - 2}, $${n - 1}, $${n})`;
      });
      await this.db.bulk(
        `INSERT INTO rope_chunks (tenant_id, rope_hash, off, chunk_hash, length) VALUES ${rows.join(",")}
         ON CONFLICT (tenant_id, rope_hash, off) DO NOTHING`,
        params,
      );
    }
    await this.insertHeader(tenantId, rope);
    return rope;
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
    if (await this.get(tenantId, rope.hash)) return rope;
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
        if (!next) throw new StoreError("ERR_UNAVAILABLE", `rope ends before offset ${pos}`);
        const data = await next.data;
        if (data.length !== next.entry.length) {
          throw new StoreError(
            "ERR_UNAVAILABLE",
            `chunk at offset ${next.entry.offset} has the wrong length`,
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

  private async insertHeader(tenantId: string, rope: Rope) {
    if (rope.hash.length !== HASH_LENGTH) throw new Error("bad rope hash");
    await this.db.bulk(
      `INSERT INTO ropes (tenant_id, hash, size, chunk_count, chunk_size) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, hash) DO NOTHING`,
      [tenantId, rope.hash, rope.size, rope.chunkCount, rope.chunkSize],
    );
  }
}
