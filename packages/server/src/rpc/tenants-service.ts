import { create } from "@bufbuild/protobuf";
import { type Tenant, TenantSchema, type Tenants } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CacheroachError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import type { TenantStore } from "../store/tenant-store.js";

/** The Tenants service (authorization: auth/policy.ts; List is filtered to readable tenants). */
export function createTenantsService(
  tenants: TenantStore,
  authz: Authorizer,
  /** Called after a tenant is deleted: garbage collection purges its data soon. */
  onDeleted: () => void = () => {},
): ServiceImpl<typeof Tenants> {
  const msg = (t: { id: string; label: string; version: number }): Tenant =>
    create(TenantSchema, { id: t.id, label: t.label, version: BigInt(t.version) });
  return {
    async ensure(req) {
      const t = req.tenant;
      if (!t) throw new CacheroachError("ERR_BAD_REQUEST", "tenant is required");
      if (req.delete) {
        await tenants.delete(parseId(t.id, "tenant.id"), Number(t.version));
        onDeleted();
        return {};
      }
      const label = t.label.trim();
      if (label.length < 1 || label.length > 256)
        throw new CacheroachError("ERR_BAD_REQUEST", "tenant label must be 1..256 characters");
      const id = t.id === "" ? newId() : parseId(t.id, "tenant.id");
      return { tenant: msg(await tenants.ensure(id, label, Number(t.version))) };
    },
    async get(req, ctx: HandlerContext) {
      const id = parseId(req.id, "id");
      const t = await tenants.get(id);
      // A tenant the caller cannot read anywhere looks exactly like a missing one.
      if (!t || !(await authz.touchesTenant(ctx.values.get(kSession)!, id))) {
        throw new CacheroachError("ERR_NOT_FOUND", `no tenant ${id}`);
      }
      return { tenant: msg(t) };
    },
    async *list(_req, ctx: HandlerContext) {
      const s = ctx.values.get(kSession)!;
      for (const t of await tenants.list()) {
        // Never reveal a tenant the caller could not read.
        if (await authz.touchesTenant(s, t.id)) yield msg(t);
      }
    },
  };
}
