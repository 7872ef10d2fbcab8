/**
 * Downloading one file through a signed URL: Files.Retrieve mints a short-lived, read-only URL
 * and returns the file's metadata; the bytes then come over plain HTTP. The rope hash is
 * recomputed from the streamed bytes (cut at FileMeta.chunk_size) and compared with
 * FileMeta.content_hash. A dropped connection is resumed with `Range: bytes=<received>-` and
 * `If-Range: <etag>` on a fresh URL pinned to the version being downloaded, so a file
 * overwritten meanwhile can never be spliced into the download. A file destination is written
 * to a temp file in the same directory and renamed into place only once the content verified;
 * otherwise the temp file is removed.
 */
import { once } from "node:events";
import { rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { FileMeta, Files, RetrieveResponse } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { IntegrityError } from "./errors.js";
import { PARALLEL_HASH_MIN_BYTES, ParallelContentHasher, sharedHashPool } from "./hash-pool.js";
import { isConnectionError, readSmallBody, redactUrl } from "./http.js";
import type { Progress } from "./progress.js";
import { withRetry } from "./retry.js";
import { ContentHasher, hex } from "./rope-hash.js";
import { adoptLeftover, resumableTag, sweepLeftovers, tempPath, uniqueTempPath } from "./temp-files.js";

/** Where a download goes. */
export type Destination = { kind: "file"; path: string } | { kind: "stream"; stream: Writable; name: string };

/** Something that can GET a URL (the CLI's {@link HttpClient}). */
export interface HttpGetter {
  get(url: string, headers?: Record<string, string>): Promise<IncomingMessage>;
}

/** What a download needs besides the path and destination. */
export interface DownloadContext {
  files: Client<typeof Files>;
  tenantId: string;
  /** The server's base URL (the config's); the server-relative URL from Retrieve is appended to it. */
  server: string;
  http: HttpGetter;
  progress?: Progress;
  /**
   * Connections in a row that may fail before giving up (default 5). A connection that delivered
   * at least `progressBytes` before dropping starts a new row.
   */
  attempts?: number;
  /** What counts as progress for {@link attempts} (default 1 MiB). */
  progressBytes?: number;
  /** Delay before the first retry in ms (default 250; doubles, at most 5 s). */
  retryDelayMs?: number;
  /** Validity of each signed URL (default 60 s; a resume always gets a fresh URL). */
  urlValidityMs?: number;
  /** Told about each request and retry (verbose logging); URLs come without their token. */
  log?: (msg: string) => void;
  /** Hash files of {@link PARALLEL_HASH_MIN_BYTES} or more on worker threads (default true). */
  parallelHash?: boolean;
}

export interface Sink {
  write(data: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Temp files being written; removed if the process is interrupted. */
const pendingTemps = new Set<string>();
let signalsHooked = false;

/** Registers a temp file to remove if the process is interrupted (until {@link untrackTemp}). */
export function trackTemp(path: string): void {
  pendingTemps.add(path);
  if (signalsHooked) return;
  signalsHooked = true;
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(sig, () => {
      for (const p of pendingTemps) rmSync(p, { force: true });
      process.exit(code);
    });
  }
}

/** The temp file is gone or renamed into place. */
export function untrackTemp(path: string): void {
  pendingTemps.delete(path);
}

/** A sink writing a temp file next to `path`, renamed into place on commit. */
export interface FileSink extends Sink {
  /** Bytes already in the temp file: a dead process's partial download this one continues. */
  readonly resumedBytes: number;
  /** Reads those bytes, in order (to feed the content hash). */
  readResumed(onPiece: (piece: Buffer) => void | Promise<void>): Promise<void>;
}

/**
 * A temp file for downloading `path`. With `resume` (see temp-files.ts), a partial download of
 * the same target and content (at most `maxBytes` long) left by a killed process is continued
 * instead of started over.
 */
export async function fileSink(path: string, resume?: { tag: string; maxBytes: number }): Promise<FileSink> {
  await sweepLeftovers(dirname(path));
  const adopted = resume ? await adoptLeftover(path, resume.tag, resume.maxBytes) : undefined;
  const tmp = adopted?.path ?? (resume ? tempPath(path, resume.tag) : uniqueTempPath(path));
  const fh = await open(tmp, adopted ? "r+" : "wx", 0o644);
  trackTemp(tmp);
  let position = adopted?.size ?? 0;
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await fh.close();
    }
  };
  return {
    resumedBytes: position,
    async readResumed(onPiece) {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let at = 0; at < position; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, position - at), at);
        if (bytesRead === 0) throw new Error(`${tmp} is shorter than it was`);
        await onPiece(Buffer.from(buf.subarray(0, bytesRead)));
        at += bytesRead;
      }
    },
    async write(data) {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off, position);
        off += bytesWritten;
        position += bytesWritten;
      }
    },
    async commit() {
      await fh.truncate(position);
      await close();
      await rename(tmp, path);
      pendingTemps.delete(tmp);
    },
    async abort() {
      await close().catch(() => {});
      await rm(tmp, { force: true });
      pendingTemps.delete(tmp);
    },
  };
}

