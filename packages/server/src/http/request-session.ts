import type { Authorizer } from "../auth/authorizer.js";
import type { SessionInfo } from "../auth/session.js";
import type { SessionStore } from "../auth/session-store.js";
import { PUBLIC_SESSIONS } from "../bootstrap-data.js";
import { WELL_KNOWN } from "../ids.js";

/** Where a request's token came from. */
export type TokenSource = "header" | "query" | "cookie";

/** Minimal request shape shared by HTTP/1.1 and HTTP/2 compatibility requests. */
export interface HeaderSource {
  readonly headers: Record<string, string | string[] | undefined>;
}

/**
 * Finds a bearer token: `Authorization: Bearer …`, then the `access_token` query parameter
 * (signed URLs), then the `authorization` cookie (browser logins).
 */
export function findToken(req: HeaderSource, url: URL): { token: string; source: TokenSource } | undefined {
  const auth = req.headers["authorization"];
  if (typeof auth === "string" && auth.trim() !== "") {
    const m = /^bearer\s+(\S+)$/i.exec(auth.trim());
    return m ? { token: m[1]!, source: "header" } : { token: "", source: "header" };
  }
  const q = url.searchParams.get("access_token");
  if (q) return { token: q, source: "query" };
  const cookie = req.headers["cookie"];
  if (typeof cookie === "string") {
    for (const part of cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === "authorization" && v.length)
        return { token: decodeURIComponent(v.join("=")), source: "cookie" };
    }
  }
  return undefined;
}

/** The session anonymous requests act as: the unauthenticated principal's public session. */
export const PUBLIC_SESSION: SessionInfo = {
  id: PUBLIC_SESSIONS.publicAccess,
  principalId: WELL_KNOWN.unauthenticatedPrincipal,
  caps: 5, // read + delegate: acts through the unauthenticated principal's grants
  scope: { kind: "principal", principalId: WELL_KNOWN.unauthenticatedPrincipal },
  expiresAt: new Date(8.64e15),
  issuedAt: new Date(0),
  name: "public-access-v0",
  note: "",
  issuedBy: undefined,
};

/**
 * The session of an HTTP request: the presented token's (an invalid one is an error, never a
 * silent downgrade), else the public session if an operator has not revoked it.
 */
export async function sessionOf(
  req: HeaderSource,
  url: URL,
  authz: Authorizer,
  sessions: SessionStore,
): Promise<{ session: SessionInfo | undefined; token: string | undefined }> {
  const found = findToken(req, url);
  if (found) return { session: await authz.authenticate(found.token), token: found.token };
  const active = await sessions.isActive(PUBLIC_SESSIONS.publicAccess);
  return { session: active ? PUBLIC_SESSION : undefined, token: undefined };
}
