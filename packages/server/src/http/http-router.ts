import type { Authorizer } from "../auth/authorizer.js";
import type { Db } from "../db/db.js";
import { isClientDisconnect, StoreError, toHttpError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { SessionStore } from "../store/session-store.js";
import { type FileHandlerDeps, handleFileRequest } from "./file-handler.js";
import {
  clientGone,
  type HttpHandler,
  type HttpRequest,
  type HttpResponse,
  header,
  sendText,
} from "./http-types.js";
import { sessionOf } from "./request-session.js";
import { RETRIEVE_PREFIX } from "./signed-urls.js";
import { handleConfig, handleRetrieve } from "./special-routes.js";
import type { VHostMap } from "./vhost-map.js";

/** What the plain-HTTP side of the port needs. */
export interface HttpRouterDeps extends FileHandlerDeps {
  readonly db: Db;
  readonly sessions: SessionStore;
  readonly authz: Authorizer;
  readonly vhosts: VHostMap;
  readonly log: Logger;
}

/** How long /readyz waits for the database before answering "not ready". */
const READINESS_TIMEOUT_MS = 2000;

/**
 * Every request on the port that is not an RPC: probes, signed URLs, CLI config download and
 * virtual-host file serving. Errors become a status and a one-line message naming the problem.
 */
export function createHttpRouter(deps: HttpRouterDeps): HttpHandler {
  return (req, res) => {
    route(deps, req, res).catch((err: unknown) => fail(deps.log, req, res, err));
  };
}

async function route(deps: HttpRouterDeps, req: HttpRequest, res: HttpResponse): Promise<void> {
  // The WHATWG parser resolves "..", "." and "%2e%2e" silently; paths are validated raw instead.
  const rawTarget = req.url ?? "/";
  if (!rawTarget.startsWith("/"))
    throw new StoreError("ERR_BAD_PATH", "request target must be an absolute path");
  const url = new URL(rawTarget, "http://localhost");
  const q = rawTarget.indexOf("?");
  const p = q >= 0 ? rawTarget.slice(0, q) : rawTarget;
  if (p === "/healthz") return sendText(res, 200, "ok");
  if (p === "/readyz") {
    const r = await deps.db.readiness(READINESS_TIMEOUT_MS);
    return r.ready
      ? sendText(res, 200, "ready", { "cache-control": "no-store" })
      : sendText(res, 503, `not ready: ${r.reason}`, { "cache-control": "no-store", "retry-after": "2" });
  }
  if (p.startsWith("/_/")) {
    if (p.startsWith(RETRIEVE_PREFIX)) return handleRetrieve(req, res, url, deps);
    if (p === "/_/v0/config") return handleConfig(req, res, url, deps);
    return sendText(res, 404, `no such endpoint ${p}`);
  }
  const { session } = await sessionOf(req, url, deps);
  if (!session)
    throw new StoreError(
      "ERR_UNAUTHENTICATED",
      "anonymous access is disabled: send Authorization: Bearer <token>",
    );
  const host = header(req, "host") ?? header(req, ":authority");
  const tenantId =
    session.scope.kind === "location" ? session.scope.tenantId : await deps.vhosts.resolve(host);
  if (!tenantId)
    throw new StoreError("ERR_NOT_FOUND", `no tenant is served for host ${JSON.stringify(host ?? "")}`);
  return handleFileRequest(deps, req, res, url, p, tenantId, session);
}

function fail(log: Logger, req: HttpRequest, res: HttpResponse, err: unknown): void {
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
  if (status === 405) extra["allow"] = "GET, HEAD";
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
