import { contentType } from "mime-types";

/**
 * Content type from a path's extension (mime-db's table, with `charset=utf-8` on text types), or
 * undefined when the name has no known extension.
 */
export function typeByExtension(path: string): string | undefined {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return (dot > 0 && contentType(base.slice(dot + 1).toLowerCase())) || undefined;
}

/**
 * Sniffs a content type from the first bytes (a small subset of the WHATWG MIME sniffing
 * algorithm: common binary signatures, HTML, then text versus binary).
 */
export function sniff(head: Uint8Array): string {
  const b = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, 512));
  const starts = (sig: number[]) => sig.every((v, i) => b[i] === v);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (starts([0x47, 0x49, 0x46, 0x38])) return "image/gif";
  if (starts([0x25, 0x50, 0x44, 0x46, 0x2d])) return "application/pdf";
  if (starts([0x50, 0x4b, 0x03, 0x04])) return "application/zip";
  if (starts([0x1f, 0x8b, 0x08])) return "application/gzip";
  if (starts([0x00, 0x61, 0x73, 0x6d])) return "application/wasm";
  const text = b.toString("latin1").trimStart().toLowerCase();
  if (
    /^<(!doctype html|html|head|body|script|iframe|h1|div|font|table|a |style|title|b |br|p)[\s>]/.test(text)
  ) {
    return "text/html; charset=utf-8";
  }
  if (text.startsWith("<?xml")) return "application/xml";
  if (text.startsWith("%!ps-adobe-")) return "application/postscript";
  // Binary if any byte is a control character that text never contains.
  for (const c of b)
    if (c <= 0x08 || c === 0x0b || (c >= 0x0e && c <= 0x1a) || (c >= 0x1c && c <= 0x1f))
      return "application/octet-stream";
  return "text/plain; charset=utf-8";
}

/** The type/subtype of a content type, lower-cased, without parameters. */
export function essenceOf(ct: string): string {
  const semi = ct.indexOf(";");
  return (semi >= 0 ? ct.slice(0, semi) : ct).trim().toLowerCase();
}

/** Document and script types a browser would run or render with the page's origin. */
const ACTIVE_TYPES = new Set([
  "text/html",
  "application/xhtml+xml",
  "image/svg+xml",
  "text/xml",
  "application/xml",
  "text/xsl",
  "application/xslt+xml",
  "text/javascript",
  "application/javascript",
  "application/x-javascript",
  "text/ecmascript",
  "application/ecmascript",
  "text/jscript",
  "text/livescript",
  "text/vbscript",
  "text/x-javascript",
  "text/x-ecmascript",
  "application/x-ecmascript",
  "application/x-shockwave-flash",
  "multipart/x-mixed-replace",
  "text/cache-manifest",
]);

/**
 * True for content a browser would execute or render as a document able to run script (HTML,
 * SVG, any XML, JavaScript and the like): user files of these types are served as downloads
 * unless the host is allowed to show them inline.
 */
export function isActiveContentType(ct: string): boolean {
  const e = essenceOf(ct);
  return ACTIVE_TYPES.has(e) || e.endsWith("+xml") || e.includes("javascript") || e.includes("ecmascript");
}
