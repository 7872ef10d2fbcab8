import { LRUCache } from "lru-cache";
import type { Db, Queryable } from "../db/db.js";
import { StoreError } from "../errors.js";

/** One chunk to store: its BLAKE3-256 hash (already verified by the caller) and bytes. */
export interface ChunkWrite {
  readonly hash: Buffer;
  readonly data: Buffer;
}

/** Options of {@link ChunkStore}. */
export interface ChunkStoreOptions {
  /** Bytes of chunk data kept in memory; 0 disables the cache. */
  cacheBytes: number;
  /** Concurrent INSERT statements per write call. */
  writeConcurrency: number;
}

/**
 * Content-addressed chunks, per tenant. Writing a chunk the tenant already has is a no-op, and
 * no lookup ever crosses tenants (the cache key is tenant-qualified too).
 */
export class ChunkStore {
  private readonly cache: LRUCache<string, Buffer> | undefined;

  constructor(
    private readonly db: Db,
    private readonly options: ChunkStoreOptions,
  ) {
    this.cache =
      options.cacheBytes > 0
        ? new LRUCache<string, Buffer>({ maxSize: options.cacheBytes, sizeCalculation: (b) => b.length || 1 })
        : undefined;
  }

  /** Stores chunks for a tenant; returns how many were new. Chunks run in parallel statements. */
  async put(tenantId: string, chunks: readonly ChunkWrite[]): Promise<number> {
    let stored = 0;
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const c = chunks[next++]!;
        const r = await this.db.bulk(
          "INSERT INTO chunks (tenant_id, hash, data) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, hash) DO NOTHING",
          [tenantId, c.hash, c.data],
        );
        stored += r.rowCount ?? 0;
      }
    };
    const n = Math.max(1, Math.min(this.options.writeConcurrency, chunks.length));
    await Promise.all(Array.from({ length: n }, worker));
    return stored;
  }

  /** The subset of `hashes` the tenant does not store, in input order, without duplicates. */
  async missing(tenantId: string, hashes: readonly Buffer[], q: Queryable = this.db): Promise<Buffer[]> {
    if (hashes.length === 0) return [];
    const present = new Set<string>();
    for (let i = 0; i < hashes.length; i += 1000) {
      const batch = hashes.slice(i, i + 1000);
      const params: unknown[] = [tenantId];
      const marks = batch.map((h) => {
        params.push(h);
        return `$${params.length}`;
      });
      const r = await q.query<{ hash: Buffer }>(
        `SELECT hash FROM chunks WHERE tenant_id = $1 AND hash IN (${marks.join(",")})`,
        params,
      );
      for (const row of r.rows) present.add(row.hash.toString("hex"));
    }
    const seen = new Set<string>();
    const out: Buffer[] = [];
    for (const h of hashes) {
      const k = h.toString("hex");
      if (present.has(k) || seen.has(k)) continue;
      seen.add(k);
      out.push(h);
    }
    return out;
  }

  /** A chunk's bytes. A missing chunk means the database lost data it promised to keep. */
  async get(tenantId: string, hash: Buffer): Promise<Buffer> {
    const key = `${tenantId}:${hash.toString("hex")}`;
    const hit = this.cache?.get(key);
    if (hit) return hit;
    // Base64 text: 1.33× the bytes on the wire instead of hex's 2×, measured 15–50 % faster and
    // with smaller transient strings. (pg's binary mode would be smaller still but corrupts bytea.)
    const r = await this.db.query<{ b64: string }>(
      "SELECT encode(data, 'base64') AS b64 FROM chunks WHERE tenant_id = $1 AND hash = $2",
      [tenantId, hash],
    );
    const b64 = r.rows[0]?.b64;
    if (b64 === undefined) {
      throw new StoreError("ERR_UNAVAILABLE", `chunk ${hash.toString("hex").slice(0, 16)} is missing`);
    }
    const data = Buffer.from(b64, "base64"); // ignores the line breaks PostgreSQL inserts
    this.cache?.set(key, data);
    return data;
  }
}
