import { encodeExtended } from "content-disposition";

/**
 * Content-Disposition naming a download (RFC 6266): an always-quoted ASCII `filename` (the
 * library writes a bare token when it can, which clients and tests here match quoted) and the
 * exact name as RFC 8187 UTF-8, percent-encoding everything outside attr-char (including the
 * `'`, `(`, `)` and `*` that encodeURIComponent leaves, which would break the value).
 */
export function attachment(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=${encodeExtended(name)}`;
}
