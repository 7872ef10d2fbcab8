import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Scope as ScopeMsg, Tokens } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CAP, capNames, type Scope, type SessionInfo, scopeCovers, tokenKind } from "../auth/session.js";
import { fromCapabilities, toSession } from "../auth/session-message.js";
import type { TokenSigner } from "../auth/token-signer.js";
import { CacheroachError } from "../errors.js";
import { newId, parseId } from "../ids.js";
import { validatePath } from "../store/paths.js";
import type { SessionRecord, SessionStore } from "../store/session-store.js";

/** The Tokens service: issuing and inspecting sessions (authorization: auth/policy.ts + checks here). */
export function createTokensService(
  signer: TokenSigner,
  sessions: SessionStore,
  authz: Authorizer,
): ServiceImpl<typeof Tokens> {
  return {
    async current(_req, ctx: HandlerContext) {
      return toSession(ctx.values.get(kSession)!);
    },

    async issue(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      const t = req.template;
      if (!t) throw new CacheroachError("ERR_BAD_REQUEST", "template is required");
      const caps = fromCapabilities(t.capabilities);
      if (caps === 0) throw new CacheroachError("ERR_BAD_REQUEST", "template grants no capabilities");
      const scope = scopeFromMsg(t.scope);
      const principalId =
        t.principalId === "" ? caller.principalId : parseId(t.principalId, "template.principal_id");
      const now = new Date();
      const authority = await authorityWithin(authz, caller, caps, scope, principalId);
      // The new session is bound to the caller and to the authority it used: it expires no later
      // than either. Only the operator's key-signed bootstrap token (ephemeral and super) may mint
      // sessions that outlive it: whoever holds the signing key has unbounded authority anyway.
      const bound = tokenKind(caller) === "bootstrap" ? undefined : earliest(caller, authority);
      let expiresAt = t.expiresAt ? timestampDate(t.expiresAt) : (bound?.expiresAt ?? caller.expiresAt);
      if (expiresAt <= now)
        throw new CacheroachError("ERR_BAD_REQUEST", "template expires_at is in the past");
      if (req.capExpiry && bound && expiresAt > bound.expiresAt) expiresAt = bound.expiresAt;
      if (bound && expiresAt > bound.expiresAt) {
        throw new CacheroachError(
          "ERR_PERMISSION_DENIED",
          bound === caller
            ? `a delegated session cannot outlive its issuer (which expires ${caller.expiresAt.toISOString()})`
            : `a delegated session cannot outlive the grant it is issued under (session ${bound.id}, which expires ${bound.expiresAt.toISOString()})`,
        );
      }
      const name = t.name.trim();
      if (name.length > 128 || t.note.length > 1024)
        throw new CacheroachError("ERR_BAD_REQUEST", "name (128) or note (1024) too long");
      const issued: SessionRecord = {
        id: newId(),
        principalId,
        caps,
        scope,
        expiresAt,
        issuedAt: new Date(Math.floor(now.getTime() / 1000) * 1000),
        name,
        note: t.note,
        issuedBy: caller.id,
        authorityId: authority.id !== caller.id ? authority.id : undefined,
      };
      await sessions.insert(issued);
      return { issued: toSession(issued), token: { jwt: await signer.sign(issued) } };
    },

    async *find(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      if (!(await authz.overPrincipal(caller, caller.principalId, CAP.delegate))) {
        throw new CacheroachError(
          "ERR_PERMISSION_DENIED",
          "listing sessions needs delegate over your own principal (a login session)",
        );
      }
      const want = req.scope?.kind.case ? scopeFromMsg(req.scope) : undefined;
      if (req.owner === "" && req.issuedBy === "" && !req.includeInactive) {
        for (const g of await authz.grantsOf(caller.principalId)) {
          if (!want || scopeCovers(g.scope, want)) yield toSession({ ...g, status: "active" });
        }
        return;
      }
      const owner = req.owner === "" ? undefined : parseId(req.owner, "owner");
      const issuedUnder = req.issuedBy === "" ? undefined : parseId(req.issuedBy, "issued_by");
      const isSuper = caller.scope.kind === "super";
      if (owner !== undefined && owner !== caller.principalId && !isSuper) {
        if (!(await authz.overPrincipal(caller, owner, CAP.delegate)))
          throw new CacheroachError(
            "ERR_PERMISSION_DENIED",
            `listing sessions of ${owner} needs delegate over it`,
          );
      }
      if (
        issuedUnder !== undefined &&
        !isSuper &&
        issuedUnder !== caller.principalId &&
        issuedUnder !== caller.id
      ) {
        throw new CacheroachError(
          "ERR_PERMISSION_DENIED",
          "listing by issuer needs a super session, unless the issuer is your own principal or session",
        );
      }
      const filter: { owner?: string; issuedUnder?: string } = {};
      if (issuedUnder !== undefined) filter.issuedUnder = issuedUnder;
      // Without issued_by, the owner defaults to the caller (never "every session" by accident).
      if (owner !== undefined || issuedUnder === undefined) filter.owner = owner ?? caller.principalId;
      for (const s of await sessions.list(filter, MAX_LISTED)) {
        if (!req.includeInactive && s.status !== "active") continue;
        if (want && !scopeCovers(s.scope, want)) continue;
        yield toSession(s);
      }
    },

    async load(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      let found: SessionInfo | undefined;
      switch (req.kind.case) {
        case "id":
          found = await sessions.get(parseId(req.kind.value, "id"));
          if (found && !(await canManage(authz, caller, found))) {
            throw new CacheroachError("ERR_PERMISSION_DENIED", `no authority over session ${found.id}`);
          }
          break;
        case "name":
          found = await sessions.byName(caller.principalId, req.kind.value);
          break;
        default:
          throw new CacheroachError("ERR_BAD_REQUEST", "give a session id or name");
      }
      if (!found) throw new CacheroachError("ERR_NOT_FOUND", "no such session");
      return toSession(found);
    },

    async invalidate(req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      switch (req.kind.case) {
        case "current":
          if (!req.kind.value) throw new CacheroachError("ERR_BAD_REQUEST", "current must be true when set");
          if (!caller.id)
            throw new CacheroachError(
              "ERR_BAD_REQUEST",
              "this token is ephemeral and cannot be revoked; it expires by itself",
            );
          return { revoked: await sessions.revoke(caller.id) };
        case "id": {
          const target = await sessions.get(parseId(req.kind.value, "id"));
          if (!target) return { revoked: 0 }; // unknown IDs succeed: revoking is idempotent
          if (!(await canManage(authz, caller, target))) {
            throw new CacheroachError("ERR_PERMISSION_DENIED", `no authority to revoke session ${target.id}`);
          }
          return { revoked: await sessions.revoke(target.id!) };
        }
        default:
          throw new CacheroachError("ERR_BAD_REQUEST", "give a session id or current");
      }
    },

    async refresh(_req, ctx: HandlerContext) {
      const caller = ctx.values.get(kSession)!;
      if (!caller.id)
        throw new CacheroachError("ERR_BAD_REQUEST", "this token is ephemeral and cannot be refreshed");
      const stored = await sessions.get(caller.id);
      if (!stored || stored.revoked)
        throw new CacheroachError("ERR_UNAUTHENTICATED", "session has been revoked or has expired");
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      const lifetime = Math.max(60_000, stored.expiresAt.getTime() - stored.issuedAt.getTime());
      let cap = new Date(now.getTime() + lifetime);
      // Never beyond the sessions it was issued under (each of which is bound by its own).
      for (const parentId of [stored.issuedBy, stored.authorityId]) {
        if (parentId === undefined) continue;
        const parent = await sessions.get(parentId);
        if (!parent || parent.revoked || parent.expiresAt <= now || !(await sessions.isActive(parentId))) {
          throw new CacheroachError(
            "ERR_UNAUTHENTICATED",
            `the authority this session was issued under (session ${parentId}) is no longer valid`,
          );
        }
        if (parent.expiresAt < cap) cap = parent.expiresAt;
      }
      if (cap <= now) throw new CacheroachError("ERR_UNAUTHENTICATED", "session can no longer be extended");
      const next: SessionRecord = {
        id: newId(),
        principalId: stored.principalId,
        caps: stored.caps,
        scope: stored.scope,
        name: stored.name,
        note: stored.note,
        issuedBy: stored.issuedBy,
        authorityId: stored.authorityId,
        issuedAt: now,
        expiresAt: cap,
      };
      await sessions.replace(caller.id, next);
      return { issued: toSession(next), token: { jwt: await signer.sign(next) } };
    },

    async validate(req) {
      if (!req.token?.jwt) throw new CacheroachError("ERR_BAD_REQUEST", "token is required");
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
      if (l.version < 0n) throw new CacheroachError("ERR_BAD_REQUEST", "scope version must not be negative");
      return {
        kind: "location",
        tenantId: parseId(l.tenantId, "scope.on_location.tenant_id"),
        path: validatePattern(l.path),
        version: Number(l.version),
      };
    }
  }
  throw new CacheroachError(
    "ERR_BAD_REQUEST",
    "scope is required (super_token, on_principal or on_location)",
  );
}

