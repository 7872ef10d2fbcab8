import { create } from "@bufbuild/protobuf";
import {
  type Tenant,
  type TenantPolicy as TenantPolicyMessage,
  TenantPolicySchema,
  TenantSchema,
  type Tenants,
  TenantUsageSchema,
} from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CacheroachError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import type { TenantPolicy, TenantRecord, TenantStore } from "../store/tenant-store.js";
import type { UsageStore } from "../store/usage-store.js";
import type { Quotas } from "../uploads/quotas.js";
import { mapLimit } from "../util/concurrency.js";

/** What the Tenants service needs beyond the tenant store: usage, limits and retention defaults. */
export interface TenantsServiceDeps {
  readonly usage: UsageStore;
  readonly quotas: Quotas;
  /** The server's retention defaults (settings retain-versions, retain). */
  readonly retention: { readonly retainVersions: number; readonly retainSeconds: number };
  /** Called after a tenant is deleted: garbage collection purges its data soon. */
  readonly onDeleted?: () => void;
}

/** Largest policy value accepted (JavaScript numbers are exact up to here). */
const MAX_POLICY_VALUE = BigInt(Number.MAX_SAFE_INTEGER);

/** Tenants' usage computed at once by List (each is a few statements). */
const USAGE_CONCURRENCY = 4;

/** The Tenants service (authorization: auth/policy.ts; List is filtered to readable tenants). */
export function createTenantsService(
  tenants: TenantStore,
  authz: Authorizer,
  deps: TenantsServiceDeps,
): ServiceImpl<typeof Tenants> {
  const policyMsg = (p: TenantPolicy): TenantPolicyMessage =>
    create(TenantPolicySchema, {
      retainVersions: big(p.retainVersions),
      retainSeconds: big(p.retainSeconds),
      quotaBytes: big(p.quotaBytes),
      maxOpenUploads: big(p.maxOpenUploads),
    });
  const effective = (p: TenantPolicy): TenantPolicy => ({
    retainVersions: p.retainVersions ?? deps.retention.retainVersions,
    retainSeconds: p.retainSeconds ?? deps.retention.retainSeconds,
    ...deps.quotas.effective(p),
  });
  const msg = (t: TenantRecord): Tenant =>
    create(TenantSchema, {
      id: t.id,
      label: t.label,
      version: BigInt(t.version),
      policy: policyMsg(t.policy),
      effectivePolicy: policyMsg(effective(t.policy)),
    });
  const withUsage = async (t: TenantRecord): Promise<Tenant> => {
    const m = msg(t);
    const [physical, logical] = await Promise.all([deps.usage.physical(t.id), deps.usage.logical(t.id)]);
    m.usage = create(TenantUsageSchema, {
      files: BigInt(logical.files),
      logicalBytes: BigInt(logical.bytes),
      chunks: BigInt(physical.chunks),
      physicalBytes: BigInt(physical.bytes),
      dedupRatio: physical.bytes > 0 ? logical.bytes / physical.bytes : 0,
    });
    return m;
  };
  return {
    async ensure(req) {
      const t = req.tenant;
      if (!t) throw new CacheroachError("ERR_BAD_REQUEST", "tenant is required");
      if (req.delete) {
        await tenants.delete(parseId(t.id, "tenant.id"), Number(t.version));
        deps.quotas.forget(t.id);
        deps.onDeleted?.();
        return {};
      }
      const label = t.label.trim();
      if (label.length < 1 || label.length > 256)
        throw new CacheroachError("ERR_BAD_REQUEST", "tenant label must be 1..256 characters");
      const id = t.id === "" ? newId() : parseId(t.id, "tenant.id");
      const policy = t.policy ? parsePolicy(t.policy) : undefined;
      const stored = await tenants.ensure(id, label, Number(t.version), policy);
      deps.quotas.forget(id);
      return { tenant: msg(stored) };
    },
    async get(req, ctx: HandlerContext) {
      const id = parseId(req.id, "id");
      const t = await tenants.get(id);
      // A tenant the caller cannot read anywhere looks exactly like a missing one.
      if (!t || !(await authz.touchesTenant(ctx.values.get(kSession)!, id))) {
        throw new CacheroachError("ERR_NOT_FOUND", `no tenant ${id}`);
      }
      return { tenant: req.withUsage ? await withUsage(t) : msg(t) };
    },
    async *list(req, ctx: HandlerContext) {
      const s = ctx.values.get(kSession)!;
      const visible: TenantRecord[] = [];
      for (const t of await tenants.list()) {
        // Never reveal a tenant the caller could not read.
        if (await authz.touchesTenant(s, t.id)) visible.push(t);
      }
      if (!req.withUsage) {
        for (const t of visible) yield msg(t);
        return;
      }
      yield* await mapLimit(visible, USAGE_CONCURRENCY, withUsage);
    },
  };
}

/** A policy message as the store's policy; a negative or too large value is ERR_BAD_REQUEST. */
function parsePolicy(p: TenantPolicyMessage): TenantPolicy {
  const field = (name: string, v: bigint | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (v < 0n || v > MAX_POLICY_VALUE) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `policy.${name} must be 0..${MAX_POLICY_VALUE} (got ${v}); nothing was changed`,
      );
    }
    return Number(v);
  };
  return {
    retainVersions: field("retain_versions", p.retainVersions),
    retainSeconds: field("retain_seconds", p.retainSeconds),
    quotaBytes: field("quota_bytes", p.quotaBytes),
    maxOpenUploads: field("max_open_uploads", p.maxOpenUploads),
  };
}

function big(n: number | undefined): bigint | undefined {
  return n === undefined ? undefined : BigInt(n);
}
