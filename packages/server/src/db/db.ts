import { migrate } from "@cacheroach/schema";
import pg from "pg";
import type { Logger } from "../logger.js";
import { withRetry } from "../util/retry.js";
import { type CopyRow, type CopyShape, copyOutBinary } from "./copy-binary.js";
import { type CommandTags, type CopyInRow, copyInBinary } from "./copy-in.js";
import {
  databaseCondition,
  describeCondition,
  isConnectionLevel,
  isRetryable,
  sqlStateOf,
} from "./sqlstate.js";

/** Anything that can run a query: the pool (autocommit) or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** What the connected database is, and which of its PostgreSQL-only fast paths are used. */
export interface Dialect {
  readonly name: "postgres" | "cockroach";
  /**
   * Bulk writes (chunks, chunk lists) commit without waiting for the WAL flush. Safe because
   * PostgreSQL flushes WAL in order: the synchronous commit that later publishes a file version
   * also makes every earlier bulk write durable, so nothing visible can reference a lost chunk. A
   * crash can only lose unpublished upload progress, which the client redoes.
   */
  readonly asyncBulkCommit: boolean;
  /** Reads through binary COPY, whose bytea fields arrive as raw bytes (~3× faster than text). */
  readonly binaryCopyReads: boolean;
  /**
   * New large chunks are written with binary `COPY … FROM STDIN`, their bytes passed to the socket
   * as they are (see db/copy-in.ts); absent: the portable INSERT.
   */
  readonly binaryCopyWrites?: boolean;
}

/** The portable dialect: no PostgreSQL-only paths (CockroachDB, and tests of the fallbacks). */
export const PORTABLE: Dialect = { name: "postgres", asyncBulkCommit: false, binaryCopyReads: false };

/** Options of {@link Db}. */
export interface DbOptions {
  /** postgres:// URL. */
  url: string;
  /** Connections this server may hold, all pools together; default 20 (see {@link splitConnections}). */
  maxConnections?: number;
  /** Logs query text, duration and row count at trace level (never parameters). */
  log?: Logger;
  /** Attempts per transaction or statement before giving up; default 8. */
  maxAttempts?: number;
  /** Default: {@link PORTABLE}; {@link Db.connect} detects it. */
  dialect?: Dialect;
  /** Told the duration of every statement or transaction, retries included, and whether it succeeded. */
  onOperation?: (seconds: number, ok: boolean) => void;
}

/** Connections of one pool at a moment (for metrics). */
export interface PoolStats {
  readonly pool: "main" | "bulk";
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/** Options of {@link Db.tx}. */
export interface TxOptions {
  /** Failures besides the transient ones after which the whole transaction is run again. */
  readonly retryIf?: (err: unknown) => boolean;
}

/** Why the database is not ready, in words for an operator; undefined when it is. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * How a server's connection budget is split: one connection for the readiness probe, and of the
 * rest, with a separate bulk-write pool, a third (2..8) for bulk writes and the others for
 * everything else. The pools never open more than their share, so the server never holds more
 * than `max` sessions.
 */
export function splitConnections(
  max: number,
  separateBulkPool: boolean,
): { main: number; bulk: number; probe: number } {
  if (!Number.isInteger(max) || max < MIN_CONNECTIONS) {
    throw new Error(`the connection budget must be an integer of at least ${MIN_CONNECTIONS}, not ${max}`);
  }
  const rest = max - 1;
  if (!separateBulkPool || rest < 4) return { main: rest, bulk: 0, probe: 1 };
  const bulk = Math.min(8, Math.max(2, Math.floor(rest / 3)));
  return { main: rest - bulk, bulk, probe: 1 };
}

/** The smallest connection budget: one for requests, one for the readiness probe. */
export const MIN_CONNECTIONS = 2;

/** How long a disk-full failure keeps the server "not ready" without a successful write since. */
const DISK_FULL_MEMORY_MS = 10_000;

/**
 * The one module through which all SQL runs: pooled connections, a retrying autocommit `query`,
 * and `tx`, which runs a callback in BEGIN/COMMIT on one connection and repeats it (with backoff)
 * on serialization failures and lost connections. Callbacks must therefore be idempotent apart
 * from their SQL — no side effects outside the database.
 *
 * Connection faults never reach the process: every connection has an error listener for its whole
 * life (pg emits 'error' on a checked-out client whose server went away, and an unhandled 'error'
 * kills the process). A connection-level failure (lost connection, database restarting or
 * read-only) retires the connection it happened on and every connection opened before it, so
 * after a database restart or a read-only phase no stale session is handed out again.
 */
export class Db implements Queryable {
  readonly dialect: Dialect;
  private readonly pool: pg.Pool;
  /** Bulk writes; `pool` itself unless the dialect commits them asynchronously. */
  private readonly bulkPool: pg.Pool;
  private readonly config: pg.PoolConfig;
  private readonly log: Logger | undefined;
  private readonly maxAttempts: number;
  /** Bumped on every connection-level failure; connections opened before it are retired. */
  private generation = 0;
  private readonly bornIn = new WeakMap<pg.Client, number>();
  /** When the last write failed for lack of disk space (0: none since the last good write). */
  private diskFullAt = 0;
  private probeClient: pg.Client | undefined;
  private probing: Promise<Readiness> | undefined;
  private readonly onOperation: ((seconds: number, ok: boolean) => void) | undefined;

