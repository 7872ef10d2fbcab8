import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Capabilities,
  CapabilitiesSchema,
  type Scope as ScopeMsg,
  ScopeSchema,
  type Session,
  SessionSchema,
  SessionStatus as SessionStatusMsg,
} from "@cacheroach/proto";
import type { SessionStatus } from "../store/session-store.js";
import { CAP, type Scope, type SessionInfo } from "./session.js";

// A session as the API shows it (cacheroach.v1.Session): the Tokens service answers with it and
// a downloaded CLI configuration (http/special-routes.ts) carries it.

/** Capability mask → message. */
export function toCapabilities(mask: number): Capabilities {
  return create(CapabilitiesSchema, {
    read: !!(mask & CAP.read),
    write: !!(mask & CAP.write),
    delegate: !!(mask & CAP.delegate),
    pii: !!(mask & CAP.pii),
    fetch: !!(mask & CAP.fetch),
  });
}

/** Message → capability mask. */
export function fromCapabilities(c: Capabilities | undefined): number {
  if (!c) return 0;
  return (
    (c.read ? CAP.read : 0) |
    (c.write ? CAP.write : 0) |
    (c.delegate ? CAP.delegate : 0) |
    (c.pii ? CAP.pii : 0) |
    (c.fetch ? CAP.fetch : 0)
  );
}

/** Scope → message. */
export function toScope(s: Scope): ScopeMsg {
  switch (s.kind) {
    case "super":
      return create(ScopeSchema, { kind: { case: "superToken", value: true } });
    case "principal":
      return create(ScopeSchema, { kind: { case: "onPrincipal", value: s.principalId } });
    case "location":
      return create(ScopeSchema, {
        kind: {
          case: "onLocation",
          value: { tenantId: s.tenantId, path: s.path, version: BigInt(s.version) },
        },
      });
  }
}

const STATUS: Record<SessionStatus, SessionStatusMsg> = {
  active: SessionStatusMsg.ACTIVE,
  revoked: SessionStatusMsg.REVOKED,
  expired: SessionStatusMsg.EXPIRED,
  orphaned: SessionStatusMsg.ORPHANED,
};

/** Session → message (with its status, for listings). */
export function toSession(s: SessionInfo & { status?: SessionStatus }): Session {
  return create(SessionSchema, {
    id: s.id ?? "",
    capabilities: toCapabilities(s.caps),
    principalId: s.principalId,
    scope: toScope(s.scope),
    expiresAt: timestampFromDate(s.expiresAt),
    issuedAt: timestampFromDate(s.issuedAt),
    note: s.note,
    name: s.name,
    issuedBy: s.issuedBy ?? "",
    authorityId: s.authorityId ?? "",
    status: s.status ? STATUS[s.status] : SessionStatusMsg.UNSPECIFIED,
  });
}
