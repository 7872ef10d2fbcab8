import { chunkHash, RopeHasher } from "@cacheroach/core";
import { CacheroachError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { RopeHeader, ScrubStore, StoredChunk, VersionRef } from "../store/scrub-store.js";
import { ByteRate } from "./byte-rate.js";

/**
 * The integrity scrub: re-reads a tenant's stored data and checks it against its keys.
 *
 * 1. Chunks, in keyset pages by hash: each chunk's bytes are hashed again (BLAKE3) and compared
 *    with the hash they are stored under.
 * 2. Ropes, in keyset pages by hash: each rope's chunk list is read in pages, its key recomputed
 *    with RopeHasher and compared with the rope's hash, the list checked to cover the rope's size
 *    exactly (canonical chunking), and every listed chunk checked to be stored with the listed
 *    length.
 *
 * Every problem names the files it breaks: the (path, version) rows of file_versions holding the
 * rope, with whether each is the live version. Reads are paced to a byte rate so a scheduled
 * scrub does not starve serving; every statement is one bounded page or lookup.
 */

/** What is wrong. */
export type ScrubProblemKind =
  /** A stored chunk's bytes do not hash to its key. */
  | "chunk_corrupt"
  /** A rope lists a chunk the tenant does not store. */
  | "chunk_missing"
  /** A rope lists a chunk with a length other than the stored chunk's. */
  | "chunk_wrong_length"
  /** A rope's chunk list does not match its key, or does not cover its size canonically. */
  | "rope_mismatch";

/** One damaged or missing chunk, or broken rope, and the file versions it breaks. */
export interface ScrubProblem {
  readonly tenantId: string;
  readonly kind: ScrubProblemKind;
  /** The chunk concerned (chunk problems). */
  readonly chunk: Buffer | undefined;
  /** The rope (content) concerned; undefined for a damaged chunk no rope lists. */
  readonly rope: Buffer | undefined;
  /** The chunk's offset in the rope, when there is one. */
  readonly offset: number | undefined;
  /** What is wrong, in words. */
  readonly detail: string;
  /** The file versions holding the rope, by path and version (at most {@link MAX_FILES}). */
  readonly files: readonly VersionRef[];
  /** True when more versions hold the rope than `files` lists. */
  readonly moreFiles: boolean;
}

/** What one tenant's scrub covered. */
export interface ScrubTenantSummary {
  readonly tenantId: string;
  readonly chunks: number;
  readonly bytes: number;
  readonly ropes: number;
  readonly problems: number;
  readonly seconds: number;
}

/** What a scrub reports as it goes. */
export type ScrubEvent =
  | { readonly type: "problem"; readonly problem: ScrubProblem }
  /** Now and then while a tenant is scrubbed, so a long quiet stream stays alive. */
  | { readonly type: "progress"; readonly progress: ScrubTenantSummary }
  | { readonly type: "tenant"; readonly summary: ScrubTenantSummary };

/** Options of one scrub run. */
export interface ScrubRunOptions {
  /** Only this tenant (validated, lower-case UUID); all tenants otherwise. */
  readonly tenantId?: string | undefined;
  /** Bytes per second to read at most; default the Scrubber's rate; 0 = no limit. */
  readonly bytesPerSecond?: number | undefined;
  /** Stops the run (the client went away). */
  readonly signal?: AbortSignal | undefined;
  /** Who asked, for the log line ("schedule" or "rpc"). */
  readonly trigger?: string;
}

/** What a Scrubber counted since it was made (read by the metrics at scrape time). */
export interface ScrubCounters {
  chunks: number;
  bytes: number;
  ropes: number;
  problems: number;
  /** When (ms since the epoch) the last complete scrub of all tenants ended; 0: never. */
  lastRunEndedAt: number;
  /** Problems found by that run. */
  lastRunProblems: number;
}

/** Chunk keys and lengths per page. */
const CHUNK_PAGE = 1000;
/** Bytes of chunk data fetched per statement at most (a larger chunk goes alone). */
const FETCH_BYTES = 4 << 20;
/** Rope headers per page. */
const ROPE_PAGE = 100;
/** Chunk-list rows per page. */
const LIST_PAGE = 1000;
/** Tenants per page. */
const TENANT_PAGE = 100;
/** Bytes a chunk-list row counts for the byte rate (a row is about this much to read). */
const LIST_ROW_BYTES = 64;
/** File versions named per problem at most. */
export const MAX_FILES = 1000;
/** Ropes a damaged chunk is traced to at most (one problem each). */
const MAX_USES = 100;
/** Chunk problems reported per rope at most (the last one says how many more there were). */
const MAX_PER_ROPE = 100;
/** How often a progress event goes out while a tenant is scrubbed. */
const PROGRESS_MS = 5000;

/** The error a run ends with when the server stops under it. */
function shuttingDown(): CacheroachError {
  return new CacheroachError("ERR_UNAVAILABLE", "scrub stopped: the server is shutting down; run it again");
}

export class Scrubber {
  /** Plain counters: all runs (scheduled and on demand) add to them. */
  readonly counters: ScrubCounters = {
    chunks: 0,
    bytes: 0,
    ropes: 0,
    problems: 0,
    lastRunEndedAt: 0,
    lastRunProblems: 0,
  };
  /** Aborted by {@link close}: every run stops. */
  private readonly closing = new AbortController();

  constructor(
    private readonly store: ScrubStore,
    private readonly options: { bytesPerSecond: number; log?: Logger | undefined },
  ) {}

  /** Stops every run in progress (server shutdown); runs started later stop at once. */
  close(): void {
    this.closing.abort();
  }

  /**
   * Scrubs one tenant (ERR_NOT_FOUND if it does not exist) or every tenant, yielding problems as
   * they are found, progress now and then, and a summary per tenant. Ends with ERR_UNAVAILABLE if
   * the server shuts down meanwhile; stops quietly (AbortError) when `signal` aborts.
   */
  async *run(opts: ScrubRunOptions = {}): AsyncGenerator<ScrubEvent> {
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.closing.signal]) : this.closing.signal;
    const rate = new ByteRate(opts.bytesPerSecond ?? this.options.bytesPerSecond);
    const t0 = performance.now();
    const total = { tenants: 0, chunks: 0, bytes: 0, ropes: 0, problems: 0 };
    try {
      if (opts.tenantId !== undefined && !(await this.store.tenantExists(opts.tenantId))) {
        throw new CacheroachError("ERR_NOT_FOUND", `tenant ${opts.tenantId} does not exist`);
      }
      let after: string | undefined;
      for (;;) {
        const tenants =
          opts.tenantId !== undefined ? [opts.tenantId] : await this.store.tenantPage(after, TENANT_PAGE);
        for (const tenantId of tenants) {
          for await (const e of this.tenant(tenantId, rate, signal)) {
            if (e.type === "tenant") {
              total.tenants++;
              total.chunks += e.summary.chunks;
              total.bytes += e.summary.bytes;
              total.ropes += e.summary.ropes;
              total.problems += e.summary.problems;
            }
            yield e;
          }
        }
        if (opts.tenantId !== undefined || tenants.length < TENANT_PAGE) break;
        after = tenants[tenants.length - 1];
      }
    } catch (err) {
      if (this.closing.signal.aborted) throw shuttingDown();
      throw err;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (opts.tenantId === undefined) {
      this.counters.lastRunEndedAt = Date.now();
      this.counters.lastRunProblems = total.problems;
    }
    this.options.log?.[total.problems > 0 ? "warn" : "info"](
      { ...total, tenant: opts.tenantId, seconds: Number(seconds.toFixed(3)), trigger: opts.trigger },
      total.problems > 0 ? "scrub finished: damage found" : "scrub finished: no damage",
    );
  }

  /** One tenant: its chunks, then its ropes. */
  private async *tenant(tenantId: string, rate: ByteRate, signal: AbortSignal): AsyncGenerator<ScrubEvent> {
    const t0 = performance.now();
    const s = { chunks: 0, bytes: 0, ropes: 0, problems: 0 };
    const summary = (): ScrubTenantSummary => ({
      tenantId,
      ...s,
      seconds: (performance.now() - t0) / 1000,
    });
    let lastProgress = performance.now();
    const progress = (): ScrubEvent | undefined => {
      const now = performance.now();
      if (now - lastProgress < PROGRESS_MS) return undefined;
      lastProgress = now;
      return { type: "progress", progress: summary() };
    };
    const found = (problem: ScrubProblem): ScrubEvent => {
      s.problems++;
      this.counters.problems++;
      this.options.log?.warn(
        {
          tenant: tenantId,
          kind: problem.kind,
          chunk: problem.chunk?.toString("hex"),
          rope: problem.rope?.toString("hex"),
          offset: problem.offset,
          files: problem.files.slice(0, 10).map((f) => `${f.path}@${f.version}`),
        },
        `scrub: ${problem.detail}`,
      );
      return { type: "problem", problem };
    };

    // 1. Chunks: re-hash every stored chunk.
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      signal.throwIfAborted();
      const page = await this.store.chunkPage(tenantId, after, CHUNK_PAGE);
      for (const batch of fetchBatches(page)) {
        signal.throwIfAborted();
        const data = await this.store.chunkData(
          tenantId,
          batch.map((c) => c.hash),
        );
        let bytes = 0;
        for (const c of batch) {
          const d = data.get(c.hash.toString("hex"));
          if (!d) continue; // deleted meanwhile (garbage collection)
          bytes += d.length;
          s.chunks++;
          s.bytes += d.length;
          this.counters.chunks++;
          this.counters.bytes += d.length;
          if (!chunkHash(d).equals(c.hash)) {
            for (const p of await this.corruptChunk(tenantId, c.hash)) yield found(p);
          }
        }
        await rate.pace(bytes, signal);
        const p = progress();
        if (p) yield p;
      }
      if (page.length < CHUNK_PAGE) break;
      after = page[page.length - 1]!.hash;
    }

    // 2. Ropes: recompute each key from its chunk list; check the list against the chunks.
    after = Buffer.alloc(0);
    for (;;) {
      signal.throwIfAborted();
      const page = await this.store.ropePage(tenantId, after, ROPE_PAGE);
      for (const rope of page) {
        for (const problem of await this.rope(tenantId, rope, rate, signal)) yield found(problem);
        s.ropes++;
        this.counters.ropes++;
        const p = progress();
        if (p) yield p;
      }
      if (page.length < ROPE_PAGE) break;
      after = page[page.length - 1]!.hash;
    }
    yield { type: "tenant", summary: summary() };
  }

  /** The problems a corrupt chunk causes: one per rope listing it (or one without a rope). */
  private async corruptChunk(tenantId: string, chunk: Buffer): Promise<ScrubProblem[]> {
    const short = chunk.toString("hex").slice(0, 16);
    const uses = await this.store.chunkUses(tenantId, chunk, MAX_USES);
    if (uses.length === 0) {
      return [
        {
          tenantId,
          kind: "chunk_corrupt",
          chunk,
          rope: undefined,
          offset: undefined,
          detail: `chunk ${short}… does not match its hash (no content lists it)`,
          files: [],
          moreFiles: false,
        },
      ];
    }
    const out: ScrubProblem[] = [];
    for (const use of uses) {
      const { files, moreFiles } = await this.files(tenantId, use.rope);
      out.push({
        tenantId,
        kind: "chunk_corrupt",
        chunk,
        rope: use.rope,
        offset: use.offset,
        detail: `the chunk at offset ${use.offset} of content ${use.rope.toString("hex").slice(0, 16)}… (chunk ${short}…) does not match its hash`,
        files,
        moreFiles,
      });
    }
    return out;
  }

  /** Checks one rope; its problems (none if it was swept meanwhile). */
  private async rope(
    tenantId: string,
    rope: RopeHeader,
    rate: ByteRate,
    signal: AbortSignal,
  ): Promise<ScrubProblem[]> {
    const ropeHex = rope.hash.toString("hex").slice(0, 16);
    const h = new RopeHasher();
    const chunkIssues: { kind: ScrubProblemKind; chunk: Buffer; offset: number; detail: string }[] = [];
    let more = 0;
    let structure: string | undefined;
    let pos = 0;
    let short = false;
    let after = -1;
    for (;;) {
      signal.throwIfAborted();
      const rows = await this.store.listPage(tenantId, rope.hash, after, LIST_PAGE);
      for (const row of rows) {
        if (structure === undefined) {
          if (row.offset !== pos) structure = `its chunk list has no chunk at offset ${pos}`;
          else if (short) structure = `the chunk at offset ${row.offset} follows a short chunk`;
          else if (row.length > rope.chunkSize)
            structure = `the chunk at offset ${row.offset} is longer than the chunk size ${rope.chunkSize}`;
        }
        const issue =
          row.stored === null
            ? { kind: "chunk_missing" as const, what: "is missing" }
            : row.stored !== row.length
              ? {
                  kind: "chunk_wrong_length" as const,
                  what: `is ${row.stored} bytes long, not the ${row.length} its chunk list says`,
                }
              : undefined;
        if (issue) {
          if (chunkIssues.length < MAX_PER_ROPE) {
            chunkIssues.push({
              kind: issue.kind,
              chunk: row.hash,
              offset: row.offset,
              detail: `the chunk at offset ${row.offset} of content ${ropeHex}… (chunk ${row.hash.toString("hex").slice(0, 16)}…) ${issue.what}`,
            });
          } else more++;
        }
        h.add(row.hash, row.length);
        short = row.length !== rope.chunkSize;
        pos = row.offset + row.length;
      }
      await rate.pace(rows.length * LIST_ROW_BYTES, signal);
      if (rows.length < LIST_PAGE) break;
      after = rows[rows.length - 1]!.offset;
    }
    if (structure === undefined) {
      if (h.count !== rope.chunkCount || h.size !== rope.size) {
        structure = `its chunk list holds ${h.count} chunk(s) and ${h.size} bytes, not ${rope.chunkCount} and ${rope.size}`;
      } else if (!h.digest().equals(rope.hash)) {
        structure = "its chunk list does not hash to its key";
      }
    }
    if (chunkIssues.length === 0 && structure === undefined) return [];
    // Swept by garbage collection while it was read: nothing is broken.
    if (!(await this.store.ropeExists(tenantId, rope.hash))) return [];
    const { files, moreFiles } = await this.files(tenantId, rope.hash);
    const out: ScrubProblem[] = chunkIssues.map((c, i) => ({
      tenantId,
      kind: c.kind,
      chunk: c.chunk,
      rope: rope.hash,
      offset: c.offset,
      detail:
        more > 0 && i === chunkIssues.length - 1
          ? `${c.detail} (and ${more} more chunk(s) of this content are missing or mis-sized)`
          : c.detail,
      files,
      moreFiles,
    }));
    if (structure !== undefined) {
      out.push({
        tenantId,
        kind: "rope_mismatch",
        chunk: undefined,
        rope: rope.hash,
        offset: undefined,
        detail: `content ${ropeHex}… is broken: ${structure}`,
        files,
        moreFiles,
      });
    }
    return out;
  }

  /** The file versions holding a rope, sorted by path and version. */
  private async files(tenantId: string, rope: Buffer): Promise<{ files: VersionRef[]; moreFiles: boolean }> {
    const rows = await this.store.versionsOf(tenantId, rope, MAX_FILES + 1);
    const files = rows
      .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)) || a.version - b.version)
      .slice(0, MAX_FILES);
    return { files, moreFiles: rows.length > MAX_FILES };
  }
}

/** A page of chunks cut into fetches of at most FETCH_BYTES (a larger chunk goes alone). */
function fetchBatches(page: readonly StoredChunk[]): StoredChunk[][] {
  const out: StoredChunk[][] = [];
  let batch: StoredChunk[] = [];
  let bytes = 0;
  for (const c of page) {
    if (batch.length > 0 && bytes + c.length > FETCH_BYTES) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(c);
    bytes += c.length;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
