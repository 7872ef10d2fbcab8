import { create } from "@bufbuild/protobuf";
import { type Principal, PrincipalSchema, type Principals } from "@cacheroach/proto";
import type { ServiceImpl } from "@connectrpc/connect";
import { StoreError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import type { PrincipalRecord, PrincipalStore } from "../store/principal-store.js";

/** The Principals service (authorization: auth/policy.ts). */
export function createPrincipalsService(principals: PrincipalStore): Partial<ServiceImpl<typeof Principals>> {
  return {
    async ensure(req) {
      const p = req.principal;
      if (!p) throw new StoreError("ERR_BAD_REQUEST", "principal is required");
      if (req.delete) {
        await principals.delete(parseId(p.id, "principal.id"), Number(p.version));
        return {};
      }
      let claims: Record<string, unknown> = {};
      if (p.claimsJson !== "") {
        try {
          claims = JSON.parse(p.claimsJson);
        } catch {
          throw new StoreError("ERR_BAD_REQUEST", "claims_json is not valid JSON");
        }
        if (claims === null || typeof claims !== "object" || Array.isArray(claims)) {
          throw new StoreError("ERR_BAD_REQUEST", "claims_json must be a JSON object");
        }
      }
      const domain = p.emailDomain.trim().toLowerCase();
      if (domain !== "" && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) {
        throw new StoreError(
          "ERR_BAD_REQUEST",
          `email_domain ${JSON.stringify(p.emailDomain)} is not a domain name`,
        );
      }
      const id = p.id === "" ? newId() : parseId(p.id, "principal.id");
      return { principal: toPrincipal(await principals.ensure(id, Number(p.version), claims, domain)) };
    },
  };
}

/** Stored principal → message (the caller is trusted to see claims). */
export function toPrincipal(p: PrincipalRecord): Principal {
  const name = typeof p.claims["name"] === "string" ? p.claims["name"] : p.id;
  return create(PrincipalSchema, {
    id: p.id,
    label: name,
    version: BigInt(p.version),
    claimsJson: JSON.stringify(p.claims),
    emailDomain: p.emailDomain,
    email: p.email,
  });
}
