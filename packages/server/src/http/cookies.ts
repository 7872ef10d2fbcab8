import { StoreError } from "../errors.js";
import type { HttpResponse } from "../net/node-http.js";

/** The cookie a browser login keeps its token in (read by request-session.ts). */
export const SESSION_COOKIE = "authorization";

/**
 * The value of cookie `name` in a Cookie header, percent-decoded, or undefined when absent. A
 * value that is not valid percent-encoding is the client's mistake (ERR_BAD_REQUEST), not a
 * server failure. Other cookies are never decoded, so their syntax cannot fail a request.
 */
export function readCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    const value = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
    try {
      return decodeURIComponent(value);
    } catch {
      throw new StoreError("ERR_BAD_REQUEST", `the ${name} cookie is not valid percent-encoding`);
    }
  }
  return undefined;
}

/** How a cookie is set (see {@link serializeCookie}). */
export interface CookieOptions {
  /**
   * Send it over HTTPS only: true whenever the request came over TLS or the operator's public
   * URL is https (see Site.secureCookies).
   */
  readonly secure: boolean;
  /** Lifetime in seconds; absent: a session cookie. 0 deletes it. */
  readonly maxAgeSeconds?: number;
}

/**
 * A Set-Cookie value with the attributes every cookie of this server carries: `HttpOnly` (no
 * script reads it), `SameSite=Lax` (not sent on cross-site subrequests or form POSTs),
 * `Path=/`, and `Secure` when asked.
 */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`invalid cookie name ${name}`);
  const parts = [`${name}=${encodeURIComponent(value)}`, "Path=/", "HttpOnly", "SameSite=Lax"];
  if (options.secure) parts.push("Secure");
  if (options.maxAgeSeconds !== undefined) {
    if (!Number.isInteger(options.maxAgeSeconds) || options.maxAgeSeconds < 0)
      throw new Error(`cookie max-age must be a non-negative integer, not ${options.maxAgeSeconds}`);
    parts.push(`Max-Age=${options.maxAgeSeconds}`);
  }
  return parts.join("; ");
}

/** Adds a Set-Cookie header to `res` (keeping any set before). */
export function setCookie(res: HttpResponse, name: string, value: string, options: CookieOptions): void {
  const prior = res.getHeader("set-cookie");
  const list = prior === undefined ? [] : Array.isArray(prior) ? prior.map(String) : [String(prior)];
  res.setHeader("set-cookie", [...list, serializeCookie(name, value, options)]);
}
