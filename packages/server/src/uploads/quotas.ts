import { LRUCache } from "lru-cache";
import { CacheroachError } from "../errors.js";
import type { ChunkStore, ChunkWrite } from "../store/chunk-store.js";
import type { TenantPolicy, TenantStore } from "../store/tenant-store.js";
import type { UploadStore } from "../store/upload-store.js";
import type { UsageStore } from "../store/usage-store.js";

/** The server's defaults for tenants without limits of their own (settings). */
export interface QuotaDefaults {
  /** Physical bytes a tenant may store; 0 = unlimited. */
  readonly quotaBytes: number;
  /** Open uploads per principal per tenant; 0 = unlimited. */
  readonly maxOpenUploads: number;
}

/** A tenant's limits in force: its own values, or the server's defaults. 0 = unlimited. */
export interface EffectiveLimits {
  readonly quotaBytes: number;
  readonly maxOpenUploads: number;
}

/**
 * How long a tenant's limits are remembered. A change through Tenants.Ensure on this server
 * applies at once ({@link Quotas.forget}); on other servers within this time.
 */
const POLICY_TTL_MS = 5_000;

/**
 * Enforces per-tenant quotas on physical bytes and the limit on open uploads per principal.
 *
 * A write is checked before its chunks are stored: with no quota in force it costs nothing (the
 * tenant's limits are cached); with one, one small read of the tenant's usage, and only when the
 * write's bytes could cross the quota, one lookup of which of its chunks are new. Writes that
 * store no new chunk pass even at the quota. The check and the write are not atomic: writes
 * racing each other can each pass and together overshoot the quota by what they store
 * (docs/operations.md); a write that starts after another finished sees its usage.
 */
export class Quotas {
  /** Refusals since start (read by the metrics at scrape time). */
  readonly refusals = { quota: 0, openUploads: 0 };
  private readonly limitsCache = new LRUCache<string, EffectiveLimits>({ max: 10_000, ttl: POLICY_TTL_MS });

  constructor(
    private readonly tenants: TenantStore,
    private readonly usage: UsageStore,
    private readonly chunks: ChunkStore,
    private readonly uploads: UploadStore,
    readonly defaults: QuotaDefaults,
  ) {}

  /** The limits in force for a tenant's own policy. */
  effective(policy: TenantPolicy): EffectiveLimits {
    return {
      quotaBytes: policy.quotaBytes ?? this.defaults.quotaBytes,
      maxOpenUploads: policy.maxOpenUploads ?? this.defaults.maxOpenUploads,
    };
  }

  /** Forgets what is cached of a tenant's limits (after its policy changed here). */
  forget(tenantId: string): void {
    this.limitsCache.delete(tenantId);
  }

  /** A tenant's limits in force (cached briefly); a missing tenant has the defaults. */
  async limits(tenantId: string): Promise<EffectiveLimits> {
    const hit = this.limitsCache.get(tenantId);
    if (hit) return hit;
    const limits = this.effective((await this.tenants.policy(tenantId)) ?? {});
    this.limitsCache.set(tenantId, limits);
    return limits;
  }

  /**
   * Refuses (ERR_QUOTA_EXCEEDED) a write of `writes` that would take the tenant's physical bytes
   * over its quota; chunks the tenant stores already cost nothing.
   */
  async checkWrite(tenantId: string, writes: readonly ChunkWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const { quotaBytes } = await this.limits(tenantId);
    if (quotaBytes === 0) return;
    const distinct = new Map<string, ChunkWrite>();
    for (const w of writes) distinct.set(w.hash.toString("hex"), w);
    let most = 0;
    for (const w of distinct.values()) most += w.data.length;
    const used = (await this.usage.physical(tenantId)).bytes;
    if (used + most <= quotaBytes) return;
    const missing = await this.chunks.missing(
      tenantId,
      [...distinct.values()].map((w) => w.hash),
    );
    let added = 0;
    for (const h of missing) added += distinct.get(h.toString("hex"))?.data.length ?? 0;
    if (added === 0 || used + added <= quotaBytes) return;
    this.refusals.quota++;
    throw new CacheroachError(
      "ERR_QUOTA_EXCEEDED",
      `tenant ${tenantId} is over its quota: it stores ${describeBytes(used)} of its ${describeBytes(quotaBytes)} quota, ` +
        `and this write needs ${describeBytes(added)} more; nothing was written`,
    );
  }

  /**
   * Refuses (ERR_TOO_MANY_UPLOADS) to open one more upload for a principal that has the tenant's
   * limit of open uploads already. Sessions without a principal (the operator's bootstrap token)
   * are not limited.
   */
  async checkBegin(tenantId: string, principalId: string | undefined): Promise<void> {
    if (principalId === undefined) return;
    const { maxOpenUploads } = await this.limits(tenantId);
    if (maxOpenUploads === 0) return;
    const open = await this.uploads.countOpenBy(tenantId, principalId, maxOpenUploads);
    if (open < maxOpenUploads) return;
    this.refusals.openUploads++;
    throw new CacheroachError(
      "ERR_TOO_MANY_UPLOADS",
      `principal ${principalId} has ${open} open uploads in tenant ${tenantId}, its limit; ` +
        "commit them or let them expire before beginning another",
    );
  }
}

/** "10.0 GiB (10737418240 bytes)": readable, and exact. */
export function describeBytes(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let unit = "";
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return unit === "" ? `${n} bytes` : `${v.toFixed(1)} ${unit} (${n} bytes)`;
}
