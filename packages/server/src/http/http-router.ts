import { RETRIEVE_PREFIX } from "../auth/signed-urls.js";
import type { Db } from "../db/db.js";
import { CacheroachError, toHttpError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "../net/node-http.js";
import { BlockPool } from "../uploads/block-pool.js";
import { sendText } from "./answers.js";
import { CHUNK_UPLOAD_ROUTE, type ChunkUploadDeps, handleChunkUpload } from "./chunk-upload.js";
import { answerError, MethodNotAllowed } from "./error-answer.js";
import { ALLOW, handlerFor } from "./file-methods.js";
import { handleOidcRoute, type OidcRouteDeps } from "./oidc-routes.js";
import { buildRequestContext, type ContextDeps, type Incoming } from "./request-context.js";
import { findToken } from "./request-session.js";
import { handleConfig, handleRetrieve } from "./special-routes.js";
import { UI_PREFIX, type WebUi } from "./web-ui.js";

/** What the plain-HTTP side of the port needs. */
export interface HttpRouterDeps extends ContextDeps, OidcRouteDeps {
  readonly db: Db;
  readonly log: Logger;
  /** The built web UI, served at /_/ui/. */
  readonly ui: WebUi;
}

/**
 * Chunk upload blocks kept for reuse while uploads run: a body holds up to four (two being
 * stored, one sealed waiting for room, one filling), and the CLI sends three at once; 64 MiB at
 * the default max_transfer_size, dropped when idle (uploads/block-pool.ts).
 */
const SPARE_CHUNK_BLOCKS = 16;

/** How long /readyz waits for the database before answering "not ready". */
const READINESS_TIMEOUT_MS = 2000;

/**
 * Every request on the port that is not an RPC: probes, signed URLs, CLI config download, the web
 * UI (web-ui.ts) and virtual-host file serving, each method by its own handler (file-methods.ts).
 * Every failure is answered by {@link answerError}: a status, the error's code and a one-line
 * message.
 */
export function createHttpRouter(deps: HttpRouterDeps): HttpHandler {
  // Chunk upload bodies are gathered in blocks of one transfer, reused across requests. The pool
  // is made at the first chunk upload: a router that never sees one needs no upload limits.
  let pool: BlockPool | undefined;
  const chunkUploads: ChunkUploadDeps = {
    authz: deps.authz,
    uploads: deps.uploads,
    get pool() {
      pool ??= new BlockPool(deps.uploads.limits.maxTransferSize, SPARE_CHUNK_BLOCKS);
      return pool;
    },
  };
  return (req, res) => {
    route(deps, chunkUploads, req, res).catch((err: unknown) => {
      if (loginRedirect(deps, req, res, err)) return;
      answerError({ req, res, log: deps.log }, err);
    });
  };
}

/**
 * A browser that is not logged in and opens a page that needs a login (a private vhost's file or
 * directory) is led through the OIDC login and back, instead of a bare 401. Only for plain page
 * loads (GET or HEAD asking for HTML) that presented no token, when OIDC is on.
 */
function loginRedirect(deps: HttpRouterDeps, req: HttpRequest, res: HttpResponse, err: unknown): boolean {
  if (!deps.login || res.headersSent) return false;
  if (!(err instanceof CacheroachError) || err.code !== "ERR_UNAUTHENTICATED") return false;
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const target = req.url ?? "/";
  if (!target.startsWith("/") || target.startsWith("/_/") || target.startsWith("//")) return false;
  const accept = req.headers["accept"];
  if (typeof accept !== "string" || !accept.includes("text/html")) return false;
  // No token, or only a browser cookie that no longer works (the login replaces it).
  let presented: ReturnType<typeof findToken>;
  try {
    presented = findToken(req, new URL("http://localhost/"));
  } catch {
    return false;
  }
  if ((presented && presented.source !== "cookie") || /[?&]access_token=/.test(target)) return false;
  res.writeHead(302, {
    location: `/_/oidc/login?next=${encodeURIComponent(target)}`,
    "cache-control": "no-store",
  });
  res.end();
  return true;
}

async function route(
  deps: HttpRouterDeps,
  chunkUploads: ChunkUploadDeps,
  req: HttpRequest,
  res: HttpResponse,
): Promise<void> {
  // The WHATWG parser resolves "..", "." and "%2e%2e" silently; paths are validated raw instead.
  const rawTarget = req.url ?? "/";
  if (!rawTarget.startsWith("/"))
    throw new CacheroachError("ERR_BAD_PATH", "request target must be an absolute path");
  const q = rawTarget.indexOf("?");
  const incoming: Incoming = {
    req,
    res,
    // Only the query is parsed as a URL: a path like "//[x" would fail as an authority (a 500).
    url: new URL(`http://localhost/${q >= 0 ? rawTarget.slice(q) : ""}`),
    path: q >= 0 ? rawTarget.slice(0, q) : rawTarget,
    log: deps.log,
  };
  const p = incoming.path;
  if (p === "/healthz") return sendText(res, 200, "ok");
  if (p === "/readyz") {
    const r = await deps.db.readiness(READINESS_TIMEOUT_MS);
    if (r.ready) return sendText(res, 200, "ready", { "cache-control": "no-store" });
    const notReady = toHttpError(new CacheroachError("ERR_DATABASE_UNAVAILABLE", `not ready: ${r.reason}`));
    return sendText(res, notReady.status, notReady.message, {
      ...notReady.headers,
      "cache-control": "no-store",
    });
  }
  if (p.startsWith("/_/")) {
    if (p.startsWith(RETRIEVE_PREFIX)) return handleRetrieve(incoming, deps);
    if (p === "/_/v0/config") return handleConfig(incoming, deps);
    if (p === CHUNK_UPLOAD_ROUTE) return handleChunkUpload(incoming, chunkUploads);
    if (await handleOidcRoute(incoming, deps)) return;
    if (p === "/_/ui" || p.startsWith(UI_PREFIX)) return deps.ui.serve(incoming);
    throw new CacheroachError("ERR_NOT_FOUND", `no such endpoint ${p}`);
  }
  const ctx = await buildRequestContext(incoming, deps);
  const handler = handlerFor(req.method);
  if (!handler) throw new MethodNotAllowed(`method ${req.method} is not allowed`, ALLOW);
  return handler(ctx);
}
