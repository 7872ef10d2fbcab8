import { CacheroachError, isClientDisconnect, toHttpError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { HttpRequest, HttpResponse } from "../net/node-http.js";
import { clientGone, sendText } from "./answers.js";

/** ERR_METHOD_NOT_ALLOWED, with the methods the resource does answer (the 405's Allow header). */
export class MethodNotAllowed extends CacheroachError {
  constructor(
    message: string,
    readonly allow: string,
  ) {
    super("ERR_METHOD_NOT_ALLOWED", message);
  }
}

/**
 * The one way a plain-HTTP request fails: the error's status, its stable code and Retry-After
 * (errors.ts), a one-line message naming the problem, and the headers its status calls for
 * (WWW-Authenticate on 401, Allow on 405). Logged by severity; an answer already begun can only
 * be cut off.
 */
export function answerError(
  io: { readonly req: HttpRequest; readonly res: HttpResponse; readonly log: Logger },
  err: unknown,
): void {
  const { req, res, log } = io;
  const { status, message, headers } = toHttpError(err);
  if (clientGone(req) && isClientDisconnect(err)) {
    log.info(
      { method: req.method, err: err instanceof Error ? err.message : String(err) },
      "client went away",
    );
  } else if (status >= 500) {
    // 503/507 say the database is in trouble (readiness and the pool's warnings say so too): one
    // per request during an outage is a warning, not an error.
    const level = status === 503 || status === 507 ? "warn" : "error";
    log[level](
      { method: req.method, status, err: err instanceof Error ? err.message : String(err) },
      "http request failed",
    );
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const extra: Record<string, string> = { ...headers };
  if (status === 401) {
    const presented = req.headers["authorization"] !== undefined || (req.url ?? "").includes("access_token=");
    extra["www-authenticate"] = presented
      ? 'Bearer realm="cacheroach", error="invalid_token"'
      : 'Bearer realm="cacheroach"';
  }
  if (err instanceof MethodNotAllowed) extra["allow"] = err.allow;
  sendText(res, status, message, extra);
  finishRequestBody(req);
}

/** How long the rest of a refused request body is read and discarded before the connection is cut. */
const DRAIN_GRACE_MS = 5000;

/**
 * After an error answer to a request whose body has not been read (refused before reading, or
 * midway), reads and discards the rest, so the client, still sending, receives the answer:
 * closing an HTTP/1.1 socket with unread data makes the kernel send a reset, which can destroy
 * the answer before the client reads it, and an HTTP/2 client whose flow-control window is full
 * waits forever. A body still arriving after {@link DRAIN_GRACE_MS} is cut off (the HTTP/2
 * stream alone, not its connection).
 */
function finishRequestBody(req: HttpRequest): void {
  if (req.complete || req.destroyed) return;
  req.resume();
  const timer = setTimeout(() => {
    if (req.complete) return;
    if ("stream" in req) req.stream.destroy();
    else req.socket.destroy();
  }, DRAIN_GRACE_MS);
  timer.unref();
  req.once("end", () => clearTimeout(timer));
  req.once("close", () => clearTimeout(timer));
}
