import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_GC_MARGIN_MS } from "../config.js";
import { CacheroachError } from "../errors.js";
import type { ChunkState, GcStore, GcTenant, RopeState } from "../store/gc-store.js";
import { PURGE_TABLES } from "../store/gc-store.js";

/**
 * Garbage collection: what retention no longer keeps, in bounded batches, safe beside concurrent
 * writers and other collectors. The argument is in docs/architecture.md ("Garbage collection");
 * in short:
 *
 * 1. Versions: a version is dead from the moment a later version replaced it, or from its
 *    deletion; dead versions beyond the tenant's retention (keep the newest N dead versions of a
 *    path, and any dead for less than D) are deleted. A live head never is (re-checked in SQL).
 * 2. Uploads past their expiry (and, on demand, idle ones) are deleted, chunk list first.
 * 3. Ropes no version references are deleted, header and chunk list in one transaction. A writer
 *    about to reference a rope locks it first (FileStore) and rewrites it if it was collected.
 * 4. Chunks no rope and no upload references are first condemned (marked), and deleted only in a
 *    later step, once every upload that was open when they were condemned has ended and a safety
 *    margin has passed. FindMissing reports condemned chunks as missing and storing a chunk again
 *    clears its mark, so an upload never relies on a chunk condemned before it learned of it.
 */

/** Server-wide settings of collection. */
export interface GcOptions {
  /** Dead versions of each path kept whatever their age (tenant override: retain_versions). */
  readonly retainVersions: number;
  /** Seconds a dead version is kept (tenant override: retain_seconds). */
  readonly retainSeconds: number;
  /** Rows one statement or transaction touches at most. */
  readonly batchRows: number;
  /**
   * How long a condemned chunk waits, beyond the uploads open when it was condemned, before it
   * may be deleted: covers the time between a condemning statement's timestamp and its commit
   * (bounded by a statement timeout of half this).
   */
  readonly marginMs: number;
}

export const DEFAULT_GC_OPTIONS: GcOptions = {
  retainVersions: 0,
  retainSeconds: 7 * 24 * 3600,
  batchRows: 1000,
  marginMs: DEFAULT_GC_MARGIN_MS,
};

/** An upload active this recently is never collected as idle, whatever `olderThanSeconds` says. */
export const IDLE_MIN_MS = 5_000;
/** Hashes condemned in one run that the same run may sweep after the margin (memory bound). */
const MAX_RUN_CONDEMNED = 1_000_000;

/** What to collect. */
export interface GcRequest {
  /** One tenant (default: every tenant). */
  readonly tenantId?: string | undefined;
  /**
   * Overrides retention for this run: every version dead for at least this long goes (no
   * keep-N), and uploads idle for at least this long (never less than {@link IDLE_MIN_MS}).
   */
  readonly olderThanSeconds?: number | undefined;
  /** Report what would be reclaimed; change nothing. */
  readonly dryRun?: boolean | undefined;
}

/** What one run did (or would do) in one tenant. */
export interface TenantCollection {
  readonly tenantId: string;
  readonly label: string;
  /** The tenant was deleted: its data was purged (and its row removed once empty). */
  readonly deleted: boolean;
  versions: number;
  /** Logical bytes of the versions removed. */
  versionBytes: number;
  uploads: number;
  ropes: number;
  chunks: number;
  /** Physical bytes of the chunks removed. */
  bytes: number;
  /** Chunks condemned and kept for now (uploads open since before, or the margin not passed). */
  pendingChunks: number;
  pendingBytes: number;
  /** Batches a concurrent writer won (their rows are referenced again; nothing was lost). */
  lostRaces: number;
  /** Rows of a deleted tenant purged. */
  purgedRows: number;
  /** Set when collecting this tenant failed (the run goes on with the others). */
  error?: string;
}

/** Totals since the collector was made (for metrics). */
export interface GcCounters {
  runs: number;
  failures: number;
  versions: number;
  uploads: number;
  ropes: number;
  chunks: number;
  bytes: number;
  /** Unix seconds of the end of the last finished run (0: none yet). */
  lastRunEnd: number;
  lastRunSeconds: number;
}

/** Chunks condemned by a run, swept by the same run after the margin. */
interface Condemned {
  readonly tenant: TenantCollection;
  readonly hashes: Buffer[];
  readonly bytes: Map<string, number>;
}

