import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CacheroachError, toHttpError } from "../errors.js";
import { type HttpRequest, type HttpResponse, header } from "../net/node-http.js";
import type { FileRecord } from "../store/file-meta.js";
import { isValidContentType } from "../store/media-type.js";
import type { Rope, RopeStore } from "../store/rope-store.js";
import { evaluate, ifRangeAllows, type Validators } from "./conditional.js";
import { isActiveContentType, sniff, typeByExtension } from "./content-type.js";
import { attachment } from "./disposition.js";
import { type ByteRange, parseRange } from "./ranges.js";

/** How a file response is labelled beyond its content. */
export interface ServeOptions {
  /** Cache-Control value. */
  readonly cacheControl: string;
  /** Content-Disposition value (signed URLs name the file), if any. */
  readonly disposition?: string | undefined;
  /**
   * Show active content (HTML, SVG, XML, scripts) inline, sandboxed with scripts in an opaque
   * origin; default false: such files are downloads (Content-Disposition: attachment).
   */
  readonly inlineActive?: boolean | undefined;
}

/**
 * Content-Security-Policy of every user file and generated page: a sandbox without
 * allow-same-origin gives the document an opaque origin, so nothing in it can read this
 * server's cookies or call its API with them; without allow-scripts nothing in it runs at all.
 */
export const USER_CONTENT_CSP = "sandbox";
/** The policy of active content on hosts allowed to show it inline: scripts, still opaque. */
export const INLINE_ACTIVE_CSP =
  "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/** Headers every response carrying user content (or a page listing it) has. */
export const USER_CONTENT_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "content-security-policy": USER_CONTENT_CSP,
};

/** The strong validators of a file version: ETag = quoted content hash, Last-Modified = mtime. */
export function validatorsOf(f: FileRecord): Validators {
  return { etag: `"${f.ropeHash.toString("hex")}"`, lastModified: f.mtime };
}

/**
 * Answers GET/HEAD for one file version like a first-class static server: conditional requests
 * (304/412), byte ranges (206, multipart/byteranges, 416, If-Range), content type from the
 * stored type, the extension or sniffing, and a body streamed chunk by chunk from the store
 * with back-pressure (never the whole file in memory).
 */
