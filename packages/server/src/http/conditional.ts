// Hand-written rather than fresh (Express's), which answers only the 304 question (If-None-Match,
// If-Modified-Since): writes need If-Match / If-Unmodified-Since too, in RFC 9110's order, and If-Range.

/** The validators of the current representation (absent when the file does not exist). */
export interface Validators {
  /** Strong entity tag, quoted: "\"<hex>\"". */
  readonly etag: string;
  /** Modification time, compared at one-second resolution as HTTP dates are. */
  readonly lastModified: Date;
}

/** Splits an entity-tag list ("a", W/"b", *) into tags; "*" stays "*". */
export function parseETags(header: string): string[] {
  const tags: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    tags.push(m[1]!);
    if (re.lastIndex >= header.length) break;
  }
  return tags;
}

const weak = (t: string) => (t.startsWith("W/") ? t.slice(2) : t);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const httpDate = (s: string | undefined) => {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
};

/** Outcome of evaluating preconditions (RFC 9110 §13.2.2). */
export type ConditionResult = "proceed" | "not-modified" | "precondition-failed";

/** Request headers that carry preconditions. */
export interface ConditionalHeaders {
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
  readonly ifUnmodifiedSince?: string | undefined;
}

/**
 * Evaluates preconditions in the RFC 9110 §13.2.2 order. `current` is undefined when the target
 * does not exist. For GET/HEAD a failed If-None-Match / If-Modified-Since is "not-modified" (304);
 * for other methods and for If-Match / If-Unmodified-Since it is "precondition-failed" (412).
 * If-Match uses strong comparison, If-None-Match weak comparison.
 */
export function evaluate(
  h: ConditionalHeaders,
  current: Validators | undefined,
  safeMethod: boolean,
): ConditionResult {
  if (h.ifMatch !== undefined) {
    const tags = parseETags(h.ifMatch);
    const ok =
      current !== undefined &&
      (tags.includes("*") || tags.some((t) => !t.startsWith("W/") && t === current.etag));
    if (!ok) return "precondition-failed";
  } else if (h.ifUnmodifiedSince !== undefined && current) {
    const since = httpDate(h.ifUnmodifiedSince);
    if (since !== undefined && seconds(current.lastModified) > since) return "precondition-failed";
  }
  if (h.ifNoneMatch !== undefined) {
    const tags = parseETags(h.ifNoneMatch);
    const matches =
      current !== undefined && (tags.includes("*") || tags.some((t) => weak(t) === current.etag));
    if (matches) return safeMethod ? "not-modified" : "precondition-failed";
  } else if (safeMethod && h.ifModifiedSince !== undefined && current) {
    const since = httpDate(h.ifModifiedSince);
    if (since !== undefined && seconds(current.lastModified) <= since) return "not-modified";
  }
  return "proceed";
}

/** Does `If-Range` allow a partial response? Only a strong ETag match or an exact date match does. */
export function ifRangeAllows(ifRange: string | undefined, current: Validators): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"')) return v === current.etag;
  if (v.startsWith("W/")) return false;
  const d = httpDate(v);
  return d !== undefined && d === seconds(current.lastModified);
}
