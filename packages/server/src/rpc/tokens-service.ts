import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Scope as ScopeMsg, Tokens } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/interceptor.js";
import { CAP, capNames, type Scope, type SessionInfo, scopeCovers } from "../auth/session.js";
import type { SessionStore } from "../auth/session-store.js";
import type { TokenSigner } from "../auth/token-signer.js";
import { StoreError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import { validatePath } from "../store/paths.js";
import { fromCapabilities, toSession } from "./convert.js";

/** The Tokens service: issuing and inspecting sessions (authorization: auth/policy.ts + checks here). */
export function createTokensService(
  signer: TokenSigner,
  sessions: SessionStore,
  authz: Authorizer,
): Partial<ServiceImpl<typeof Tokens>> {
  return {
    async current(_req, ctx: HandlerContext) {
      return toSession(ctx.values.get(kSession)!);
    },

    async issue(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      const t = req.template;
      if (!t) throw new StoreError("ERR_BAD_REQUEST", "template is required");
      const caps = fromCapabilities(t.capabilities);
      if (caps === 0) throw new StoreError("ERR_BAD_REQUEST", "template grants no capabilities");
      const scope = scopeFromMsg(t.scope);
      const principalId =
        t.principalId === "" ? caller.principalId : parseId(t.principalId, "template.principal_id");
      const now = new Date();
      const expiresAt = t.expiresAt ? timestampDate(t.expiresAt) : caller.expiresAt;
      if (expiresAt <= now) throw new StoreError("ERR_BAD_REQUEST", "template expires_at is in the past");
      // Only the operator's key-signed bootstrap token (ephemeral and super) may mint sessions that
      // outlive it: whoever holds the signing key has unbounded authority anyway.
      const bootstrap = caller.id === undefined && caller.scope.kind === "super";
      if (expiresAt > caller.expiresAt && !bootstrap) {
        throw new StoreError(
          "ERR_PERMISSION_DENIED",
          `a delegated session cannot outlive its issuer (which expires ${caller.expiresAt.toISOString()})`,
        );
      }
      await requireWithin(authz, caller, caps, scope, principalId);
      const name = t.name.trim();
      if (name.length > 128 || t.note.length > 1024)
        throw new StoreError("ERR_BAD_REQUEST", "name (128) or note (1024) too long");
      const issued: SessionInfo = {
        id: newId(),
        principalId,
        caps,
        scope,
        expiresAt,
        issuedAt: new Date(Math.floor(now.getTime() / 1000) * 1000),
        name,
        note: t.note,
        issuedBy: caller.id,
      };
      await sessions.insert(issued);
      return { issued: toSession(issued), token: { jwt: await signer.sign(issued) } };
    },

    async *find(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      if (!(await authz.overPrincipal(caller, caller.principalId, CAP.delegate))) {
        throw new StoreError(
          "ERR_PERMISSION_DENIED",
          "listing sessions needs delegate over your own principal (a login session)",
        );
      }
      const want = req.scope?.kind.case ? scopeFromMsg(req.scope) : undefined;
      for (const g of await authz.grantsOf(caller.principalId)) {
        if (!want || scopeCovers(g.scope, want)) yield toSession(g);
      }
    },

    async load(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      let found: SessionInfo | undefined;
      switch (req.kind.case) {
        case "id":
          found = await sessions.load(parseId(req.kind.value, "id"));
          if (found && !(await canManage(authz, caller, found))) {
            throw new StoreError("ERR_PERMISSION_DENIED", `no authority over session ${found.id}`);
          }
          break;
        case "name":
          found = await sessions.byName(caller.principalId, req.kind.value);
          break;
        default:
          throw new StoreError("ERR_BAD_REQUEST", "give a session id or name");
      }
      if (!found) throw new StoreError("ERR_NOT_FOUND", "no such session");
      return toSession(found);
    },

    async invalidate(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      switch (req.kind.case) {
        case "current":
          if (!req.kind.value) throw new StoreError("ERR_BAD_REQUEST", "current must be true when set");
          if (!caller.id)
            throw new StoreError(
              "ERR_BAD_REQUEST",
              "this token is ephemeral and cannot be revoked; it expires by itself",
            );
          await sessions.revoke(caller.id);
          return {};
        case "id": {
          const target = await sessions.load(parseId(req.kind.value, "id"));
          if (!target) return {}; // unknown IDs succeed: revoking is idempotent
          if (!(await canManage(authz, caller, target))) {
            throw new StoreError("ERR_PERMISSION_DENIED", `no authority to revoke session ${target.id}`);
          }
          await sessions.revoke(target.id!);
          return {};
        }
        default:
          throw new StoreError("ERR_BAD_REQUEST", "give a session id or current");
      }
    },

    async refresh(_req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      if (!caller.id)
        throw new StoreError("ERR_BAD_REQUEST", "this token is ephemeral and cannot be refreshed");
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      const lifetime = Math.max(60_000, caller.expiresAt.getTime() - caller.issuedAt.getTime());
      let cap = new Date(now.getTime() + lifetime);
      // Never beyond the issuer's own expiry.
      if (caller.issuedBy) {
        const issuer = await sessions.load(caller.issuedBy);
        if (issuer && issuer.expiresAt < cap) cap = issuer.expiresAt;
      }
      const next: SessionInfo = { ...caller, id: newId(), issuedAt: now, expiresAt: cap, note: caller.note };
      const stored = await sessions.load(caller.id);
      await sessions.replace(caller.id, { ...next, note: stored?.note ?? "" });
      return { issued: toSession(next), token: { jwt: await signer.sign(next) } };
    },

    async validate(req) {
      if (!req.token?.jwt) throw new StoreError("ERR_BAD_REQUEST", "token is required");
      return toSession(await authz.authenticate(req.token.jwt));
    },
  };
}

/** Converts and validates a scope message. */
export function scopeFromMsg(s: ScopeMsg | undefined): Scope {
  switch (s?.kind.case) {
    case "superToken":
      if (!s.kind.value) break;
      return { kind: "super" };
    case "onPrincipal":
      return { kind: "principal", principalId: parseId(s.kind.value, "scope.on_principal") };
    case "onLocation": {
      const l = s.kind.value;
      if (l.version < 0n) throw new StoreError("ERR_BAD_REQUEST", "scope version must not be negative");
      return {
        kind: "location",
        tenantId: parseId(l.tenantId, "scope.on_location.tenant_id"),
        path: validatePattern(l.path),
        version: Number(l.version),
      };
    }
  }
  throw new StoreError("ERR_BAD_REQUEST", "scope is required (super_token, on_principal or on_location)");
}

/** A grant path: an exact path, "/dir/*" or "/*". */
export function validatePattern(p: string): string {
  if (p === "/*") return p;
  if (p.endsWith("/*")) return `${validatePath(p.slice(0, -2), "path pattern")}/*`;
  if (p.includes("*"))
    throw new StoreError("ERR_BAD_PATH", `path pattern ${JSON.stringify(p)} may only end in "/*"`);
  return validatePath(p);
}

/**
 * May `caller` see or revoke `target`: its own session, super, delegate authority over the
 * owning principal, or delegate at the session's location.
 */
async function canManage(authz: Authorizer, caller: SessionInfo, target: SessionInfo): Promise<boolean> {
  if (caller.scope.kind === "super" || (caller.id !== undefined && caller.id === target.id)) return true;
  if (await authz.overPrincipal(caller, target.principalId, CAP.delegate)) return true;
  const sc = target.scope;
  return (
    sc.kind === "location" && authz.may(caller, { caps: CAP.delegate, tenantId: sc.tenantId, path: sc.path })
  );
}

/** Refuses a template that would exceed the caller's own authority. */
async function requireWithin(
  authz: Authorizer,
  caller: SessionInfo,
  caps: number,
  scope: Scope,
  owner: string,
) {
  if (caller.scope.kind === "super") return;
  const deny = (why: string) => new StoreError("ERR_PERMISSION_DENIED", `cannot issue this session: ${why}`);
  if (!(caller.caps & CAP.delegate)) throw deny("your session lacks the delegate capability");
  if ((caps & caller.caps) !== caps)
    throw deny(`it asks for ${capNames(caps & ~caller.caps)}, which your session lacks`);
  if (scope.kind === "super") throw deny("only a super session can issue a super session");
  if (scope.kind === "principal") {
    // Acting for a principal: the caller needs delegate authority over it, and so over the owner.
    if (!(await authz.overPrincipal(caller, scope.principalId, caps | CAP.delegate))) {
      throw deny("you have no delegate authority over the principal it acts for");
    }
    if (owner !== scope.principalId && !(await authz.overPrincipal(caller, owner, CAP.delegate))) {
      throw deny("you have no delegate authority over its owner");
    }
    return;
  }
  // A location grant may be given to any principal: it never exceeds what the caller may delegate there.
  if (!(await authz.may(caller, { caps: caps | CAP.delegate, tenantId: scope.tenantId, path: scope.path }))) {
    throw deny(`you may not delegate ${capNames(caps)} on ${scope.path} in tenant ${scope.tenantId}`);
  }
}
