import { CacheroachError } from "../errors.js";

// The media type stored with a file, checked where it enters (HTTP Content-Type, RPC content_type,
// a fetched response), as paths.ts checks paths: one rule for every way a file is written.

/** Longest content type stored with a file. */
export const MAX_CONTENT_TYPE_LENGTH = 255;

// RFC 9110 §8.3.1 media-type, restricted to ASCII: it must travel as a header value (Latin-1) and
// anything outside visible ASCII, space and tab (CR, LF, NUL, "€") would make every GET fail.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*$`);

/** True when `ct` is a well-formed media type (`type/subtype[; name=value]…`) that fits a header. */
export function isValidContentType(ct: string): boolean {
  return ct.length <= MAX_CONTENT_TYPE_LENGTH && MEDIA_TYPE.test(ct);
}

/**
 * Validates a content type given by a client (HTTP Content-Type, RPC content_type): "" (none)
 * or a well-formed media type; anything else is ERR_BAD_REQUEST, so a file is never stored
 * with a type that cannot be served back.
 */
export function validateContentType(ct: string, what = "content type"): string {
  if (ct === "" || isValidContentType(ct)) return ct;
  throw new CacheroachError(
    "ERR_BAD_REQUEST",
    ct.length > MAX_CONTENT_TYPE_LENGTH
      ? `${what} is longer than ${MAX_CONTENT_TYPE_LENGTH} characters`
      : `${what} ${JSON.stringify(ct.slice(0, 64))} is not a media type (type/subtype[; name=value]) of visible ASCII`,
  );
}
