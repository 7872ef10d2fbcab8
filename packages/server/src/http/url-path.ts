import { CacheroachError } from "../errors.js";
import { validatePath } from "../store/paths.js";

/** A decoded request path: a file path, or a directory ("" = root) when it ends with "/". */
export type UrlTarget =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "dir"; readonly dir: string };

/**
 * Decodes a URL path segment by segment (an encoded "/" inside a segment is refused, so a
 * request can never address a path other than the one it spells) and validates it like any
 * stored path: "..", ".", empty segments and control characters are a 400.
 */
export function parseUrlPath(pathname: string): UrlTarget {
  if (!pathname.startsWith("/")) throw new CacheroachError("ERR_BAD_PATH", "request path must start with /");
  const isDir = pathname.endsWith("/");
  const raw = (isDir ? pathname.slice(0, -1) : pathname).split("/").slice(1);
  const segments = raw.map((s) => {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      throw new CacheroachError(
        "ERR_BAD_PATH",
        `path segment ${JSON.stringify(s.slice(0, 40))} is not valid percent-encoding`,
      );
    }
    if (d.includes("/"))
      throw new CacheroachError("ERR_BAD_PATH", "path segments may not contain an encoded /");
    return d;
  });
  const joined =
    segments.length === 0 || (segments.length === 1 && segments[0] === "") ? "" : `/${segments.join("/")}`;
  if (isDir) return { kind: "dir", dir: joined === "" ? "" : validatePath(joined) };
  return { kind: "file", path: validatePath(joined) };
}

/** Percent-encodes a stored path for use in a URL (keeps "/"). */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}
