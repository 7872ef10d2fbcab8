/** One satisfiable byte range, inclusive start, exclusive end. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** What a Range header asks for, given the representation's size. */
export type RangeResult =
  /** No (usable) Range header: send the whole representation with 200. */
  | { readonly kind: "full" }
  /** Satisfiable ranges, merged and ordered as RFC 9110 §14.2 allows: 206. */
  | { readonly kind: "partial"; readonly ranges: ByteRange[] }
  /** Every range lies beyond the end: 416 with Content-Range: bytes * /size. */
  | { readonly kind: "unsatisfiable" };

// Hand-written rather than range-parser (Express's): that one neither bounds the number of ranges
// nor coalesces them unless asked, so a many-range request could multiply the work of one read.

/** Most ranges accepted in one request; more is treated as abuse and answered with the full body. */
const MAX_RANGES = 64;

/**
 * Parses a `Range: bytes=…` header (RFC 9110 §14): single ("0-99"), open-ended ("100-"), suffix
 * ("-500") and multiple ranges. A syntactically invalid header or another unit is ignored (full
 * response), as the RFC requires; ranges that start beyond the end are dropped, and if none is
 * left the result is unsatisfiable. Overlapping or adjacent ranges are coalesced.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: "full" };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return { kind: "full" };
  const specs = m[1]!
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (specs.length === 0 || specs.length > MAX_RANGES) return { kind: "full" };
  const out: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!r || (r[1] === "" && r[2] === "")) return { kind: "full" };
    if (r[1] === "") {
      const n = Number(r[2]);
      if (n === 0) continue; // "-0" selects nothing
      out.push({ start: Math.max(0, size - n), end: size });
      continue;
    }
    const start = Number(r[1]);
    const last = r[2] === "" ? Number.MAX_SAFE_INTEGER : Number(r[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) return { kind: "full" };
    if (start >= size) continue;
    out.push({ start, end: Math.min(last + 1, size) });
  }
  if (out.length === 0) return { kind: "unsatisfiable" };
  out.sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const r of out) {
    const prev = merged[merged.length - 1];
    if (prev && r.start <= prev.end)
      merged[merged.length - 1] = { start: prev.start, end: Math.max(prev.end, r.end) };
    else merged.push(r);
  }
  return { kind: "partial", ranges: merged };
}