/** The reader of stdout went away (e.g. `| head`): stop quietly. */
export class OutputClosedError extends Error {
  constructor() {
    super("output closed");
    this.name = "OutputClosedError";
  }
}

function streamSink(stream: Writable): Sink {
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  stream.on("error", onError);
  const check = () => {
    if (!failed) return;
    if ((failed as NodeJS.ErrnoException).code === "EPIPE") throw new OutputClosedError();
    throw failed;
  };
  return {
    async write(data) {
      check();
      if (!stream.write(data)) {
        try {
          await once(stream, "drain");
        } catch (err) {
          failed ??= err as Error;
        }
      }
      check();
    },
    async commit() {
      stream.off("error", onError);
      check();
    },
    async abort() {
      stream.off("error", onError);
    },
  };
}

/** The Connect code closest to an HTTP status of the signed-URL endpoint. */
function codeOfStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.NotFound;
    case 408:
      return Code.DeadlineExceeded;
    case 409:
      return Code.Aborted;
    case 412:
    case 416:
      return Code.FailedPrecondition;
    case 429:
      return Code.ResourceExhausted;
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return status >= 500 ? Code.Internal : Code.Unknown;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Joins the server's base URL and a server-relative URL from Retrieve. */
export function absoluteUrl(server: string, uri: string): string {
  if (/^https?:\/\//i.test(uri)) return uri;
  return `${server.replace(/\/+$/, "")}${uri.startsWith("/") ? "" : "/"}${uri}`;
}

/** Downloads `remotePath` to `dest`, verifying its content hash; returns the file's metadata. */
export async function downloadFile(
  remotePath: string,
  dest: Destination,
  ctx: DownloadContext,
  resume = true,
): Promise<FileMeta> {
  const attempts = Math.max(1, ctx.attempts ?? 5);
  const progressBytes = ctx.progressBytes ?? 1 << 20;
  const baseDelay = ctx.retryDelayMs ?? 250;
  const validFor = durationFromMs(ctx.urlValidityMs ?? 60_000);
  const log = ctx.log ?? (() => {});
  const sign = (version: bigint): Promise<RetrieveResponse> =>
    withRetry(() => ctx.files.retrieve({ tenantId: ctx.tenantId, path: remotePath, version, validFor }), {
      attempts: 3,
      baseDelayMs: baseDelay,
    });

  // Sign first: a missing file or a denial fails before anything is created locally.
  const first = await sign(0n);
  const meta = first.file;
  if (!meta || !first.getUri) {
    throw new IntegrityError(`${remotePath}: the server's Retrieve answer carried no metadata or URL`);
  }
  if (meta.size > 0n && meta.chunkSize <= 0) {
    throw new IntegrityError(`${remotePath}: the server reported no chunk size; cannot verify the content`);
  }
  const size = Number(meta.size);
  const etag = `"${hex(meta.contentHash)}"`;

  const resumeKey = resume && size > 0 ? { tag: resumableTag(meta.contentHash), maxBytes: size } : undefined;
  const file = dest.kind === "file" ? await fileSink(dest.path, resumeKey) : undefined;
  const sink: Sink = dest.kind === "file" ? file! : streamSink(dest.stream);
  const resumed = file?.resumedBytes ?? 0;
  let received = 0;
  try {
    // Large files are hashed on worker threads while the next bytes arrive.
    const parallel =
      size >= PARALLEL_HASH_MIN_BYTES && ctx.parallelHash !== false
        ? new ParallelContentHasher(sharedHashPool(), meta.chunkSize)
        : undefined;
    const hasher = parallel ?? new ContentHasher(meta.chunkSize > 0 ? meta.chunkSize : 1);
    ctx.progress?.addTotal(size);
    let url = absoluteUrl(ctx.server, first.getUri);
    let pinned = false;
    let needUrl = false;
    let failures = 0;
    if (resumed > 0 && file) {
      // A killed get left these bytes: hash them as if just received, then ask for the rest.
      log(
        `${remotePath}: continuing a partial download left by an earlier get (${resumed} of ${size} bytes)`,
      );
      await file.readResumed(async (piece) => {
        hasher.update(piece);
        await parallel?.ready();
      });
      received = resumed;
      ctx.progress?.add(resumed);
    }

    /** Counts a failed connection; throws once the budget is spent, else waits. */
    const failed = async (err: unknown, what: string) => {
      failures++;
      if (failures >= attempts) {
        const e = err as Error;
        throw new ConnectError(
          `${remotePath}: ${what} (${e.message}); gave up after ${attempts} attempts at byte ${received} of ${size}`,
          err instanceof ConnectError ? err.code : Code.Unavailable,
          undefined,
          undefined,
          err,
        );
      }
      const delay = Math.min(5000, baseDelay * 2 ** (failures - 1));
      log(
        `${remotePath}: ${what} (${(err as Error).message}) at byte ${received} of ${size}; retrying in ${delay} ms`,
      );
      await sleep(delay);
      needUrl = true;
    };

    for (;;) {
      if (needUrl) {
        // A fresh URL (the old one may have expired), pinned to the version whose hash we hold.
        const again = await sign(meta.version);
        if (again.file && !Buffer.from(again.file.contentHash).equals(Buffer.from(meta.contentHash))) {
          throw new IntegrityError(`${remotePath}: version ${meta.version} changed its content hash`);
        }
        url = absoluteUrl(ctx.server, again.getUri);
        pinned = true;
        needUrl = false;
      }
      const headers: Record<string, string> =
        received > 0 ? { range: `bytes=${received}-`, "if-range": etag } : {};
      let res: IncomingMessage;
      try {
        res = await ctx.http.get(url, headers);
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        await failed(err, "cannot connect");
        continue;
      }
      const status = res.statusCode ?? 0;
      log(`GET ${redactUrl(url)}${headers["range"] ? ` range ${headers["range"]}` : ""} → ${status}`);
      if (status !== 200 && status !== 206) {
        const body = await readSmallBody(res);
        const err = new ConnectError(
          `${remotePath}: the signed URL answered HTTP ${status}${body ? `: ${body}` : ""}`,
          codeOfStatus(status),
        );
        if (status >= 500 || status === 429 || status === 408) {
          await failed(err, `HTTP ${status}`);
          continue;
        }
        throw err;
      }
      const gotEtag = res.headers.etag;
      if (gotEtag !== undefined && gotEtag !== etag) {
        res.destroy();
        if (!pinned) {
          // The URL names the latest version, and the file was overwritten since Retrieve.
          log(`${remotePath}: the file changed since it was signed; asking for version ${meta.version}`);
          needUrl = true;
          continue;
        }
        throw new IntegrityError(
          `${remotePath}: the server sent ETag ${gotEtag} for a file whose hash is ${etag}`,
        );
      }
      let skip = 0;
      if (status === 206) {
        const cr = res.headers["content-range"] ?? "";
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
        if (!m || Number(m[1]) !== received || (m[3] !== "*" && Number(m[3]) !== size)) {
          res.destroy();
          throw new IntegrityError(
            `${remotePath}: asked for bytes ${received}- of ${size}, got Content-Range "${cr}"`,
          );
        }
      } else if (received > 0) {
        skip = received; // the range was not honoured: the same content from the start
        log(`${remotePath}: the server ignored the range; skipping ${received} bytes already written`);
      }

      const before = received;
      let broke: unknown;
      const it = (res as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      try {
        for (;;) {
          let step: IteratorResult<Buffer>;
          try {
            step = await it.next();
          } catch (err) {
            broke = err;
            break;
          }
          if (step.done) break;
          let piece = step.value;
          if (skip > 0) {
            const n = Math.min(skip, piece.length);
            skip -= n;
            piece = piece.subarray(n);
            if (piece.length === 0) continue;
          }
          if (received + piece.length > size) {
            throw new IntegrityError(`${remotePath}: the server sent more than ${size} bytes`);
          }
          hasher.update(piece);
          await parallel?.ready();
          await sink.write(piece);
          received += piece.length;
          ctx.progress?.add(piece.length);
        }
      } finally {
        if (!res.complete) res.destroy();
      }
      if (broke === undefined && (received < size || skip > 0)) {
        const e = new Error("premature close") as NodeJS.ErrnoException;
        e.code = "ERR_STREAM_PREMATURE_CLOSE";
        broke = e;
      }
      if (broke !== undefined) {
        if (!isConnectionError(broke)) throw broke;
        if (received - before >= progressBytes) failures = 0; // real progress: a new row of attempts
        await failed(broke, "connection dropped");
        continue;
      }
      break;
    }

    if (received !== size) throw new IntegrityError(`${remotePath}: received ${received} of ${size} bytes`);
    const got = await hasher.digest();
    if (!got.equals(Buffer.from(meta.contentHash)) && resumed > 0) {
      // The continued partial file was damaged: start over once, from nothing.
      log(`${remotePath}: the continued partial download did not verify; downloading it again`);
      await sink.abort();
      ctx.progress?.add(-received);
      ctx.progress?.addTotal(-size);
      return downloadFile(remotePath, dest, ctx, false);
    }
    if (!got.equals(Buffer.from(meta.contentHash))) {
      throw new IntegrityError(
        `${remotePath}: content hash mismatch: computed ${hex(got)}, server says ${hex(meta.contentHash)}` +
          (dest.kind === "file" ? "; nothing was written" : "; the output is corrupt"),
      );
    }
    await sink.commit();
    return meta;
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
