/**
 * Downloading one file through a signed URL: Files.Retrieve mints a short-lived, read-only URL
 * and returns the file's metadata; the bytes then come over plain HTTP. The rope hash is
 * recomputed from the streamed bytes (cut at FileMeta.chunk_size) and compared with
 * FileMeta.content_hash. A dropped connection is resumed with `Range: bytes=<received>-` and
 * `If-Range: <etag>` on a fresh URL pinned to the version being downloaded, so a file
 * overwritten meanwhile can never be spliced into the download. A file destination is written
 * to a temp file in the same directory and renamed into place only once the content verified;
 * otherwise the temp file is removed (sinks.ts).
 *
 * The steps, top-down: {@link downloadFile} signs, opens the sink and verifies; {@link receiveAll}
 * is the attempt loop (withRetry); {@link attemptOnce} is one GET; {@link Receiver} hashes,
 * writes and counts the bytes; {@link checkReceived} verifies them.
 */
import type { Writable } from "node:stream";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { FileMeta, Files, RetrieveResponse } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { BlockPipeline } from "./download-blocks.js";
import { IntegrityError, SERVER_ERROR_CODE } from "./errors.js";
import { PARALLEL_HASH_MIN_BYTES, sharedHashPool } from "./hash-pool.js";
import { type BodyTarget, type HttpAnswer, isConnectionError, readSmallBody, redactUrl } from "./http.js";
import type { Progress } from "./progress.js";
import { withRetry } from "./retry.js";
import { hex } from "./rope-hash.js";
import { type FileSink, fileSink, type Sink, streamSink } from "./sinks.js";
import { resumableTag } from "./temp-files.js";

/** Where a download goes. */
export type Destination = { kind: "file"; path: string } | { kind: "stream"; stream: Writable; name: string };

/** Something that can GET a URL (the CLI's {@link HttpClient}). */
export interface HttpGetter {
  get(url: string, headers?: Record<string, string>): Promise<HttpAnswer>;
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
  /**
   * Hash files of {@link PARALLEL_HASH_MIN_BYTES} or more on worker threads (default false: with
   * the socket reading straight into the blocks, hashing on this thread took less CPU and time
   * than starting the workers, about 0.2 s of CPU each, on a 1 GiB download).
   */
  parallelHash?: boolean;
  /** Download this version (default 0: the latest live one). */
  version?: bigint;
}

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
  const sign = signer(remotePath, ctx);
  // Sign first: a missing file or a denial fails before anything is created locally.
  const first = await sign(ctx.version ?? 0n);
  const meta = first.file;
  if (!meta || !first.getUri) {
    throw new IntegrityError(`${remotePath}: the server's Retrieve answer carried no metadata or URL`);
  }
  if (meta.size > 0n && meta.chunkSize <= 0) {
    throw new IntegrityError(`${remotePath}: the server reported no chunk size; cannot verify the content`);
  }
  const size = Number(meta.size);
  const resumeKey = resume && size > 0 ? { tag: resumableTag(meta.contentHash), maxBytes: size } : undefined;
  const { sink, file } = await openSink(dest, resumeKey);
  const log = ctx.log ?? (() => {});
  let receiver: Receiver | undefined;
  try {
    receiver = new Receiver(remotePath, meta, sink, ctx);
    ctx.progress?.addTotal(size);
    if (file && file.resumedBytes > 0) {
      log(
        `${remotePath}: continuing a partial download left by an earlier get (${file.resumedBytes} of ${size} bytes)`,
      );
      await receiver.resumeFrom(file);
    }
    await receiveAll(remotePath, meta, absoluteUrl(ctx.server, first.getUri), receiver, sign, ctx);
    const problem = await checkReceived(remotePath, meta, receiver, dest.kind);
    if (!problem) {
      await sink.commit();
      return meta;
    }
    if (!receiver.resumed) throw problem;
  } catch (err) {
    await receiver?.stop(); // no block may be written after the sink is aborted
    await sink.abort();
    throw err;
  }
  // The continued partial file was damaged: start over once, from nothing.
  log(`${remotePath}: the continued partial download did not verify; downloading it again`);
  await receiver.stop();
  await sink.abort();
  ctx.progress?.add(-receiver.received);
  ctx.progress?.addTotal(-size);
  return downloadFile(remotePath, dest, ctx, false);
}

