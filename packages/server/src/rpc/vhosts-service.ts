import type { VHosts } from "@cacheroach/proto";
import type { ServiceImpl } from "@connectrpc/connect";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import { normalizeHost, type VHostStore } from "../store/vhost-store.js";

/** The VHosts service (super only; see auth/policy.ts). Serving by host is the HTTP layer's job. */
export function createVHostsService(vhosts: VHostStore): ServiceImpl<typeof VHosts> {
  return {
    async ensure(req) {
      if (!req.vhost) throw new CacheroachError("ERR_BAD_REQUEST", "vhost is required");
      const host = normalizeHost(req.vhost.vhost);
      const tenantId = parseId(req.vhost.tenantId, "vhost.tenant_id");
      if (req.delete) await vhosts.delete(host, tenantId);
      else await vhosts.ensure(host, tenantId);
      return {};
    },
    async *list() {
      for (const v of await vhosts.list()) yield { vhost: v.host, tenantId: v.tenantId };
    },
  };
}