/** A grant path: an exact path, "/dir/*" or "/*". */
export function validatePattern(p: string): string {
  if (p === "/*") return p;
  if (p.endsWith("/*")) return `${validatePath(p.slice(0, -2), "path pattern")}/*`;
  if (p.includes("*"))
    throw new CacheroachError("ERR_BAD_PATH", `path pattern ${JSON.stringify(p)} may only end in "/*"`);
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

/** The earlier-expiring of two sessions (the first, on a tie). */
function earliest(a: SessionInfo, b: SessionInfo): SessionInfo {
  return b.expiresAt < a.expiresAt ? b : a;
}

/** Most sessions one Find with filters streams. */
const MAX_LISTED = 10_000;

/**
 * Refuses a template that would exceed the caller's own authority; otherwise returns the session
 * whose authority it uses (the caller itself, or a grant a login acts through).
 */
async function authorityWithin(
  authz: Authorizer,
  caller: SessionInfo,
  caps: number,
  scope: Scope,
  owner: string,
): Promise<SessionInfo> {
  if (caller.scope.kind === "super") return caller;
  const deny = (why: string) =>
    new CacheroachError("ERR_PERMISSION_DENIED", `cannot issue this session: ${why}`);
  if (!(caller.caps & CAP.delegate)) throw deny("your session lacks the delegate capability");
  if ((caps & caller.caps) !== caps)
    throw deny(`it asks for ${capNames(caps & ~caller.caps)}, which your session lacks`);
  if (scope.kind === "super") throw deny("only a super session can issue a super session");
  if (scope.kind === "principal") {
    // Acting for a principal: the caller needs delegate authority over it, and so over the owner.
    const authority = await authz.principalAuthority(caller, scope.principalId, caps | CAP.delegate);
    if (!authority) throw deny("you have no delegate authority over the principal it acts for");
    if (owner !== scope.principalId && !(await authz.overPrincipal(caller, owner, CAP.delegate))) {
      throw deny("you have no delegate authority over its owner");
    }
    return authority;
  }
  // A location grant may be given to any principal: it never exceeds what the caller may delegate there.
  const authority = await authz.authorityFor(caller, {
    caps: caps | CAP.delegate,
    tenantId: scope.tenantId,
    path: scope.path,
  });
  if (!authority)
    throw deny(`you may not delegate ${capNames(caps)} on ${scope.path} in tenant ${scope.tenantId}`);
  return authority;
}
