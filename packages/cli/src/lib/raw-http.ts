/**
 * An HTTP/1.1 GET over a plain socket, for downloads. Node's HTTP client hands a body over in
 * 64 KiB Buffers through its parser and stream machinery, about 0.9 s of CPU per GiB here; this
 * reads a Content-Length body straight into the caller's memory (net's `onread` buffers), about
 * 0.2 s per GiB, and lets the caller stop reading while it is busy (back-pressure).
 *
 * One request per connection (`Connection: close`), so the socket never has to be returned to a
 * pool in a known state. The head is parsed here (status, headers); a body framed by
 * Content-Length can be read with `readBody`, any body (also chunked, or until the connection
 * closes) by async iteration, in copied pieces.
 */
import type { IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import type { BodyTarget, HttpAnswer } from "./http.js";

/** Largest response head accepted (node's own limit is 16 KiB). */
const HEAD_MAX = 64 * 1024;
/** Memory per read when nobody gave any (async iteration, bytes after the body). */
const PIECE = 64 * 1024;
/** Pieces an iterating reader may fall behind before reading stops. */
const QUEUED_PIECES = 16;

/** Sends `GET url` with `headers` and resolves once the response head arrived. */
export function rawGet(
  url: URL,
  headers: Record<string, string>,
  idleTimeoutMs: number,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    new RawAnswer(url, headers, idleTimeoutMs, { resolve, reject });
  });
}