  constructor(options: DbOptions) {
    this.log = options.log;
    this.onOperation = options.onOperation;
    this.dialect = options.dialect ?? PORTABLE;
    const budget = splitConnections(options.maxConnections ?? 20, this.dialect.asyncBulkCommit);
    this.config = {
      connectionString: options.url,
      application_name: "cacheroach",
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    };
    this.pool = this.makePool({ ...this.config, max: budget.main });
    this.bulkPool =
      budget.bulk > 0
        ? this.makePool({
            ...this.config,
            max: budget.bulk,
            application_name: "cacheroach-bulk",
            options: "-c synchronous_commit=off",
          })
        : this.pool;
    this.maxAttempts = options.maxAttempts ?? 8;
  }

  /**
   * Connects to `options.url`, detects what the database is (CockroachDB or PostgreSQL) and
   * returns a Db using the fast paths that database allows.
   */
  static async connect(options: Omit<DbOptions, "dialect">): Promise<Db> {
    const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: 10_000 });
    client.on("error", () => {}); // a failure surfaces through the query below
    try {
      await client.connect();
      const version = (await client.query<{ v: string }>("SELECT version() AS v")).rows[0]?.v ?? "";
      const cockroach = /cockroach/i.test(version);
      const dialect: Dialect = cockroach
        ? { name: "cockroach", asyncBulkCommit: false, binaryCopyReads: false }
        : { name: "postgres", asyncBulkCommit: true, binaryCopyReads: true, binaryCopyWrites: true };
      return new Db({ ...options, dialect });
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** True when reads may use binary COPY ({@link copyOut}); readers keep a portable query otherwise. */
  get binaryCopyReads(): boolean {
    return this.dialect.binaryCopyReads;
  }

  /**
   * Applies the schema's migrations, then the storage tuning of the dialect: on PostgreSQL, chunk
   * data is random-looking (compressed, encrypted, or about to be hashed anyway), so pglz is not
   * asked to compress it (TOAST storage EXTERNAL).
   */
  async migrate(): Promise<string[]> {
    const client = await this.checkout(this.pool);
    let failure: unknown;
    let applied: string[];
    try {
      applied = (await migrate(client)).applied;
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      this.release(client, failure);
    }
    if (this.dialect.name === "postgres") await this.tunePostgres();
    return applied;
  }

  private async tunePostgres(): Promise<void> {
    const r = await this.query<{ s: string }>(
      "SELECT attstorage AS s FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'data'", // crdb-lint: ok PostgreSQL only (guarded)
    );
    if (r.rows[0]?.s !== "e") {
      await this.query("ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL"); // crdb-lint: ok PostgreSQL only (guarded)
    }
  }

  /** One autocommit statement, retried on transient failures. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.retry(() => this.once<R>(this.pool, sql, params));
  }

  /** One autocommit bulk write (see {@link Dialect.asyncBulkCommit}), retried on transient failures. */
  async bulk<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const res = await this.retry(() => this.once<R>(this.bulkPool, sql, params));
    this.diskFullAt = 0;
    return res;
  }

