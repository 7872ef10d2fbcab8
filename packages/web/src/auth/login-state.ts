/**
 * Where the page's token comes from, and where it is kept.
 *
 * Two sources, tried in this order at start-up:
 *  1. a token the user pasted (kept in sessionStorage for this tab, or localStorage when they ask
 *     to be remembered on this device);
 *  2. a browser session cookie (the OIDC login sets one): `GET /_/v0/config` hands the cookie's
 *     token to same-origin requests only (docs/http.md), so the page can present it as a bearer
 *     token, which is all RPCs accept. This is the one place an OIDC login plugs in.
 *
 * A token is checked with Tokens.Current before it is used, so a bad one is refused at the door
 * with the server's reason.
 */
import type { Session } from "@cacheroach/proto";
import { type Api, apiFor } from "../api/client.js";
import { HttpError } from "../api/errors.js";

const KEY = "cacheroach.token";

/** A logged-in page: its clients, its session, and how it logged in. */
export interface Login {
  readonly api: Api;
  readonly session: Session;
  readonly source: "pasted" | "cookie";
}

/** Checks `token` with the server and returns the login (throws the server's refusal). */
export async function loginWith(token: string, source: Login["source"]): Promise<Login> {
  const api = apiFor(token);
  const session = await api.tokens.current({});
  return { api, session, source };
}

/** Logs in with a pasted token and keeps it (for this tab, or on this device when `remember`). */
export async function loginWithPastedToken(token: string, remember: boolean): Promise<Login> {
  const trimmed = token.trim().replace(/^bearer\s+/i, "");
  if (trimmed === "")
    throw new Error("Paste a token first (cacheroach bootstrap or cacheroach login prints one).");
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(trimmed))
    throw new Error("That does not look like a token: a token is three dot-separated base64url parts.");
  const login = await loginWith(trimmed, "pasted");
  sessionStorage.setItem(KEY, trimmed);
  if (remember) localStorage.setItem(KEY, trimmed);
  else localStorage.removeItem(KEY);
  return login;
}

/** The token a cookie session hands this page, or undefined when there is no cookie session. */
export async function cookieToken(): Promise<string | undefined> {
  const res = await fetch("/_/v0/config", { credentials: "same-origin", cache: "no-store" });
  if (res.status === 401) return undefined;
  if (!res.ok) throw await HttpError.of(res);
  const body = (await res.json()) as { token?: unknown };
  return typeof body.token === "string" && body.token !== "" ? body.token : undefined;
}

/** The login this page can resume without asking: a kept token, else a cookie session. */
export async function resumeLogin(): Promise<Login | undefined> {
  const kept = sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
  if (kept) {
    try {
      return await loginWith(kept, "pasted");
    } catch {
      forgetToken(); // revoked or expired: ask again
    }
  }
  const fromCookie = await cookieToken().catch(() => undefined);
  return fromCookie ? loginWith(fromCookie, "cookie") : undefined;
}

/**
 * Ends a cookie session (an OIDC login): the server revokes the session and clears the cookie
 * (`POST /_/oidc/logout`, same-origin). Best effort: the page forgets the login either way.
 */
export async function endCookieSession(): Promise<void> {
  await fetch("/_/oidc/logout", { method: "POST", credentials: "same-origin" }).catch(() => undefined);
}

/** Forgets the kept token (log out of this page; the session itself stays valid). */
export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}
