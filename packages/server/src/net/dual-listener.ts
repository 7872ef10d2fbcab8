import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";

/**
 * A request handler shared by the HTTP/1.1 and the HTTP/2 side of a {@link DualListener}.
 *
 * Both request types are Readable streams and both response types accept `writeHead()`, `setHeader()`,
 * `write()` and `end()`, so one handler (e.g. connect-node's adapter) serves both protocols. Do not set
 * hop-by-hop headers (`Transfer-Encoding`, `Keep-Alive`, `Upgrade`, `TE`, …): HTTP/2 rejects them when the
 * response is written.
 */
export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * Where an error reported to {@link DualListenerOptions.onError} came from: a raw TCP socket, an HTTP/2
 * session, or an exception thrown synchronously by the request handler.
 */
export type DualListenerErrorSource = "socket" | "session" | "handler";

/**
 * Tuning for {@link listenDual}; every field has a default suited to bulk chunk transfer.
 *
 * Caveat on the HTTP/2 windows (measured on Node 20.20): a Node `Http2Session` stops reading its socket
 * while one of its own socket writes is pending. When *both* ends use windows larger than the kernel's
 * socket buffers (e.g. this server's defaults and a node:http2 client that also sets a 16 MiB stream and
 * 64 MiB connection window) and bulk data flows in both directions on one session at once (an echo, or
 * an upload concurrent with a download), both ends wait for the other to read: the session deadlocks.
 * One side with a connection window of a few MiB or less (curl, Node's 64 KiB default, or server
 * windows of 1–4 MiB) avoided it in every run.
 */
export interface DualListenerOptions {
  /** per-stream HTTP/2 window, default 16 MiB (Node's 64 KiB default throttles bulk uploads) */
  initialWindowSize?: number;
  /** connection window, default 64 MiB (see the caveat above) */
  connectionWindowSize?: number;
  /** max size of a request head: HTTP/1.1 `maxHeaderSize` and HTTP/2 `maxHeaderListSize`; default 16 KiB */
  maxHeaderSize?: number;
  /**
   * Time a client has to send its first bytes and, on HTTP/1.1, its complete request head, default 60 s.
   * Request bodies have no overall deadline (large uploads over slow links must not be cut off).
   */
  headersTimeoutMs?: number;
  /** idle time after which an HTTP/1.1 keep-alive connection is closed, default 5 s (Node's default) */
  keepAliveTimeoutMs?: number;
  /**
   * Idle time after which an HTTP/2 session with no open stream is closed (GOAWAY), default 60 s.
   * A session whose streams are waiting for the handler is never closed for being quiet.
   */
  idleTimeoutMs?: number;
  /**
   * How long a request body may make no progress while the handler waits for it, default 60 s:
   * the client is then answered 408 (if nothing was sent yet) and its HTTP/1.1 connection or
   * HTTP/2 stream is closed. Time counts only while the handler has read everything received, so
   * a slow-but-progressing upload, or a handler that is itself slow to read, is never cut.
   */
  bodyIdleTimeoutMs?: number;
  /** HTTP/2 streams a client may have open at once on one session, default 100 */
  maxConcurrentStreams?: number;
  /**
   * How long `close()` lets in-flight requests finish before cutting connections, default 0 (cut at once).
   * Idle connections are closed immediately either way; see {@link DualListener.close}.
   */
  shutdownGraceMs?: number;
  /**
   * Receives errors that the listener swallows so they cannot crash the process. Default: handler
   * exceptions are printed with `console.error`, socket and session errors (ECONNRESET, protocol
   * garbage, …) are ignored.
   */
  onError?: (err: unknown, source: DualListenerErrorSource) => void;
  /** Told of every accepted client connection (e.g. to count its bytes). */
  onConnection?: (socket: net.Socket) => void;
  /**
   * Serve TLS with this certificate and key: HTTP/2 or HTTP/1.1 as ALPN agrees, instead of
   * cleartext HTTP/1.1 and h2c told apart by their first bytes.
   */
  tls?: tls.SecureContextOptions;
}