  /**
   * One `COPY (SELECT …) TO STDOUT` in binary format, retried on transient failures; its rows, of
   * the given shape. COPY takes no parameters, so the caller must embed only values it has
   * validated or encoded itself.
   */
  async copyOut(sql: string, shape: CopyShape): Promise<CopyRow[]> {
    return this.retry(async () => {
      const start = performance.now();
      const client = await this.checkout(this.pool);
      let failure: unknown;
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
        failure = err;
        throw err;
      } finally {
        this.release(client, failure, failure !== undefined);
      }
    });
  }

  /**
   * One bulk write (see {@link Dialect.asyncBulkCommit}) as a simple query starting with
   * binary-format `COPY … FROM STDIN` that takes `rows`, retried on transient failures; the
   * command tags of its statements. The statements after the COPY (if any) run in the same
   * implicit transaction. A simple query takes no parameters: the caller embeds only values it has
   * validated or computed itself.
   */
  async copyIn(sql: string, rows: readonly CopyInRow[]): Promise<CommandTags> {
    const tags = await this.retry(async () => {
      const start = performance.now();
      const client = await this.checkout(this.bulkPool);
      let failure: unknown;
      try {
        const tags = await copyInBinary(client, sql, rows);
        if (this.log?.isLevelEnabled("trace")) {
          const quote = sql.indexOf("'");
          const text = (quote < 0 ? sql : sql.slice(0, quote)).slice(0, 200);
          this.log.trace({ sql: text, ms: performance.now() - start, rows: rows.length }, "sql");
        }
        return tags;
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        // A COPY cut short by a broken socket may leave the protocol mid-stream: start afresh.
        this.release(client, failure, failure !== undefined && sqlStateOf(failure) === undefined);
      }
    });
    this.diskFullAt = 0;
    return tags;
  }

  /**
   * Runs `fn` in a transaction on one client. The whole callback is retried, with backoff, on the
   * failures {@link isRetryable} names (serialization failures, lost connections, …) and on those
   * `options.retryIf` adds (e.g. a unique violation the next attempt resolves by reading again).
   */
  async tx<T>(fn: (q: Queryable) => Promise<T>, options: TxOptions = {}): Promise<T> {
    const result = await this.retry(async () => {
      const client = await this.checkout(this.pool);
      let failure: unknown;
      let discard = false;
      try {
        await client.query("BEGIN");
        const q: Queryable = { query: (sql, params) => this.timed(client, sql, params) };
        const value = await fn(q);
        await client.query("COMMIT");
        return value;
      } catch (err) {
        failure = err;
        if (!isConnectionLevel(err)) {
          try {
            await client.query("ROLLBACK");
          } catch {
            discard = true; // the connection is gone; don't return it to the pool
          }
        }
        throw err;
      } finally {
        this.release(client, failure, discard);
      }
    }, options.retryIf);
    this.diskFullAt = 0;
    return result;
  }

  /** One round trip to the database; its version() text (Diags.Echo reports it). */
  async ping(): Promise<string> {
    const r = await this.query<{ v: string }>("SELECT version() AS v");
    return r.rows[0]?.v ?? "";
  }

  /**
   * Whether the database serves reads and accepts writes, answered within `timeoutMs`: a
   * statement that needs write access but changes nothing, on a connection of its own (so a frozen
   * database cannot tie up the pool), and the memory of a recent write refused for lack of space.
   * Concurrent calls share one probe.
   */
  readiness(timeoutMs: number): Promise<Readiness> {
    if (this.diskFullAt && Date.now() - this.diskFullAt < DISK_FULL_MEMORY_MS) {
      return Promise.resolve({ ready: false, reason: "database disk full: recent writes were refused" });
    }
    this.probing ??= this.probe(timeoutMs).finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async probe(timeoutMs: number): Promise<Readiness> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Readiness>((resolve) => {
      timer = setTimeout(() => {
        this.dropProbeClient();
        resolve({ ready: false, reason: `database did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
    });
    const check = (async (): Promise<Readiness> => {
      try {
        if (!this.probeClient) {
          const client = new pg.Client({
            ...this.config,
            application_name: "cacheroach-probe",
            connectionTimeoutMillis: timeoutMs,
          });
          client.on("error", () => this.dropProbeClient(client));
          this.probeClient = client;
          await client.connect();
        }
        // Needs write access (refused with 25006 by a read-only database) yet touches no row.
        await this.probeClient.query("UPDATE tenants SET version = version WHERE false");
        return { ready: true };
      } catch (err) {
        this.dropProbeClient();
        const condition = databaseCondition(err);
        const state = sqlStateOf(err);
        return {
          ready: false,
          reason: condition
            ? describeCondition(condition)
            : `database probe failed (${state ?? "no SQLSTATE"})`,
        };
      }
    })();
    try {
      return await Promise.race([check, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private dropProbeClient(which?: pg.Client): void {
    const client = this.probeClient;
    if (!client || (which && which !== client)) return;
    this.probeClient = undefined;
    // end() waits for the server's goodbye, which a frozen server never sends: cut the socket.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    client.end().catch(() => {});
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    this.dropProbeClient();
    if (this.bulkPool !== this.pool) await this.bulkPool.end();
    await this.pool.end();
  }

  private makePool(config: pg.PoolConfig): pg.Pool {
    const pool = new pg.Pool(config);
    pool.on("connect", (client) => {
      this.bornIn.set(client, this.generation);
      // For the connection's whole life, idle or checked out: pg emits 'error' on a client whose
      // server goes away, and an 'error' event without a listener ends the process. The query in
      // flight (if any) fails with the same error, and release() retires the connection.
      client.on("error", (err) => {
        this.log?.warn({ err: err.message, code: sqlStateOf(err) }, "database connection lost");
      });
    });
    // The pool's own listener for idle clients; it removes them. Logged above already.
    pool.on("error", () => {});
    return pool;
  }

  /** A connection from `pool` opened after the last connection-level failure. */
  private async checkout(pool: pg.Pool): Promise<pg.PoolClient> {
    for (;;) {
      const client = await pool.connect();
      if ((this.bornIn.get(client) ?? -1) >= this.generation) return client;
      client.release(true); // opened before the last failure: may be stale (read-only session, dead socket)
    }
  }

  /**
   * Returns a connection to its pool after use. `failure` is what the work threw (if anything): a
   * connection-level one retires this connection and every older one; `discard` retires just this.
   */
  private release(client: pg.PoolClient, failure: unknown, discard = false): void {
    if (failure !== undefined) {
      const condition = databaseCondition(failure);
      if (condition === "disk-full") this.diskFullAt = Date.now();
      if (isConnectionLevel(failure)) {
        this.generation++;
        discard = true;
      }
    }
    client.release(discard ? true : undefined);
  }

  private async once<R extends pg.QueryResultRow>(
    pool: pg.Pool,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const client = await this.checkout(pool);
    let failure: unknown;
    try {
      return await this.timed<R>(client, sql, params);
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      this.release(client, failure);
    }
  }

  /** Runs `fn` again on the failures `isRetryable` names (and those `also` names), with backoff. */
  private retry<T>(fn: () => Promise<T>, also?: (err: unknown) => boolean): Promise<T> {
    const run = withRetry(fn, {
      attempts: this.maxAttempts,
      retryable: (err) => isRetryable(err) || (also?.(err) ?? false),
      onRetry: (attempt, err) =>
        this.log?.debug(
          { attempt, condition: databaseCondition(err) ?? sqlStateOf(err) },
          "retrying database work",
        ),
    });
    const observe = this.onOperation;
    if (!observe) return run;
    const start = performance.now();
    return run.then(
      (v) => {
        observe((performance.now() - start) / 1000, true);
        return v;
      },
      (err: unknown) => {
        observe((performance.now() - start) / 1000, false);
        throw err;
      },
    );
  }

  /** Connections of each pool now: open, idle, and callers waiting for one. */
  poolStats(): PoolStats[] {
    const of = (pool: PoolStats["pool"], p: pg.Pool): PoolStats => ({
      pool,
      total: p.totalCount,
      idle: p.idleCount,
      waiting: p.waitingCount,
    });
    return this.bulkPool === this.pool
      ? [of("main", this.pool)]
      : [of("main", this.pool), of("bulk", this.bulkPool)];
  }

  private async timed<R extends pg.QueryResultRow>(
    client: pg.PoolClient,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const start = performance.now();
    const res = await client.query<R>(sql, params);
    if (this.log?.isLevelEnabled("trace")) {
      this.log.trace({ sql: sql.slice(0, 200), ms: performance.now() - start, rows: res.rowCount }, "sql");
    }
    return res;
  }
}
