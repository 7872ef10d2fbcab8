import { WELL_KNOWN } from "@cacheroach/core";
import type { Authorizer } from "../auth/authorizer.js";
import type { SessionInfo } from "../auth/session.js";
import { PUBLIC_SESSIONS } from "../bootstrap-data.js";
import type { HttpRequest } from "../net/node-http.js";
import type { SessionStore } from "../store/session-store.js";
import { readCookie, SESSION_COOKIE } from "./cookies.js";
import { isStateChanging, requireSameOrigin } from "./same-origin.js";
import type { Site } from "./site.js";

/** Where a request's token came from. */
export type TokenSource = "header" | "query" | "cookie";

/** Minimal request shape shared by HTTP/1.1 and HTTP/2 compatibility requests. */
export interface HeaderSource {
  readonly headers: Record<string, string | string[] | undefined>;
}

/**
 * Finds a bearer token: `Authorization: Bearer …`, then the `access_token` query parameter
 * (signed URLs), then the `authorization` cookie (browser logins). A cookie that is not valid
 * percent-encoding is ERR_BAD_REQUEST.
 */
export function findToken(req: HeaderSource, url: URL): { token: string; source: TokenSource } | undefined {
  const auth = req.headers["authorization"];
  if (typeof auth === "string" && auth.trim() !== "") {
    const m = /^bearer\s+(\S+)$/i.exec(auth.trim());
    return m ? { token: m[1]!, source: "header" } : { token: "", source: "header" };
  }
  const q = url.searchParams.get("access_token");
  if (q) return { token: q, source: "query" };
  const cookieHeader = req.headers["cookie"];
  const cookie = readCookie(
    Array.isArray(cookieHeader) ? cookieHeader.join("; ") : cookieHeader,
    SESSION_COOKIE,
  );
  if (cookie) return { token: cookie, source: "cookie" };
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

/** What {@link sessionOf} needs. */
export interface SessionDeps {
  readonly authz: Authorizer;
  readonly sessions: SessionStore;
  readonly site: Site;
}

/**
 * The session of an HTTP request: the presented token's (an invalid one is an error, never a
 * silent downgrade), else the public session if an operator has not revoked it. A
 * state-changing request (PUT, POST, DELETE, …) whose only credential is the browser cookie
 * must be same-origin, else it is refused before anything is read or written.
 */
export async function sessionOf(
  req: HttpRequest,
  url: URL,
  deps: SessionDeps,
): Promise<{ session: SessionInfo | undefined; token: string | undefined }> {
  const found = findToken(req, url);
  if (found?.source === "cookie" && isStateChanging(req.method)) {
    requireSameOrigin(req, deps.site, `a ${req.method} authenticated only by cookie`);
  }
  if (found) return { session: await deps.authz.authenticate(found.token), token: found.token };
  const active = await deps.sessions.isActive(PUBLIC_SESSIONS.publicAccess);
  return { session: active ? PUBLIC_SESSION : undefined, token: undefined };
}
