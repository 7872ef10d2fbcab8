import pg from "pg";
import type { Logger } from "../logger.js";
import { type CopyRow, type CopyShape, copyOutBinary } from "./copy-binary.js";

/** SQLSTATEs after which a whole transaction is safely retried. */
const RETRYABLE_SQLSTATES = new Set([
  "40001", // serialization_failure (CockroachDB asks clients to retry)
  "40003", // statement_completion_unknown
  "40P01", // deadlock_detected
  "08000", // connection_exception
  "08003", // connection_does_not_exist
  "08006", // connection_failure
  "57P01", // admin_shutdown (server restarting)
]);
const RETRYABLE_NODE_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT"]);

/** True when `err` is a transient failure after which the work may be repeated from scratch. */
export function isRetryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && (RETRYABLE_SQLSTATES.has(e.code) || RETRYABLE_NODE_CODES.has(e.code))) return true;
  return typeof e.message === "string" && /Connection terminated|connection is closed/i.test(e.message);
}

/** Anything that can run a query: the pool (autocommit) or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** Options of {@link Db}. */
export interface DbOptions {
  /** postgres:// URL. */
  url: string;
  /** Pool size; default 20. */
  maxConnections?: number;
  /** Logs query text, duration and row count at debug level (never parameters). */
  log?: Logger;
  /** Attempts per transaction or statement before giving up; default 8. */
  maxAttempts?: number;
}

/**
 * The one module through which all SQL runs: a pool, a retrying autocommit `query`, and `tx`,
 * which runs a callback in BEGIN/COMMIT on one client and repeats it (with backoff) on
 * serialization failures and connection loss. Callbacks must therefore be idempotent apart
 * from their SQL — no side effects outside the database.
 */
export class Db implements Queryable {
  readonly pool: pg.Pool;
  /**
   * Pool for bulk writes whose commits need not wait for the WAL flush (chunks, chunk lists).
   * Safe because PostgreSQL flushes WAL in order: the synchronous commit that later publishes a
   * file version also makes every earlier bulk write durable, so nothing visible can reference a
   * lost chunk. A crash can only lose unpublished upload progress, which the client redoes.
   * Equal to `pool` until {@link enableAsyncBulkCommit} (never on CockroachDB).
   */
  private bulkPool: pg.Pool;
  private readonly config: pg.PoolConfig;
  /** Whether {@link copyOut} may be used; see {@link enableBinaryCopyReads}. */
  private binaryCopy = false;
  private readonly log: Logger | undefined;
  private readonly maxAttempts: number;

  constructor(options: DbOptions) {
    this.log = options.log;
    this.config = {
      connectionString: options.url,
      max: options.maxConnections ?? 20,
      application_name: "cacheroach",
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    };
    this.pool = this.makePool(this.config);
    this.bulkPool = this.pool;
    this.maxAttempts = options.maxAttempts ?? 8;
  }

  /** One autocommit statement, retried on transient failures. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.retry(() => this.timed<R>(this.pool, sql, params));
  }

  /** One autocommit bulk write (see `bulkPool`), retried on transient failures. */
  async bulk<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.retry(() => this.timed<R>(this.bulkPool, sql, params));
  }

  /** Switches bulk writes to asynchronous commit (PostgreSQL only). */
  enableAsyncBulkCommit(): void {
    if (this.bulkPool !== this.pool) return;
    this.bulkPool = this.makePool({ ...this.config, options: "-c synchronous_commit=off" });
  }

  /**
   * Allows reads through binary COPY (PostgreSQL only: CockroachDB's COPY TO differs). Its bytea
   * fields arrive as raw bytes, about 3× faster than decoding a text result.
   */
  enableBinaryCopyReads(): void {
    this.binaryCopy = true;
  }

  /** True once {@link enableBinaryCopyReads} was called; readers keep a portable query otherwise. */
  get binaryCopyReads(): boolean {
    return this.binaryCopy;
  }

  /**
   * One `COPY (SELECT …) TO STDOUT` in binary format, retried on transient failures; its rows, of
   * the given shape. COPY takes no parameters, so the caller must embed only values it has
   * validated or encoded itself.
   */
  async copyOut(sql: string, shape: CopyShape): Promise<CopyRow[]> {
    return this.retry(async () => {
      const start = performance.now();
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        const rows = await copyOutBinary(client, sql, shape);
        if (this.log?.isLevelEnabled("trace")) {
          // Only the text before the first literal: the literals are this statement's parameters.
          const quote = sql.indexOf("'");
          const text = (quote < 0 ? sql : sql.slice(0, quote)).slice(0, 200);
          this.log.trace({ sql: text, ms: performance.now() - start, rows: rows.length }, "sql");
        }
        return rows;
      } catch (err) {
        // Not worth telling a server error (connection fine) from a broken stream: start afresh.
        broken = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(broken);
      }
    });
  }

  /** Runs `fn` in a transaction on one client; the whole callback is retried on transient errors. */
  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.retry(async () => {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN");
        const q: Queryable = { query: (sql, params) => this.timed(client, sql, params) };
        const result = await fn(q);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true; // the connection is gone; don't return it to the pool
        }
        throw err;
      } finally {
        client.release(broken);
      }
    });
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    if (this.bulkPool !== this.pool) await this.bulkPool.end();
    await this.pool.end();
  }

  private makePool(config: pg.PoolConfig): pg.Pool {
    const pool = new pg.Pool(config);
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on("error", (err) => this.log?.warn({ err: err.message }, "idle database connection failed"));
    return pool;
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= this.maxAttempts || !isRetryable(err)) throw err;
        const delay = Math.min(2000, 20 * 2 ** attempt) * (0.5 + Math.random() / 2);
        this.log?.debug({ attempt, code: (err as { code?: string }).code }, "retrying database work");
        await new Promise((res) => setTimeout(res, delay));
      }
    }
  }

  private async timed<R extends pg.QueryResultRow>(
    target: pg.Pool | pg.PoolClient,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const start = performance.now();
    const res = await target.query<R>(sql, params);
    if (this.log?.isLevelEnabled("trace")) {
      this.log.trace({ sql: sql.slice(0, 200), ms: performance.now() - start, rows: res.rowCount }, "sql");
    }
    return res;
  }
}
