import { parse, serialize } from "cookie";
import { CacheroachError } from "../errors.js";
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
  // The library's default decoding would hide a malformed value of ours (it keeps it raw).
  const raw = parse(cookieHeader, { decode: (v) => v })[name];
  if (raw === undefined) return undefined;
  const value = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new CacheroachError("ERR_BAD_REQUEST", `the ${name} cookie is not valid percent-encoding`);
  }
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
  const maxAge = options.maxAgeSeconds;
  // The library accepts a negative Max-Age; here it is always a mistake.
  if (maxAge !== undefined && (!Number.isInteger(maxAge) || maxAge < 0))
    throw new Error(`cookie max-age must be a non-negative integer, not ${maxAge}`);
  return serialize(name, value, {
    path: "/",
    httpOnly: true,
    sameSite: "lax",
    secure: options.secure,
    ...(maxAge === undefined ? {} : { maxAge }),
  });
}

/** Adds a Set-Cookie header to `res` (keeping any set before). */
export function setCookie(res: HttpResponse, name: string, value: string, options: CookieOptions): void {
  const prior = res.getHeader("set-cookie");
  const list = prior === undefined ? [] : Array.isArray(prior) ? prior.map(String) : [String(prior)];
  res.setHeader("set-cookie", [...list, serializeCookie(name, value, options)]);
}
