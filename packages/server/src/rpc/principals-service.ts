import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { type Principal, PrincipalSchema, type Principals } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CAP, type SessionInfo } from "../auth/session.js";
import { CacheroachError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import type { PrincipalRecord, PrincipalStore } from "../store/principal-store.js";
import type { SessionStore } from "../store/session-store.js";

/** The Principals service (authorization: auth/policy.ts). */
export function createPrincipalsService(
  principals: PrincipalStore,
  sessions: SessionStore,
  authz: Authorizer,
): ServiceImpl<typeof Principals> {
  return {
    async *list() {
      for (const p of await principals.list()) yield toPrincipal(p);
    },

    async load(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      let p: PrincipalRecord | undefined;
      switch (req.kind.case) {
        case "id":
          p = await principals.get(parseId(req.kind.value, "id"));
          break;
        case "email":
          p = await principals.byEmail(req.kind.value.trim().toLowerCase());
          break;
        case "emailDomain":
          p = await principals.byEmailDomain(req.kind.value.trim().toLowerCase());
          break;
        default:
          throw new CacheroachError("ERR_BAD_REQUEST", "give an id, email or email_domain");
      }
      // Not found and not allowed look the same: a caller learns nothing about principals it has no authority over.
      if (!p || !(await authz.overPrincipal(caller, p.id, 0)))
        throw new CacheroachError("ERR_NOT_FOUND", "no such principal");
      return toPrincipal(p, hasPii(caller));
    },

    async *watch(req, ctx: HandlerContext) {
      const id = parseId(req.id, "id");
      const every = req.interval ? durationMs(req.interval) : 1000;
      if (every < 100) throw new CacheroachError("ERR_BAD_REQUEST", "interval must be at least 100 ms");
      let last = -1;
      while (!ctx.signal.aborted) {
        const p = await principals.get(id);
        if (!p) throw new CacheroachError("ERR_NOT_FOUND", `no principal ${id}`);
        if (p.version !== last) {
          last = p.version;
          yield toPrincipal(p);
        }
        // An abort ends the wait early (rejecting); the loop condition then ends the stream.
        await sleep(every, undefined, { signal: ctx.signal }).catch(() => {});
      }
    },

    async ensure(req) {
      const p = req.principal;
      if (!p) throw new CacheroachError("ERR_BAD_REQUEST", "principal is required");
      if (req.delete) {
        const id = parseId(p.id, "principal.id");
        // Its sessions go with it; what they issued, to other principals, is revoked with them.
        await principals.delete(id, Number(p.version), (q) => sessions.revokeAllOf(id, q));
        return {};
      }
      let claims: Record<string, unknown> = {};
      if (p.claimsJson !== "") {
        try {
          claims = JSON.parse(p.claimsJson);
        } catch {
          throw new CacheroachError("ERR_BAD_REQUEST", "claims_json is not valid JSON");
        }
        if (claims === null || typeof claims !== "object" || Array.isArray(claims)) {
          throw new CacheroachError("ERR_BAD_REQUEST", "claims_json must be a JSON object");
        }
      }
      const domain = p.emailDomain.trim().toLowerCase();
      if (domain !== "" && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) {
        throw new CacheroachError(
          "ERR_BAD_REQUEST",
          `email_domain ${JSON.stringify(p.emailDomain)} is not a domain name`,
        );
      }
      const id = p.id === "" ? newId() : parseId(p.id, "principal.id");
      return { principal: toPrincipal(await principals.ensure(id, Number(p.version), claims, domain)) };
    },
  };
}

function hasPii(s: SessionInfo): boolean {
  return s.scope.kind === "super" || (s.caps & CAP.pii) !== 0;
}

/** Stored principal → message; claims and email only when the caller may see PII. */
export function toPrincipal(p: PrincipalRecord, pii = true): Principal {
  const name = typeof p.claims["name"] === "string" ? p.claims["name"] : p.id;
  return create(PrincipalSchema, {
    id: p.id,
    label: name,
    version: BigInt(p.version),
    claimsJson: pii ? JSON.stringify(p.claims) : "",
    emailDomain: p.emailDomain,
    email: pii ? p.email : "",
  });
}
