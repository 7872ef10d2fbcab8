/** Tenants as JSON for --json output. */
import type { Tenant } from "@cacheroach/proto";

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