/** A running listener from {@link listenDual}. */
export interface DualListener {
  /** the TCP port actually bound (the random one when 0 was asked for) */
  readonly port: number;
  /** the address actually bound, e.g. `127.0.0.1` or `::1` */
  readonly host: string;
  /**
   * Drains, then closes: closes idle HTTP/1.1 keep-alive connections (between requests) at once and
   * sends every HTTP/2 session GOAWAY, lets the requests in flight finish, and answers the ones
   * still arriving `Connection: close` (the handler decides what; a server refuses them). The port
   * stays bound meanwhile, so a client or a load balancer's probe reaches an answer rather than a
   * refused connection. Once nothing is in flight the port is released, and connections left get
   * up to 2 s to close on their own (answers sent may still be on their way); `shutdownGraceMs`
   * after the call everything left is cut. Resolves once every connection is gone. Idempotent.
   */
  close(): Promise<void>;
  /** Replaces the certificate and key for new TLS connections (those open keep theirs). */
  setSecureContext(context: tls.SecureContextOptions): void;
}

/**
 * How long a draining listener with nothing in flight any more waits for connections to close by
 * themselves before it cuts them (never longer than the grace period).
 */
const LINGER_MS = 2000;

/** The first bytes every HTTP/2 prior-knowledge (h2c) client sends (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

const defaultOnError = (err: unknown, source: DualListenerErrorSource): void => {
  if (source === "handler") console.error("request handler threw:", err);
};

/**
 * Serves HTTP/1.1 and cleartext HTTP/2 with prior knowledge on one TCP port with one handler.
 *
 * Why: Node's `allowHTTP1` only works with TLS/ALPN, so on a cleartext port an `http2` server answers
 * HTTP/1.1 clients with HTTP/2 frames. Instead a plain `net` server sniffs the first bytes of every
 * connection and hands the socket to an `http.Server` (anything that is not the h2 preface) or an
 * `http2.Server` (the preface). Neither of those servers listens itself, so this module tracks sockets and
 * sessions for `close()` and enables Node's HTTP/1.1 head timeout (see the note in the body).
 */