export async function serveFile(
  io: { readonly req: HttpRequest; readonly res: HttpResponse },
  ropes: RopeStore,
  file: FileRecord,
  opts: ServeOptions,
): Promise<void> {
  const { req, res } = io;
  const v = validatorsOf(file);
  const rope = await ropes.get(file.tenantId, file.ropeHash);
  if (!rope) throw new CacheroachError("ERR_UNAVAILABLE", "file content is missing");
  const base: Record<string, string> = {
    etag: v.etag,
    "last-modified": v.lastModified.toUTCString(),
    "cache-control": opts.cacheControl,
    "accept-ranges": "bytes",
    ...USER_CONTENT_HEADERS,
  };
  if (opts.disposition) base["content-disposition"] = opts.disposition;

  const cond = evaluate(
    {
      ifMatch: header(req, "if-match"),
      ifNoneMatch: header(req, "if-none-match"),
      ifModifiedSince: header(req, "if-modified-since"),
      ifUnmodifiedSince: header(req, "if-unmodified-since"),
    },
    v,
    true,
  );
  if (cond === "not-modified") {
    res.writeHead(304, base);
    res.end();
    return;
  }
  if (cond === "precondition-failed") {
    const failed = toHttpError(new CacheroachError("ERR_PRECONDITION_FAILED", "precondition failed"));
    res.writeHead(failed.status, { ...base, ...failed.headers, "content-type": "text/plain; charset=utf-8" });
    res.end(`${failed.message}\n`);
    return;
  }

  // A type stored before content types were validated may not be sendable: serve as if untyped.
  const stored = isValidContentType(file.contentType) ? file.contentType : "";
  const type = stored || typeByExtension(file.path) || sniff(await firstBytes(ropes, file.tenantId, rope));
  if (isActiveContentType(type)) {
    if (opts.inlineActive) base["content-security-policy"] = INLINE_ACTIVE_CSP;
    else base["content-disposition"] ??= attachment(file.path);
  }
  const head = req.method === "HEAD";
  let ranges = parseRange(header(req, "range"), file.size);
  if (ranges.kind !== "full" && !ifRangeAllows(header(req, "if-range"), v)) ranges = { kind: "full" };

  if (ranges.kind === "unsatisfiable") {
    const unsatisfiable = toHttpError(
      new CacheroachError(
        "ERR_RANGE_NOT_SATISFIABLE",
        `range not satisfiable: the file has ${file.size} bytes`,
      ),
    );
    res.writeHead(unsatisfiable.status, {
      ...base,
      ...unsatisfiable.headers,
      "content-range": `bytes */${file.size}`,
      "content-type": "text/plain; charset=utf-8",
    });
    res.end(`${unsatisfiable.message}\n`);
    return;
  }
  if (ranges.kind === "full") {
    const body = head ? undefined : await primed(ropes.read(file.tenantId, rope, 0, file.size));
    res.writeHead(200, { ...base, "content-type": type, "content-length": String(file.size) });
    if (!body) return void res.end();
    return send(res, body);
  }
  if (ranges.ranges.length === 1) {
    const r = ranges.ranges[0]!;
    const body = head ? undefined : await primed(ropes.read(file.tenantId, rope, r.start, r.end - r.start));
    res.writeHead(206, {
      ...base,
      "content-type": type,
      "content-length": String(r.end - r.start),
      "content-range": `bytes ${r.start}-${r.end - 1}/${file.size}`,
    });
    if (!body) return void res.end();
    return send(res, body);
  }
  const boundary = randomBytes(12).toString("hex");
  const parts = ranges.ranges.map((r) => ({
    r,
    head: Buffer.from(
      `\r\n--${boundary}\r\ncontent-type: ${type}\r\ncontent-range: bytes ${r.start}-${r.end - 1}/${file.size}\r\n\r\n`,
    ),
  }));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = parts.reduce((n, p) => n + p.head.length + (p.r.end - p.r.start), tail.length);
  const first = head
    ? undefined
    : await primed(ropes.read(file.tenantId, rope, parts[0]!.r.start, parts[0]!.r.end - parts[0]!.r.start));
  res.writeHead(206, {
    ...base,
    "content-type": `multipart/byteranges; boundary=${boundary}`,
    "content-length": String(length),
  });
  if (!first) return void res.end();
  return send(
    res,
    multipart(parts, tail, first, (r) => ropes.read(file.tenantId, rope, r.start, r.end - r.start)),
  );
}

/** The body of a multipart/byteranges answer; the first part's content is already started. */
async function* multipart(
  parts: { r: ByteRange; head: Buffer }[],
  tail: Buffer,
  first: AsyncIterable<Buffer>,
  read: (r: ByteRange) => AsyncIterable<Buffer>,
): AsyncGenerator<Buffer> {
  for (const [i, p] of parts.entries()) {
    yield p.head;
    yield* i === 0 ? first : read(p.r);
  }
  yield tail;
}

/**
 * Reads a body's first piece before the status line goes out, so a failure to start (the
 * database unavailable, damaged content) is still a proper error answer; only a failure later in
 * the body has to break the connection.
 */
async function primed(body: AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer>> {
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
}

async function firstBytes(ropes: RopeStore, tenantId: string, rope: Rope): Promise<Buffer> {
  for await (const b of ropes.read(tenantId, rope, 0, 512)) return b;
  return Buffer.alloc(0);
}

/** Streams a body with back-pressure; a client that goes away stops the reads. */
async function send(res: HttpResponse, body: AsyncIterable<Buffer>): Promise<void> {
  try {
    await pipeline(Readable.from(body, { objectMode: false }), res as unknown as NodeJS.WritableStream);
  } catch (err) {
    // Headers are gone already: the only honest signal left is a broken connection.
    res.destroy(err instanceof Error ? err : undefined);
  }
}
