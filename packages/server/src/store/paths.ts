import { CacheroachError } from "../errors.js";

/** Longest accepted path, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024;
// A UTF-16 surrogate without its pair cannot be encoded as UTF-8.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Longest accepted path segment, in UTF-8 bytes. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Validates and returns an absolute file path. Paths are taken as given — never silently
 * "cleaned" — so that what is stored is what the user asked for: it must start with "/", have
 * no empty, "." or ".." segment, no trailing "/", no NUL or other control character, and stay
 * within the length limits. Anything else is a clear ERR_BAD_PATH.
 */
export function validatePath(path: string, what = "path"): string {
  const bad = (why: string) =>
    new CacheroachError("ERR_BAD_PATH", `${what} ${JSON.stringify(truncate(path))} ${why}`);
  if (typeof path !== "string" || path.length === 0) throw bad("is empty");
  if (!path.startsWith("/")) throw bad('must be absolute (start with "/")');
  if (path === "/") throw bad("names the root directory, not a file");
  if (path.endsWith("/")) throw bad('must not end with "/"');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) throw bad("contains a control character");
  if (LONE_SURROGATE.test(path)) throw bad("is not valid Unicode");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw bad(`is longer than ${MAX_PATH_BYTES} bytes`);
  for (const seg of path.slice(1).split("/")) {
    if (seg === "") throw bad("has an empty segment (//)");
    if (seg === "." || seg === "..") throw bad(`has a "${seg}" segment`);
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES)
      throw bad(`has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return path;
}

/**
 * Validates a listing prefix: "" or "/" mean the whole tenant; anything else must be a valid
 * path (a trailing "/" is accepted and dropped, since "/a/" and "/a" list the same files).
 * Returns the prefix without trailing slash ("" for the root).
 */
export function validatePrefix(prefix: string): string {
  if (prefix === "" || prefix === "/") return "";
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  return validatePath(p, "prefix");
}

/** UTF-8 bytes of a path, as stored in the `path` BYTEA columns. */
export function pathKey(path: string): Buffer {
  return Buffer.from(path, "utf8");
}

/**
 * The bytewise key range [lo, hi) holding every path strictly below directory `prefix`
 * ("" = root): "/a" → ["/a/", "/a0"), since "0" is the byte after "/".
 */
export function belowRange(prefix: string): [Buffer, Buffer] {
  return [Buffer.from(`${prefix}/`, "utf8"), Buffer.from(`${prefix}0`, "utf8")];
}

function truncate(s: string): string {
  return typeof s === "string" && s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