export function listenDual(
  handler: RequestHandler,
  host: string,
  port: number,
  options: DualListenerOptions = {},
): Promise<DualListener> {
  const initialWindowSize = options.initialWindowSize ?? 16 << 20;
  const connectionWindowSize = options.connectionWindowSize ?? 64 << 20;
  const maxHeaderSize = options.maxHeaderSize ?? 16 << 10;
  const headersTimeoutMs = options.headersTimeoutMs ?? 60_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? 60_000;
  const maxConcurrentStreams = options.maxConcurrentStreams ?? 100;
  const shutdownGraceMs = options.shutdownGraceMs ?? 0;
  const onError = options.onError ?? defaultOnError;

  /** every accepted socket until it closes, whatever protocol it turned out to speak */
  const sockets = new Set<net.Socket>();
  /** sockets whose first bytes have not decided the protocol yet */
  const sniffing = new Set<net.Socket>();
  /** HTTP/1.1 sockets → number of requests whose response has not closed yet */
  const h1InFlight = new Map<net.Socket, number>();
  /** HTTP/1.1 responses not closed yet (to turn keep-alive off for those not begun when draining) */
  const h1Responses = new Set<http.ServerResponse>();
  const sessions = new Set<http2.ServerHttp2Session>();
  /** close() was called: draining */
  let closing = false;
  /** nothing is in flight any more (or the grace period is over): the port is being released */
  let released = false;
  /** set by close(): re-checks whether the drain is done whenever a request, stream or connection ends */
  let settle: (() => void) | undefined;

  const report = (err: unknown, source: DualListenerErrorSource): void => {
    try {
      onError(err, source);
    } catch {
      // a throwing error callback must not take the server down either
    }
  };

  const runHandler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): void => {
    const bad = badRequestHead(req, maxHeaderSize);
    if (bad) {
      refuse(req, res, bad.status, bad.message);
      return;
    }
    watchRequestBody(req, res, bodyIdleTimeoutMs);
    try {
      handler(req, res);
    } catch (err) {
      report(err, "handler");
      try {
        if (res.headersSent) {
          res.destroy();
        } else {
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end("internal error\n");
        }
      } catch {
        res.destroy();
      }
    }
  };

  const h1 = http.createServer(
    {
      maxHeaderSize,
      headersTimeout: headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeoutMs / 2))),
    },
    (req, res) => {
      const sock = req.socket;
      h1InFlight.set(sock, (h1InFlight.get(sock) ?? 0) + 1);
      h1Responses.add(res);
      if (closing) res.shouldKeepAlive = false;
      res.once("close", () => {
        h1Responses.delete(res);
        const left = Math.max(0, (h1InFlight.get(sock) ?? 1) - 1);
        if (h1InFlight.has(sock)) h1InFlight.set(sock, left);
        // A FIN after the answer, not a close: closing a socket with unread input (a request the
        // client sent meanwhile) resets it, and a reset discards the answer's unsent tail. The
        // socket closes once the client closes its side (or when the drain cuts what is left).
        if (closing && left === 0) sock.end();
        settle?.();
      });
      runHandler(req, res);
    },
  );
  // Node arms headersTimeout (and closeIdleConnections) for an http.Server's connections from a
  // 'listening' listener; this server never listens itself, so without this a client could hold a
  // half-sent request head open forever (measured on Node 20.20: 408 after headersTimeout with it,
  // no timeout at all without).
  h1.emit("listening");

  const h2 = http2.createServer(
    { settings: { initialWindowSize, maxHeaderListSize: maxHeaderSize, maxConcurrentStreams } },
    runHandler,
  );
  /** open streams of each HTTP/2 session (the idle timeout closes only sessions without any) */
  const openStreams = new WeakMap<http2.ServerHttp2Session, number>();
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    openStreams.set(session, 0);
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      stream.once("close", () => {
        openStreams.set(session, Math.max(0, (openStreams.get(session) ?? 1) - 1));
        settle?.();
      });
    });
    // Node's session timer restarts on every frame; when it fires with streams open, their
    // handlers are busy (or the body watchdog deals with them): only a session without any closes.
    session.setTimeout(idleTimeoutMs);
    session.on("timeout", () => {
      if ((openStreams.get(session) ?? 0) === 0) session.close();
    });
    session.once("close", () => {
      sessions.delete(session);
      settle?.();
    });
    session.on("error", (err) => report(err, "session"));
    try {
      session.setLocalWindowSize(connectionWindowSize);
    } catch (err) {
      report(err, "session");
    }
    if (closing) session.close();
  });
  h2.on("sessionError", (err) => report(err, "session"));

  /** Registers an accepted socket (cleartext, or TLS once its handshake is done) for close(). */
  const accept = (sock: net.Socket): boolean => {
    if (released) {
      sock.destroy();
      return false;
    }
    sockets.add(sock);
    // Stays attached after the hand-over: an 'error' without a listener would crash the process.
    sock.on("error", (err) => report(err, "socket"));
    sock.once("close", () => {
      sockets.delete(sock);
      sniffing.delete(sock);
      h1InFlight.delete(sock);
      settle?.();
    });
    return true;
  };
  const handOver = (sock: net.Socket, isH2: boolean): void => {
    if (isH2) {
      h2.emit("connection", sock); // the Http2Session reads any unshifted bytes itself
    } else {
      h1InFlight.set(sock, 0);
      h1.emit("connection", sock);
      sock.resume(); // http.Server does not resume an explicitly paused socket
    }
  };

  // No Nagle: responses are often several small writes (headers, then body), and waiting for
  // the peer's delayed ACK would stall them (http.Server sets this too; net.Server does not).
  const server: net.Server = options.tls
    ? // TLS: ALPN names the protocol (h2 or http/1.1), as for any HTTPS server; no sniffing.
      tls.createServer(
        {
          ...options.tls,
          ALPNProtocols: ["h2", "http/1.1"],
          handshakeTimeout: headersTimeoutMs,
          noDelay: true,
        },
        (sock) => {
          if (accept(sock)) handOver(sock, sock.alpnProtocol === "h2");
        },
      )
    : net.createServer({ noDelay: true }, (sock) => {
        options.onConnection?.(sock);
        if (!accept(sock)) return;
        sniffing.add(sock);
        const onSniffTimeout = (): void => {
          sock.destroy();
        };
        sock.setTimeout(headersTimeoutMs);
        sock.on("timeout", onSniffTimeout);
        let head: Buffer = Buffer.alloc(0);
        const onData = (data: Buffer): void => {
          head = head.length === 0 ? data : Buffer.concat([head, data]);
          const n = Math.min(head.length, H2_PREFACE.length);
          const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
          if (isH2 && n < H2_PREFACE.length) return; // a prefix of the preface: wait for more bytes
          sock.off("data", onData);
          sock.off("timeout", onSniffTimeout);
          sock.setTimeout(0);
          sniffing.delete(sock);
          sock.pause();
          sock.unshift(head);
          handOver(sock, isH2);
        };
        sock.on("data", onData);
      });
  if (options.tls) {
    // The raw connection, for byte counts; a handshake that fails is the client's problem.
    server.on("connection", (raw: net.Socket) => options.onConnection?.(raw));
    server.on("tlsClientError", (err) => report(err, "socket"));
  }
  server.on("error", (err) => report(err, "socket"));

  /** True while a request or stream has not finished (idle and new connections do not count). */
  const busy = (): boolean => {
    for (const n of h1InFlight.values()) if (n > 0) return true;
    for (const session of sessions) if ((openStreams.get(session) ?? 0) > 0) return true;
    return false;
  };

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      let portReleased = false;
      const timers: NodeJS.Timeout[] = [];
      const releasePort = (): void => {
        if (released) return;
        released = true;
        server.close(() => {
          portReleased = true;
          settle?.();
        });
        for (const sock of sniffing) sock.destroy();
      };
      const cutAll = (): void => {
        releasePort();
        for (const session of sessions) session.destroy();
        for (const sock of sockets) sock.destroy();
      };
      settle = () => {
        if (!released && !busy()) {
          // Answers already sent may still be on their way: connections that close on their own
          // (HTTP/2 after GOAWAY, HTTP/1.1 after a FIN) get a moment before they are cut.
          releasePort();
          timers.push(setTimeout(cutAll, Math.min(LINGER_MS, shutdownGraceMs)));
        }
        if (portReleased && sockets.size === 0) {
          for (const t of timers) clearTimeout(t);
          settle = undefined;
          resolve();
        }
      };
      h1.close(() => {}); // stops its connection-checking timer, closes idle HTTP/1.1 connections
      // Not the connections still sniffing: their first request may be on its way (a probe sent
      // right after the signal), and it is answered like any other that arrives meanwhile.
      for (const [sock, inFlight] of h1InFlight) if (inFlight === 0) sock.destroy();
      // Not begun yet: say Connection: close, so the client does not send another request on it.
      for (const res of h1Responses) if (!res.headersSent) res.shouldKeepAlive = false;
      for (const session of sessions) session.close(); // GOAWAY; ends once its open streams are done
      if (shutdownGraceMs > 0) timers.push(setTimeout(cutAll, shutdownGraceMs));
      else cutAll();
      settle();
    });
    return closed;
  };

  return new Promise<DualListener>((resolve, reject) => {
    const onListenError = (err: Error): void => reject(err);
    server.once("error", onListenError);
    server.listen(port, host, () => {
      server.off("error", onListenError);
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        host: addr.address,
        close,
        setSecureContext: (context) => {
          if (!(server instanceof tls.Server)) throw new Error("this listener does not speak TLS");
          server.setSecureContext(context);
        },
      });
    });
  });
}