/** The sink for `dest`: a temp file (continuing a partial one of the same content) or the stream. */
async function openSink(
  dest: Destination,
  resume: { tag: string; maxBytes: number } | undefined,
): Promise<{ sink: Sink; file?: FileSink }> {
  if (dest.kind === "stream") return { sink: streamSink(dest.stream) };
  const file = await fileSink(dest.path, resume);
  return { sink: file, file };
}

/** Files.Retrieve of `remotePath` at a version (0n: the latest), retried on transient errors. */
function signer(remotePath: string, ctx: DownloadContext): (version: bigint) => Promise<RetrieveResponse> {
  const validFor = durationFromMs(ctx.urlValidityMs ?? 60_000);
  return (version) =>
    withRetry(() => ctx.files.retrieve({ tenantId: ctx.tenantId, path: remotePath, version, validFor }), {
      attempts: 3,
      baseDelayMs: ctx.retryDelayMs ?? 250,
    });
}

/**
 * The bytes of one download as they arrive, in order: counted, and passed to a
 * {@link BlockPipeline} that hashes them (on worker threads for large files) and writes them to
 * the sink. As a {@link BodyTarget} it lets the connection read straight into its blocks.
 */
export class Receiver implements BodyTarget {
  /** Bytes received so far (including those of a continued partial download). */
  received = 0;
  /** Whether the first bytes came from a partial download left behind ({@link resumeFrom}). */
  resumed = false;
  /** The size of the content. */
  readonly size: number;
  private readonly blocks: BlockPipeline;

  constructor(
    private readonly remotePath: string,
    meta: FileMeta,
    sink: Sink,
    private readonly ctx: Pick<DownloadContext, "progress" | "parallelHash">,
  ) {
    this.size = Number(meta.size);
    const pool =
      this.size >= PARALLEL_HASH_MIN_BYTES && ctx.parallelHash === true ? sharedHashPool() : undefined;
    this.blocks = new BlockPipeline(this.size, meta.chunkSize > 0 ? meta.chunkSize : 1, sink, pool);
  }

  /** Takes the bytes a killed get left in `file` as if just received (they are already written). */
  async resumeFrom(file: FileSink): Promise<void> {
    await file.readResumed(async (piece) => {
      this.blocks.put(piece, true);
      await this.blocks.ready();
    });
    this.received = file.resumedBytes;
    this.resumed = file.resumedBytes > 0;
    this.ctx.progress?.add(file.resumedBytes);
  }

  /** Takes the next bytes of the content (copied); more than the file's size is an integrity failure. */
  async write(piece: Buffer): Promise<void> {
    this.check(piece.length);
    this.blocks.put(piece);
    this.count(piece.length);
    await this.blocks.ready();
  }

  /** Memory for the next bytes (a connection reads into it; see {@link filled}). */
  space(): Buffer {
    this.check(1);
    return this.blocks.space(this.size - this.received);
  }

  /** `n` bytes were read into the last {@link space}. */
  filled(n: number): void {
    this.count(n);
    this.blocks.filled(n);
  }

  busy(): boolean {
    return this.blocks.busy();
  }

  ready(): Promise<void> {
    return this.blocks.ready();
  }

  private check(n: number): void {
    if (this.received + n > this.size) {
      throw new IntegrityError(`${this.remotePath}: the server sent more than ${this.size} bytes`);
    }
  }

  private count(n: number): void {
    this.received += n;
    this.ctx.progress?.add(n);
  }

  /** Writes every byte received to the sink; the content hash of them all. */
  digest(): Promise<Buffer> {
    return this.blocks.finish();
  }

  /** Writes nothing more to the sink (the download failed) once the blocks in flight are done. */
  stop(): Promise<void> {
    return this.blocks.stop();
  }
}

/** Why the received bytes are not the whole content `meta` describes, or undefined when they are. */
export async function checkReceived(
  remotePath: string,
  meta: FileMeta,
  receiver: Receiver,
  into: Destination["kind"],
): Promise<IntegrityError | undefined> {
  const size = Number(meta.size);
  if (receiver.received !== size) {
    return new IntegrityError(`${remotePath}: received ${receiver.received} of ${size} bytes`);
  }
  const got = await receiver.digest();
  if (got.equals(Buffer.from(meta.contentHash))) return undefined;
  return new IntegrityError(
    `${remotePath}: content hash mismatch: computed ${hex(got)}, server says ${hex(meta.contentHash)}` +
      (into === "file" ? "; nothing was written" : "; the output is corrupt"),
  );
}

