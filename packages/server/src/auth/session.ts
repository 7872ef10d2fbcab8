import type { Scope, SessionRecord } from "../store/session-store.js";

export type { Scope };

/** Capability bits (bit n-1 for proto field n of Capabilities). */
export const CAP = { read: 1, write: 2, delegate: 4, pii: 8, fetch: 16 } as const;
/** Every capability. */
export const ALL_CAPS = 31;

/** Names of the capabilities, for messages and the CLI. */
export type CapabilityName = keyof typeof CAP;

/**
 * A decoded, validated session. Three kinds of token present one (see {@link tokenKind}): a
 * durable session (a row, revocable), a signed URL (no row; read of one file, valid while the
 * session it was minted under is) and the operator's bootstrap token (no row, no issuer, super).
 */
export interface SessionInfo extends Omit<SessionRecord, "id"> {
  /** Undefined for ephemeral tokens (bootstrap, signed URLs), which have no row to revoke. */
  readonly id: string | undefined;
}

/** Which kind of token presents a session. */
export type TokenKind = "durable" | "signed-url" | "bootstrap";

/** The kind of token `s` came from. */
export function tokenKind(s: SessionInfo): TokenKind {
  if (s.id !== undefined) return "durable";
  return s.issuedBy !== undefined ? "signed-url" : "bootstrap";
}

/** What an operation needs: capabilities at a location. */
export interface Need {
  readonly caps: number;
  readonly tenantId: string;
  /** An exact path or a "/dir/*" pattern. */
  readonly path: string;
}

/** Pretty names of a capability mask ("read,write"). */
export function capNames(mask: number): string {
  const names = (Object.keys(CAP) as CapabilityName[]).filter((n) => mask & CAP[n]);
  return names.length ? names.join(",") : "none";
}

/**
 * Does the held path pattern cover the wanted path or pattern? "/*" covers everything;
 * "/dir/*" covers everything below "/dir/" (including narrower patterns "/dir/sub/*"); an exact
 * path covers only itself. (The original system treated exact paths as prefixes; see docs/security.md.)
 */
export function pathCovers(held: string, want: string): boolean {
  if (held.endsWith("/*")) {
    const dir = held.slice(0, -1); // keeps the trailing "/"
    return want.startsWith(dir) && want.length > dir.length;
  }
  return held === want;
}

/** Is scope `want` within scope `held`? */
export function scopeCovers(held: Scope, want: Scope): boolean {
  if (held.kind === "super") return true;
  if (want.kind === "super") return false;
  if (held.kind === "principal") return want.kind === "principal" && want.principalId === held.principalId;
  if (want.kind !== "location") return false;
  if (want.tenantId !== held.tenantId || !pathCovers(held.path, want.path)) return false;
  return held.version === 0 || held.version === want.version;
}

/** Does a location session grant `need` directly (no delegation)? */
export function grants(s: SessionInfo, need: Need): boolean {
  if (s.scope.kind === "super") return true;
  if ((s.caps & need.caps) !== need.caps) return false;
  return scopeCovers(s.scope, { kind: "location", tenantId: need.tenantId, path: need.path, version: 0 });
}