/** A request the listener answers itself, before the handler sees it. */
interface HeadRefusal {
  readonly status: number;
  readonly message: string;
}

/**
 * Checks what Node does not: the HTTP/2 header list against the same limit as an HTTP/1.1 head
 * (Node enforces its SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged the
 * settings, so a session's first requests get through unchecked), one Host only
 * (RFC 9112 §3.2; Node keeps the first of several), and a Host that agrees with :authority
 * (RFC 9113 §8.3.1), so no layer can route or authorize by a different host than another.
 */
function badRequestHead(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  maxHeaderSize: number,
): HeadRefusal | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  let size = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === "host") hosts++;
    size += raw[i]!.length + (raw[i + 1]?.length ?? 0) + 32; // RFC 9113 §6.5.2 field size
  }
  if (req.httpVersionMajor >= 2 && size > maxHeaderSize)
    return { status: 431, message: `request headers exceed ${maxHeaderSize} bytes` };
  if (hosts > 1) return { status: 400, message: "request has more than one Host header" };
  const authority = req.headers[":authority"];
  const host = req.headers["host"];
  if (
    typeof authority === "string" &&
    typeof host === "string" &&
    authority.toLowerCase() !== host.toLowerCase()
  )
    return { status: 400, message: "request Host header differs from its :authority" };
  return undefined;
}