/**
 * A failure worth another connection: one that could not be made or broke off, or an answer
 * saying "later" (5xx, 408, 429). `what` names it for the log and the final error.
 */
export class TransientFailure extends Error {
  constructor(
    readonly what: string,
    override readonly cause: Error,
  ) {
    super(`${what} (${cause.message})`);
    this.name = "TransientFailure";
  }
}

/**
 * The attempt loop: GETs until every byte is received, starting at `url` (which names the latest
 * version). After a failed attempt it waits (doubling from `retryDelayMs`, at most 5 s) and asks for
 * a fresh URL pinned to the version being downloaded; `attempts` failures in a row end it, and an
 * attempt that received `progressBytes` or more starts a new row.
 */
export async function receiveAll(
  remotePath: string,
  meta: FileMeta,
  url: string,
  receiver: Receiver,
  sign: (version: bigint) => Promise<RetrieveResponse>,
  ctx: DownloadContext,
): Promise<void> {
  const attempts = Math.max(1, ctx.attempts ?? 5);
  const progressBytes = ctx.progressBytes ?? 1 << 20;
  const log = ctx.log ?? (() => {});
  const size = Number(meta.size);
  const step: AttemptContext = {
    remotePath,
    etag: `"${hex(meta.contentHash)}"`,
    pinned: false,
    http: ctx.http,
    log,
  };
  let current: string | undefined = url;
  const where = () => `at byte ${receiver.received} of ${size}`;
  await withRetry(
    async (attempt) => {
      for (;;) {
        if (current === undefined) {
          current = await pinnedUrl(remotePath, meta, sign, ctx.server);
          step.pinned = true;
        }
        const before = receiver.received;
        try {
          if ((await attemptOnce(current, step, receiver)) === "complete") return;
        } catch (err) {
          if (err instanceof TransientFailure) {
            current = undefined; // the old URL may have expired
            if (receiver.received - before >= progressBytes) attempt.progressed();
          }
          throw err;
        }
        // The URL names the latest version, and the file was overwritten since Retrieve.
        log(`${remotePath}: the file changed since it was signed; asking for version ${meta.version}`);
        current = undefined;
      }
    },
    {
      attempts,
      baseDelayMs: ctx.retryDelayMs ?? 250,
      maxDelayMs: 5000,
      jitter: 0,
      budgetMs: Number.POSITIVE_INFINITY, // bounded by attempts in a row, however long the file takes
      retryable: (err) => err instanceof TransientFailure,
      onRetry: (_n, err, delay) =>
        log(`${remotePath}: ${(err as Error).message} ${where()}; retrying in ${delay} ms`),
      giveUp: (err) => {
        const { what, cause } = err as TransientFailure;
        return new ConnectError(
          `${remotePath}: ${what} (${cause.message}); gave up after ${attempts} attempts ${where()}`,
          cause instanceof ConnectError ? cause.code : Code.Unavailable,
          cause instanceof ConnectError ? cause.metadata : undefined,
          undefined,
          cause,
        );
      },
    },
  );
  await receiver.digest(); // every byte received is in the sink
}

/** A fresh URL for the version whose content hash the download holds. */
async function pinnedUrl(
  remotePath: string,
  meta: FileMeta,
  sign: (version: bigint) => Promise<RetrieveResponse>,
  server: string,
): Promise<string> {
  const again = await sign(meta.version);
  if (again.file && !Buffer.from(again.file.contentHash).equals(Buffer.from(meta.contentHash))) {
    throw new IntegrityError(`${remotePath}: version ${meta.version} changed its content hash`);
  }
  return absoluteUrl(server, again.getUri);
}

/** What one attempt needs besides the URL and the receiver. */
export interface AttemptContext {
  remotePath: string;
  /** The ETag of the version being downloaded (its quoted content hash). */
  etag: string;
  /** Whether the URL names that version; if not, it names the latest, which may be another. */
  pinned: boolean;
  http: HttpGetter;
  log: (msg: string) => void;
}

