/** Tenants as JSON for --json output. */
import type { Tenant, TenantPolicy } from "@cacheroach/proto";
import { formatBytes, formatSeconds } from "./format.js";

/** A tenant as plain JSON. */
export interface TenantJson {
  id: string;
  label: string;
  version: number;
}

/** Converts a Tenant message to {@link TenantJson}. */
export function tenantJson(t: Tenant): TenantJson {
  return { id: t.id, label: t.label, version: Number(t.version) };
}

/** A tenant's storage policy as JSON: null = the server's default (in `policy`); 0 = unlimited. */
export interface PolicyJson {
  quotaBytes: number | null;
  maxOpenUploads: number | null;
  retainVersions: number | null;
  retainSeconds: number | null;
}

/** What a tenant stores, as raw numbers. */
export interface UsageJson {
  files: number;
  logicalBytes: number;
  chunks: number;
  physicalBytes: number;
  /** logicalBytes / physicalBytes; 0 when nothing is stored. */
  dedupRatio: number;
}

/** A tenant with its own policy, the policy in force, and (when asked) its usage. */
export interface TenantWideJson extends TenantJson {
  policy: PolicyJson;
  effectivePolicy: PolicyJson;
  usage?: UsageJson;
}

/** A policy message as {@link PolicyJson}. */
export function policyJson(p: TenantPolicy | undefined): PolicyJson {
  const n = (v: bigint | undefined) => (v === undefined ? null : Number(v));
  return {
    quotaBytes: n(p?.quotaBytes),
    maxOpenUploads: n(p?.maxOpenUploads),
    retainVersions: n(p?.retainVersions),
    retainSeconds: n(p?.retainSeconds),
  };
}

/** Converts a Tenant message to {@link TenantWideJson}. */
export function tenantWideJson(t: Tenant): TenantWideJson {
  const out: TenantWideJson = {
    ...tenantJson(t),
    policy: policyJson(t.policy),
    effectivePolicy: policyJson(t.effectivePolicy),
  };
  if (t.usage) {
    out.usage = {
      files: Number(t.usage.files),
      logicalBytes: Number(t.usage.logicalBytes),
      chunks: Number(t.usage.chunks),
      physicalBytes: Number(t.usage.physicalBytes),
      dedupRatio: t.usage.dedupRatio,
    };
  }
  return out;
}

/** The quota in force: "10 GiB", "unlimited", with " (default)" when the server's default applies. */
export function quotaText(t: TenantWideJson): string {
  const q = t.effectivePolicy.quotaBytes ?? 0;
  return `${q === 0 ? "unlimited" : formatBytes(q)}${t.policy.quotaBytes === null ? " (default)" : ""}`;
}

/** The whole policy in force, one line per setting, each marked when it is the server's default. */
export function policyLines(t: TenantWideJson): string[] {
  const mark = (own: number | null) => (own === null ? " (server default)" : "");
  const e = t.effectivePolicy;
  const p = t.policy;
  return [
    `quota:            ${quotaText(t).replace(" (default)", "")}${mark(p.quotaBytes)}`,
    `max open uploads: ${e.maxOpenUploads === 0 ? "unlimited" : String(e.maxOpenUploads)}${mark(p.maxOpenUploads)}`,
    `retain versions:  ${String(e.retainVersions)}${mark(p.retainVersions)}`,
    `retain:           ${formatSeconds(e.retainSeconds ?? 0)}${mark(p.retainSeconds)}`,
  ];
}