export class GarbageCollector {
  readonly counters: GcCounters = {
    runs: 0,
    failures: 0,
    versions: 0,
    uploads: 0,
    ropes: 0,
    chunks: 0,
    bytes: 0,
    lastRunEnd: 0,
    lastRunSeconds: 0,
  };
  /** Runs of this process, one after another (a scheduled run and an on-demand one queue). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: GcStore,
    private readonly options: GcOptions,
    private readonly signal?: AbortSignal,
  ) {
    if (options.batchRows < 1) throw new RangeError("batchRows must be at least 1");
  }

  /** Runs a collection (after any this process is running); one entry per tenant collected. */
  run(request: GcRequest = {}): Promise<TenantCollection[]> {
    const next = this.queue.then(() => this.runNow(request));
    this.queue = next.catch(() => {});
    return next;
  }

  private async runNow(request: GcRequest): Promise<TenantCollection[]> {
    const started = Date.now();
    try {
      const out = await this.collect(request);
      if (!request.dryRun) {
        const c = this.counters;
        c.runs++;
        for (const t of out) {
          c.versions += t.versions;
          c.uploads += t.uploads;
          c.ropes += t.ropes;
          c.chunks += t.chunks;
          c.bytes += t.bytes;
          if (t.error) c.failures++;
        }
        c.lastRunEnd = Date.now() / 1000;
        c.lastRunSeconds = (Date.now() - started) / 1000;
      }
      return out;
    } catch (err) {
      if (!request.dryRun) this.counters.failures++;
      throw err;
    }
  }

  private async collect(request: GcRequest): Promise<TenantCollection[]> {
    if (request.olderThanSeconds !== undefined && !(request.olderThanSeconds >= 0)) {
      throw new CacheroachError("ERR_BAD_REQUEST", "older_than must be zero or more seconds");
    }
    let tenants = await this.store.tenants();
    if (request.tenantId !== undefined) {
      tenants = tenants.filter((t) => t.id === request.tenantId && !t.deleted);
      if (tenants.length === 0) {
        throw new CacheroachError("ERR_NOT_FOUND", `tenant ${request.tenantId} does not exist`);
      }
    }
    const out: TenantCollection[] = [];
    const condemned: Condemned[] = [];
    let room = MAX_RUN_CONDEMNED;
    for (const t of tenants) {
      this.signal?.throwIfAborted();
      const report = emptyReport(t);
      out.push(report);
      try {
        if (t.deleted) {
          if (!request.dryRun) await this.purge(t, report);
          continue;
        }
        const c = await this.collectTenant(t, request, report, room);
        if (c) {
          condemned.push(c);
          room -= c.hashes.length;
        }
      } catch (err) {
        if (this.signal?.aborted) throw err;
        report.error = err instanceof Error ? err.message : String(err);
      }
    }
    if (condemned.some((c) => c.hashes.length > 0)) {
      // Chunks condemned by this run may go once the margin has passed (see the class comment).
      await sleep(this.options.marginMs, undefined, { signal: this.signal });
      for (const c of condemned) {
        try {
          await this.sweep(c.tenant, c.hashes, c.bytes);
        } catch (err) {
          if (this.signal?.aborted) throw err;
          c.tenant.error ??= err instanceof Error ? err.message : String(err);
        }
      }
    }
    return out;
  }

  /** Steps 1–4 for one live tenant; the chunks it condemned (to sweep after the margin). */
  private async collectTenant(
    t: GcTenant,
    request: GcRequest,
    report: TenantCollection,
    room: number,
  ): Promise<Condemned | undefined> {
    const dry = request.dryRun === true;
    const now = await this.store.now();
    const older = request.olderThanSeconds;
    const keep = older !== undefined ? 0 : (t.retainVersions ?? this.options.retainVersions);
    const deadBefore = now - (older ?? t.retainSeconds ?? this.options.retainSeconds) * 1000;
    await this.collectVersions(t, keep, deadBefore, dry, report);
    const idleBefore = older === undefined ? undefined : now - Math.max(older * 1000, IDLE_MIN_MS);
    await this.collectUploads(t, idleBefore, dry, report);
    await this.collectRopes(t, dry, report);
    return this.collectChunks(t, dry, report, room);
  }