/**
 * One GET of `url` for the bytes `receiver` lacks (a Range from the first missing byte, with
 * If-Range on the ETag), streamed into `receiver`. "complete" once every byte arrived; "stale"
 * when an unpinned URL served another version (nothing was taken from it). Throws a
 * {@link TransientFailure} for a failure worth another attempt, anything else for one that is not.
 */
export async function attemptOnce(
  url: string,
  a: AttemptContext,
  receiver: Receiver,
): Promise<"complete" | "stale"> {
  const from = receiver.received;
  const headers: Record<string, string> = from > 0 ? { range: `bytes=${from}-`, "if-range": a.etag } : {};
  let res: HttpAnswer;
  try {
    res = await a.http.get(url, headers);
  } catch (err) {
    if (!isConnectionError(err)) throw err;
    throw new TransientFailure("cannot connect", err as Error);
  }
  const status = res.statusCode ?? 0;
  a.log(`GET ${redactUrl(url)}${headers["range"] ? ` range ${headers["range"]}` : ""} → ${status}`);
  if (status !== 200 && status !== 206) {
    const body = await readSmallBody(res);
    const serverCode = res.headers[SERVER_ERROR_CODE];
    const err = new ConnectError(
      `${a.remotePath}: the signed URL answered HTTP ${status}${body ? `: ${body}` : ""}`,
      codeOfStatus(status),
      typeof serverCode === "string" ? { [SERVER_ERROR_CODE]: serverCode } : undefined,
    );
    if (status >= 500 || status === 429 || status === 408) throw new TransientFailure(`HTTP ${status}`, err);
    throw err;
  }
  const gotEtag = res.headers.etag;
  if (gotEtag !== undefined && gotEtag !== a.etag) {
    res.destroy();
    if (!a.pinned) return "stale";
    throw new IntegrityError(
      `${a.remotePath}: the server sent ETag ${gotEtag} for a file whose hash is ${a.etag}`,
    );
  }
  let skip = 0;
  if (status === 206) {
    const cr = res.headers["content-range"] ?? "";
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
    if (!m || Number(m[1]) !== from || (m[3] !== "*" && Number(m[3]) !== receiver.size)) {
      res.destroy();
      throw new IntegrityError(
        `${a.remotePath}: asked for bytes ${from}- of ${receiver.size}, got Content-Range "${cr}"`,
      );
    }
  } else if (from > 0) {
    skip = from; // the range was not honoured: the same content from the start
    a.log(`${a.remotePath}: the server ignored the range; skipping ${from} bytes already written`);
  }
  const length = Number(res.headers["content-length"] ?? Number.NaN);
  if (skip + receiver.size - from < length) {
    res.destroy();
    throw new IntegrityError(`${a.remotePath}: the server sent more than ${receiver.size} bytes`);
  }
  const broke =
    res.readBody && skip === 0
      ? await readBody(res, res.readBody, receiver)
      : await streamBody(res, skip, receiver);
  if (broke === undefined) return "complete";
  if (!isConnectionError(broke)) throw broke;
  throw new TransientFailure("connection dropped", broke as Error);
}

/**
 * Reads a response body straight into `receiver`'s memory (no copies). Returns what broke the
 * body off, like {@link streamBody}; errors of the receiver itself are thrown.
 */
async function readBody(
  res: HttpAnswer,
  read: NonNullable<HttpAnswer["readBody"]>,
  receiver: Receiver,
): Promise<unknown> {
  try {
    await read.call(res, receiver);
  } catch (err) {
    if (isConnectionError(err)) return err;
    throw err;
  } finally {
    if (!res.complete) res.destroy();
  }
  if (receiver.received < receiver.size) return prematureClose();
  return undefined;
}

function prematureClose(): Error {
  const e = new Error("premature close") as NodeJS.ErrnoException;
  e.code = "ERR_STREAM_PREMATURE_CLOSE";
  return e;
}

/**
 * Streams a response body into `receiver` after dropping its first `skip` bytes. Returns the error
 * that broke the body off (a body that ends before the content does counts as a premature close),
 * or undefined once the content is complete; errors of the receiver itself are thrown.
 */
async function streamBody(res: HttpAnswer, skip: number, receiver: Receiver): Promise<unknown> {
  const it = (res as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let broke: unknown;
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
      await receiver.write(piece);
    }
  } finally {
    if (!res.complete) res.destroy();
  }
  if (broke === undefined && (receiver.received < receiver.size || skip > 0)) broke = prematureClose();
  return broke;
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