/** An error shaped like node's own for the same failure (see http.ts, isConnectionError). */
function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function requestHead(url: URL, headers: Record<string, string>): string {
  const all: Record<string, string> = { host: url.host, ...headers, connection: "close" };
  if (url.username || url.password) {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    all["authorization"] ??= `Basic ${Buffer.from(user).toString("base64")}`;
  }
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(all)) {
    if (/[\r\n]/.test(name + value)) throw new TypeError(`invalid header ${JSON.stringify(name)}`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/** Which memory the socket reads into next. */
type Into = "head" | "target" | "scratch";

class RawAnswer implements HttpAnswer {
  statusCode: number | undefined;
  headers: IncomingHttpHeaders = {};
  complete = false;
  /** Set when the body is framed by Content-Length. */
  readBody?: (target: BodyTarget) => Promise<void>;

  private readonly socket: Socket;
  private head: Buffer | undefined = Buffer.allocUnsafe(HEAD_MAX);
  private headUsed = 0;
  private phase: "head" | "body" | "over" = "head";
  /** Body bytes still to come (Infinity: until the connection closes). */
  private remaining = Number.POSITIVE_INFINITY;
  private chunked = false;
  /** Body bytes that arrived before anyone read the body. */
  private early: Buffer[] = [];
  private target: BodyTarget | undefined;
  private into: Into = "head";
  private scratch: Buffer | undefined;
  private failed: Error | undefined;
  private bodyDone: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    url: URL,
    headers: Record<string, string>,
    idleTimeoutMs: number,
    private headDone: { resolve: (a: HttpAnswer) => void; reject: (err: Error) => void } | undefined,
  ) {
    const request = requestHead(url, headers);
    this.socket = connect({
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 80),
      onread: { buffer: () => this.nextBuffer(), callback: (n: number) => this.onRead(n) },
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(idleTimeoutMs, () => {
      this.fail(failure(`no data for ${Math.round(idleTimeoutMs / 1000)} s`, "ETIMEDOUT"));
    });
    this.socket.on("error", (err) => this.fail(err));
    this.socket.on("end", () => this.onEnd());
    this.socket.on("close", () => this.onEnd());
    this.socket.write(request);
  }

  destroy(error?: Error): this {
    this.fail(error ?? failure("aborted", "ECONNABORTED"));
    return this;
  }

  /** The memory the next read goes to: the head's, the target's (at most the rest of the body), or scratch. */
  private nextBuffer(): Uint8Array {
    if (this.phase === "head" && this.head) {
      this.into = "head";
      return this.head.subarray(this.headUsed);
    }
    if (this.phase === "body" && this.target && this.remaining > 0 && !this.failed) {
      try {
        const s = this.target.space();
        if (s.length > 0) {
          this.into = "target";
          return s.length > this.remaining ? s.subarray(0, this.remaining) : s;
        }
      } catch (err) {
        // reported on the next read (or never, if the socket is paused and then destroyed)
        this.fail(err as Error);
      }
    }
    this.into = "scratch";
    this.scratch ??= Buffer.allocUnsafe(PIECE);
    return this.scratch;
  }

  /** `n` bytes arrived in the memory nextBuffer() gave; false stops reading. */
  private onRead(n: number): boolean {
    try {
      if (this.failed) return false;
      if (this.into === "head") return this.onHead(n);
      if (this.phase !== "body") return true; // after the body: ignored (the connection closes)
      if (this.into === "target") {
        this.remaining -= n;
        this.target!.filled(n);
      } else {
        this.feed(Buffer.from(this.scratch!.subarray(0, n)));
      }
      return this.afterBytes();
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
  }

  /** After body bytes: finishes, pauses for a busy or missing reader, or reads on. */
  private afterBytes(): boolean {
    if (this.remaining === 0) {
      this.finish();
      return false;
    }
    if (!this.target) return false; // until someone reads the body
    if (this.target.busy()) {
      this.target.ready().then(
        () => this.resumeReading(),
        (err: Error) => this.fail(err),
      );
      return false;
    }
    return true;
  }

  private resumeReading(): void {
    if (this.phase === "body" && !this.failed && this.remaining > 0) this.socket.resume();
  }

  /** Copies `data` (body bytes that did not land in the target's memory) into the target, or keeps it. */
  private feed(data: Buffer): void {
    if (data.length > this.remaining) data = data.subarray(0, this.remaining);
    if (!this.target) {
      if (data.length > 0) this.early.push(data);
      this.remaining -= data.length;
      return;
    }
    for (let off = 0; off < data.length; ) {
      const s = this.target.space();
      if (s.length === 0) throw new Error("the body is longer than its reader takes");
      const k = Math.min(s.length, data.length - off);
      data.copy(s, 0, off, off + k);
      off += k;
      this.target.filled(k);
    }
    this.remaining -= data.length;
  }

  private onHead(n: number): boolean {
    const head = this.head!;
    this.headUsed += n;
    for (;;) {
      const end = head.subarray(0, this.headUsed).indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.headUsed === head.length)
          throw failure("the response head is too large", "HPE_HEADER_OVERFLOW");
        return true;
      }
      const rest = head.subarray(end + 4, this.headUsed);
      const status = this.parseHead(head.toString("latin1", 0, end));
      if (status >= 100 && status < 200) {
        // An interim answer (100 Continue, 103 Early Hints): the real one follows.
        rest.copy(head, 0);
        this.headUsed = rest.length;
        this.headers = {};
        continue;
      }
      this.statusCode = status;
      this.frame(status);
      this.phase = "body";
      this.head = undefined;
      if (rest.length > 0) this.feed(Buffer.from(rest));
      const done = this.headDone;
      this.headDone = undefined;
      done?.resolve(this);
      if (this.remaining === 0) {
        this.finish();
        return false;
      }
      return false; // until someone reads the body
    }
  }

  /** Parses a status line and headers; returns the status. */
  private parseHead(text: string): number {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
    if (!m)
      throw failure(
        `not an HTTP/1.1 response: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`,
        "HPE_INVALID_CONSTANT",
      );
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0)
        throw failure(
          `malformed response header ${JSON.stringify(line.slice(0, 80))}`,
          "HPE_INVALID_HEADER_TOKEN",
        );
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const had = this.headers[name];
      this.headers[name] = had === undefined ? value : `${had}, ${value}`;
    }
    return Number(m[1]);
  }

  /** How the body ends: no body, Content-Length, chunked, or when the connection closes. */
  private frame(status: number): void {
    const te = this.headers["transfer-encoding"];
    const cl = this.headers["content-length"];
    if (status === 204 || status === 304) {
      this.remaining = 0;
    } else if (typeof te === "string" && /\bchunked\b/i.test(te)) {
      this.chunked = true;
    } else if (typeof cl === "string") {
      if (!/^\d+$/.test(cl))
        throw failure(`invalid Content-Length ${JSON.stringify(cl)}`, "HPE_INVALID_CONTENT_LENGTH");
      this.remaining = Number(cl);
      this.readBody = (target) => this.attach(target);
    }
  }

  /** Reads the rest of the body into `target` (first what arrived before). */
  private attach(target: BodyTarget): Promise<void> {
    if (this.target) return Promise.reject(new Error("the body is already being read"));
    this.target = target;
    return new Promise<void>((resolve, reject) => {
      this.bodyDone = { resolve, reject };
      try {
        for (const e of this.early.splice(0)) {
          this.remaining += e.length; // counted off when it arrived
          this.feed(e);
        }
        if (this.complete || this.failed) return this.settle();
        if (this.afterBytes()) this.resumeReading();
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  private finish(): void {
    if (this.complete || this.failed) return;
    this.complete = true;
    this.phase = "over";
    this.socket.destroy();
    this.settle();
  }

  private fail(err: Error): void {
    if (this.complete || this.failed) return;
    this.failed = err;
    this.phase = "over";
    this.socket.destroy();
    const head = this.headDone;
    this.headDone = undefined;
    head?.reject(err);
    this.settle();
  }

  /** The connection ended: the body is complete only if it runs until the end. */
  private onEnd(): void {
    if (this.complete || this.failed) return;
    if (this.phase === "head") {
      this.fail(failure("socket hang up", "ECONNRESET"));
    } else if (this.remaining === Number.POSITIVE_INFINITY) {
      this.finish();
    } else {
      this.fail(failure("premature close", "ERR_STREAM_PREMATURE_CLOSE"));
    }
  }

  /** Settles a reader of the body once the body is complete or failed. */
  private settle(): void {
    const b = this.bodyDone;
    if (!b || !(this.complete || this.failed)) return;
    this.bodyDone = undefined;
    if (this.failed) b.reject(this.failed);
    else b.resolve();
  }

  /** The body in copied pieces (any framing); an error if the connection broke off. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const pieces: Buffer[] = [];
    let current: Buffer | undefined;
    let wake: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const target: BodyTarget = {
      space: () => {
        current = Buffer.allocUnsafe(PIECE);
        return current;
      },
      filled: (n) => {
        pieces.push(current!.subarray(0, n));
        wake?.();
      },
      busy: () => pieces.length >= QUEUED_PIECES,
      ready: () => new Promise<void>((r) => (drained = r)),
    };
    let ended = false;
    let broke: Error | undefined;
    this.attach(target).then(
      () => {
        ended = true;
        wake?.();
      },
      (err: Error) => {
        ended = true;
        broke = err;
        wake?.();
      },
    );
    const decoder = this.chunked ? new ChunkedDecoder() : undefined;
    try {
      for (;;) {
        const p = pieces.shift();
        if (p) {
          if (pieces.length < QUEUED_PIECES && drained) {
            const d = drained;
            drained = undefined;
            d();
          }
          if (!decoder) {
            yield p;
            continue;
          }
          for (const out of decoder.push(p)) yield out;
          if (decoder.done) {
            this.finish();
            return;
          }
          continue;
        }
        if (ended) {
          if (broke) throw broke;
          if (decoder && !decoder.done) throw failure("premature close", "ERR_STREAM_PREMATURE_CLOSE");
          return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      if (!this.complete) this.destroy();
    }
  }
}

/** Decodes a chunked body (RFC 9112 §7.1); extensions and trailers are skipped. */
class ChunkedDecoder {
  done = false;
  private line = "";
  /** Data bytes left in the current chunk; -1 while reading a size or trailer line. */
  private left = -1;
  /** The CRLF after a chunk's data is still to come. */
  private crlf = 0;
  private trailers = false;

  *push(data: Buffer): Generator<Buffer> {
    let off = 0;
    while (off < data.length && !this.done) {
      if (this.left > 0) {
        const k = Math.min(this.left, data.length - off);
        yield data.subarray(off, off + k);
        off += k;
        this.left -= k;
        if (this.left === 0) this.crlf = 2;
        continue;
      }
      if (this.crlf > 0) {
        off++;
        this.crlf--;
        if (this.crlf === 0) this.left = -1;
        continue;
      }
      const nl = data.indexOf(10, off);
      if (nl < 0) {
        this.line += data.toString("latin1", off);
        if (this.line.length > 4096) throw failure("malformed chunked body", "HPE_INVALID_CHUNK_SIZE");
        return;
      }
      const line = (this.line + data.toString("latin1", off, nl)).replace(/\r$/, "");
      this.line = "";
      off = nl + 1;
      if (this.trailers) {
        if (line === "") this.done = true;
        continue;
      }
      const m = /^([0-9a-fA-F]+)/.exec(line);
      if (!m) throw failure("malformed chunked body", "HPE_INVALID_CHUNK_SIZE");
      const size = Number.parseInt(m[1]!, 16);
      if (size === 0) this.trailers = true;
      else this.left = size;
    }
  }
}