  private async collectVersions(
    t: GcTenant,
    keep: number,
    deadBefore: number,
    dry: boolean,
    report: TenantCollection,
  ): Promise<void> {
    const batch = this.options.batchRows;
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      this.signal?.throwIfAborted();
      const paths = await this.store.pathsAfter(t.id, after, batch);
      if (paths.length === 0) return;
      const last = paths[paths.length - 1]!;
      const dead = await this.store.deadVersions(t.id, after, last, deadBefore, keep);
      for (let i = 0; i < dead.length; i += batch) {
        const part = dead.slice(i, i + batch);
        if (dry) {
          report.versions += part.length;
          continue;
        }
        const removed = await this.store.deleteVersions(t.id, part);
        report.versions += removed.rows;
        report.versionBytes += removed.bytes;
      }
      if (paths.length < batch) return;
      after = last;
    }
  }

  private async collectUploads(
    t: GcTenant,
    idleBefore: number | undefined,
    dry: boolean,
    report: TenantCollection,
  ): Promise<void> {
    const batch = this.options.batchRows;
    let after = "00000000-0000-0000-0000-000000000000";
    for (;;) {
      this.signal?.throwIfAborted();
      const ids = await this.store.staleUploads(t.id, idleBefore, after, batch);
      for (const id of ids) {
        if (dry) {
          report.uploads++;
          continue;
        }
        // The chunk list in bounded batches, then the row (a client still holding its state then
        // finds the upload gone: "begin again").
        while ((await this.store.deleteUploadRows(id, batch)) > 0) this.signal?.throwIfAborted();
        if (await this.store.deleteUpload(id)) report.uploads++;
      }
      if (ids.length < batch) return;
      after = ids[ids.length - 1]!;
    }
  }

  private async collectRopes(t: GcTenant, dry: boolean, report: TenantCollection): Promise<void> {
    const batch = this.options.batchRows;
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      this.signal?.throwIfAborted();
      const page = await this.store.ropesAfter(t.id, after, batch);
      if (page.length === 0) return;
      const garbage = page.filter((r) => !r.referenced);
      if (dry) report.ropes += garbage.length;
      else for (const group of byRowBudget(garbage, batch)) await this.deleteRopes(t, group, report);
      if (page.length < batch) return;
      after = page[page.length - 1]!.hash;
    }
  }

  private async deleteRopes(t: GcTenant, group: readonly RopeState[], report: TenantCollection) {
    const hashes = group.map((r) => r.hash);
    const done = await this.store.deleteRopes(t.id, hashes);
    if (!done.lost) {
      report.ropes += done.ropes;
      return;
    }
    // A writer referenced one of them meanwhile: the others one by one.
    report.lostRaces++;
    if (hashes.length === 1) return;
    for (const h of hashes) {
      const one = await this.store.deleteRopes(t.id, [h]);
      if (one.lost) report.lostRaces++;
      report.ropes += one.ropes;
    }
  }

  /**
   * Step 4 over every chunk of the tenant, one page at a time: sweep chunks condemned long enough
   * ago, save condemned chunks referenced again, condemn unreferenced ones.
   */
  private async collectChunks(
    t: GcTenant,
    dry: boolean,
    report: TenantCollection,
    room: number,
  ): Promise<Condemned | undefined> {
    const batch = this.options.batchRows;
    const sweepBefore = await this.sweepHorizon(t.id);
    const condemned: Condemned = { tenant: report, hashes: [], bytes: new Map() };
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      this.signal?.throwIfAborted();
      const page = await this.store.chunksAfter(t.id, after, batch);
      if (page.length === 0) break;
      const sweep: ChunkState[] = [];
      const save: Buffer[] = [];
      const condemn: ChunkState[] = [];
      for (const c of page) {
        if (c.referenced) {
          if (c.condemnedAt !== undefined) save.push(c.hash);
        } else if (c.condemnedAt === undefined) condemn.push(c);
        else if (c.condemnedAt < sweepBefore) sweep.push(c);
        else {
          report.pendingChunks++;
          report.pendingBytes += c.bytes;
        }
      }
      if (dry) {
        for (const c of [...sweep, ...condemn]) {
          report.chunks++;
          report.bytes += c.bytes;
        }
      } else {
        await this.store.save(t.id, save);
        const removed = await this.store.sweep(
          t.id,
          sweep.map((c) => c.hash),
          sweepBefore,
        );
        if (removed.lost) report.lostRaces++;
        report.chunks += removed.rows;
        report.bytes += removed.bytes;
        const marked = await this.store.condemn(
          t.id,
          condemn.map((c) => c.hash),
          this.options.marginMs / 2,
        );
        const sizes = new Map(condemn.map((c) => [c.hash.toString("hex"), c.bytes]));
        for (const h of marked) {
          const bytes = sizes.get(h.toString("hex")) ?? 0;
          if (condemned.hashes.length < room) {
            condemned.hashes.push(h);
            condemned.bytes.set(h.toString("hex"), bytes);
          } else {
            report.pendingChunks++;
            report.pendingBytes += bytes;
          }
        }
      }
      if (page.length < batch) break;
      after = page[page.length - 1]!.hash;
    }
    return condemned.hashes.length > 0 ? condemned : undefined;
  }

  /** Deletes chunks this run condemned, now that the margin has passed (those still unreferenced). */
  private async sweep(report: TenantCollection, hashes: Buffer[], bytes: Map<string, number>) {
    const before = await this.sweepHorizon(report.tenantId);
    const batch = this.options.batchRows;
    for (let i = 0; i < hashes.length; i += batch) {
      this.signal?.throwIfAborted();
      const part = hashes.slice(i, i + batch);
      const removed = await this.store.sweep(report.tenantId, part, before);
      if (removed.lost) report.lostRaces++;
      report.chunks += removed.rows;
      report.bytes += removed.bytes;
      const left = part.length - removed.rows;
      if (left > 0 && !removed.lost) {
        // Kept: an upload open since before they were condemned (or referenced again).
        report.pendingChunks += left;
        for (const h of part) report.pendingBytes += bytes.get(h.toString("hex")) ?? 0;
        report.pendingBytes -= removed.bytes;
      }
    }
  }

  /**
   * Chunks condemned before this moment (Unix ms, database clock) may be deleted: the margin
   * before now, and before the start of the tenant's oldest open upload (which may rely on a chunk
   * it learned of before the chunk was condemned).
   */
  private async sweepHorizon(tenantId: string): Promise<number> {
    const [now, oldest] = await Promise.all([this.store.now(), this.store.oldestOpenUpload(tenantId)]);
    return Math.min(now, oldest ?? now) - this.options.marginMs;
  }

  /** Removes a deleted tenant's data, table by table in bounded batches, then its row. */
  private async purge(t: GcTenant, report: TenantCollection): Promise<void> {
    const batch = this.options.batchRows;
    for (const table of PURGE_TABLES) {
      for (;;) {
        this.signal?.throwIfAborted();
        const n = await this.store.purge(t.id, table, batch);
        report.purgedRows += n;
        if (table === "file_versions") report.versions += n;
        if (table === "ropes") report.ropes += n;
        if (table === "uploads") report.uploads += n;
        if (table === "chunks") report.chunks += n;
        if (n < batch) break;
      }
    }
    await this.store.dropTenant(t.id);
  }
}

function emptyReport(t: GcTenant): TenantCollection {
  return {
    tenantId: t.id,
    label: t.label,
    deleted: t.deleted,
    versions: 0,
    versionBytes: 0,
    uploads: 0,
    ropes: 0,
    chunks: 0,
    bytes: 0,
    pendingChunks: 0,
    pendingBytes: 0,
    lostRaces: 0,
    purgedRows: 0,
  };
}

/** Groups ropes so each group's chunk lists hold at most `budget` rows (a larger rope goes alone). */
function byRowBudget(ropes: readonly RopeState[], budget: number): RopeState[][] {
  const out: RopeState[][] = [];
  let group: RopeState[] = [];
  let rows = 0;
  for (const r of ropes) {
    const n = Math.max(1, r.chunkCount);
    if (group.length > 0 && rows + n > budget) {
      out.push(group);
      group = [];
      rows = 0;
    }
    group.push(r);
    rows += n;
  }
  if (group.length > 0) out.push(group);
  return out;
}
