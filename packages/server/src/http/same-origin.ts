import { CacheroachError } from "../errors.js";
import { type HttpRequest, header } from "../net/node-http.js";
import type { Site } from "./site.js";

/** Methods that change nothing; every other method counts as state-changing. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** True when `method` may change state (PUT, POST, DELETE, PATCH, and anything unknown). */
export function isStateChanging(method: string | undefined): boolean {
  return !SAFE_METHODS.has((method ?? "GET").toUpperCase());
}

/**
 * Why `req` does not come from one of this server's own pages, or undefined when it does:
 * `Sec-Fetch-Site: same-origin` or `none` (typed or bookmarked by the user) pass; any other
 * Sec-Fetch-Site fails; without it, an `Origin` equal to the request's own origin passes and
 * anything else (another origin, "null", no Origin at all) fails.
 */
export function crossOriginReason(req: HttpRequest, site: Site): string | undefined {
  const fetchSite = header(req, "sec-fetch-site")?.trim().toLowerCase();
  if (fetchSite !== undefined) {
    return fetchSite === "same-origin" || fetchSite === "none"
      ? undefined
      : `it was sent from another ${fetchSite === "same-site" ? "origin of this site" : "site"} (Sec-Fetch-Site: ${fetchSite.slice(0, 20)})`;
  }
  const origin = header(req, "origin");
  if (origin === undefined) return "it carries neither Sec-Fetch-Site nor Origin to show it is same-origin";
  return site.isOwnOrigin(req, origin)
    ? undefined
    : `it was sent from another origin (Origin: ${origin.slice(0, 100)})`;
}

/**
 * Refuses (ERR_PERMISSION_DENIED) a request authenticated only by a browser cookie that is not
 * same-origin: a cross-site page could otherwise make the victim's browser write files or read
 * its token. `what` names the refused request for the message.
 */
export function requireSameOrigin(req: HttpRequest, site: Site, what: string): void {
  const reason = crossOriginReason(req, site);
  if (reason === undefined) return;
  throw new CacheroachError(
    "ERR_PERMISSION_DENIED",
    `${what} is refused: ${reason}. Send Authorization: Bearer <token> instead, or use this server's own pages`,
  );
}