/** Answers a refused request and ends its exchange without reading its body. */
function refuse(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  status: number,
  message: string,
): void {
  const h1 = !("stream" in req);
  const body = `${message}\n`;
  // HTTP/2: once answered, a reset with NO_ERROR tells the client to stop sending a body.
  if ("stream" in req) req.stream.once("finish", () => req.stream.close(http2.constants.NGHTTP2_NO_ERROR));
  try {
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      // An HTTP/1.1 body left unread would be parsed as the next request: close instead.
      ...(h1 ? { connection: "close" } : {}),
    });
    res.end(body);
  } catch {
    res.destroy();
  }
}

/**
 * Cuts a request whose body stops arriving while the handler waits for it (see
 * DualListenerOptions.bodyIdleTimeoutMs). Checked a few times per timeout: progress is bytes
 * arriving on the HTTP/1.1 connection (one request at a time), or the HTTP/2 stream's receive
 * window moving (it shrinks with every byte received); while data received is still unread, the
 * handler is the slow one and the quiet time starts over.
 */
function watchRequestBody(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  timeoutMs: number,
): void {
  if (timeoutMs <= 0) return;
  const watch =
    "stream" in req
      ? {
          done: () => req.stream.destroyed || req.stream.state.remoteClose !== 0,
          progress: () => req.stream.state.localWindowSize ?? 0,
          // Data waits in the stream until the handler first reads, then in the request.
          buffered: () => req.readableLength + req.stream.readableLength,
        }
      : {
          done: () => req.complete || req.destroyed,
          progress: () => req.socket.bytesRead,
          buffered: () => req.readableLength + req.socket.readableLength,
        };
  if (watch.done()) return;
  let seen = watch.progress();
  let quietSince = Date.now();
  const timer = setInterval(
    () => {
      if (watch.done() || res.writableFinished) return stop();
      const now = watch.progress();
      if (now !== seen || watch.buffered() > 0) {
        seen = now;
        quietSince = Date.now();
        return;
      }
      if (Date.now() - quietSince < timeoutMs) return;
      stop();
      cutStalledRequest(req, res, timeoutMs);
    },
    Math.max(10, Math.floor(timeoutMs / 4)),
  );
  timer.unref();
  const stop = (): void => clearInterval(timer);
  req.once("close", stop);
  res.once("close", stop);
}

/**
 * Ends a request whose body stalled: 408 when the answer has not started, then the HTTP/2
 * stream is reset with NO_ERROR, which tells the client to stop sending (RFC 9113 §8.1), or the
 * HTTP/1.1 connection closed (it has no such signal). Past the answer's start, just the reset.
 */
function cutStalledRequest(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  timeoutMs: number,
): void {
  const h2 = "stream" in req ? req.stream : undefined;
  if (res.headersSent) {
    if (h2) h2.close(http2.constants.NGHTTP2_CANCEL);
    else req.socket.destroy();
    return;
  }
  if (h2) h2.once("finish", () => h2.close(http2.constants.NGHTTP2_NO_ERROR));
  else res.once("finish", () => req.socket.destroy());
  const body = `request body stalled: nothing arrived for ${Math.round(timeoutMs / 1000)} s\n`;
  res.writeHead(408, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
    ...(h2 ? {} : { connection: "close" }),
  });
  res.end(body);
}
