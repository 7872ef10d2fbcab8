import type { Authorizer } from "../auth/authorizer.js";
import { CAP, type SessionInfo } from "../auth/session.js";
import { CacheroachError } from "../errors.js";
import type { Logger } from "../logger.js";
import { type HttpRequest, type HttpResponse, header } from "../net/node-http.js";
import type { FileStore } from "../store/file-store.js";
import type { RopeStore } from "../store/rope-store.js";
import type { SessionStore } from "../store/session-store.js";
import type { UploadManager } from "../uploads/upload-manager.js";
import { PUBLIC_SESSION, sessionOf } from "./request-session.js";
import type { Site } from "./site.js";
import { parseUrlPath, type UrlTarget } from "./url-path.js";
import type { VHostMap } from "./vhost-map.js";

/** What serving a tenant's files needs (the same for every request). */
export interface FileDeps {
  readonly files: FileStore;
  readonly ropes: RopeStore;
  readonly uploads: UploadManager;
  readonly authz: Authorizer;
  /** Largest PUT/POST body in bytes; larger ones get 413 before anything is stored. */
  readonly maxPutBytes: number;
  /** How clients reach the server (which hosts may show active content inline). */
  readonly site: Site;
}

/** A request as the router first has it: before anything is looked up. */
export interface Incoming {
  readonly req: HttpRequest;
  readonly res: HttpResponse;
  /** The request target, parsed for its query (the path is validated raw, see {@link path}). */
  readonly url: URL;
  /** The raw path of the request target, without the query. */
  readonly path: string;
  readonly log: Logger;
}

/**
 * One request to a tenant's files, built once by the router (see {@link buildRequestContext})
 * and handed to the handler of its method (file-methods.ts).
 */
export interface RequestContext extends Incoming {
  /** The decoded path: a file, or a directory when it ends with "/". */
  readonly target: UrlTarget;
  /** The caller's session: the presented token's, else the public session. */
  readonly session: SessionInfo;
  /** No token was presented (answers are publicly cacheable; refusals say "log in"). */
  readonly anonymous: boolean;
  /** The tenant served: a location-scoped session's own, else the Host's (virtual hosts). */
  readonly tenantId: string;
  /** The Host (HTTP/1.1) or :authority (HTTP/2) the request names. */
  readonly vhost: string | undefined;
  readonly deps: FileDeps;
}

/** What {@link buildRequestContext} looks things up in. */
export interface ContextDeps extends FileDeps {
  readonly sessions: SessionStore;
  readonly vhosts: VHostMap;
}

/**
 * The context of a request to a tenant's files: its path decoded and validated, its session
 * (401 when anonymous access is disabled) and the tenant it addresses (404 for a Host no tenant
 * is served on).
 */
export async function buildRequestContext(incoming: Incoming, deps: ContextDeps): Promise<RequestContext> {
  const { req, url } = incoming;
  const target = parseUrlPath(incoming.path);
  const { session } = await sessionOf(req, url, deps);
  if (!session)
    throw new CacheroachError(
      "ERR_UNAUTHENTICATED",
      "anonymous access is disabled: send Authorization: Bearer <token>",
    );
  const vhost = header(req, "host") ?? header(req, ":authority");
  const tenantId =
    session.scope.kind === "location" ? session.scope.tenantId : await deps.vhosts.resolve(vhost);
  if (!tenantId)
    throw new CacheroachError("ERR_NOT_FOUND", `no tenant is served for host ${JSON.stringify(vhost ?? "")}`);
  const { files, ropes, uploads, authz, maxPutBytes, site } = deps;
  return {
    ...incoming,
    target,
    session,
    anonymous: session === PUBLIC_SESSION,
    tenantId,
    vhost,
    deps: { files, ropes, uploads, authz, maxPutBytes, site },
  };
}

/** May the request's session act with `caps` at `path` of its tenant? */
export function mayAccess(ctx: RequestContext, caps: number, path: string): Promise<boolean> {
  return ctx.deps.authz.may(ctx.session, { caps, tenantId: ctx.tenantId, path });
}

/**
 * {@link mayAccess}, as a refusal: an anonymous caller may gain access by logging in (401),
 * others are simply refused (403).
 */
export async function requireAccess(ctx: RequestContext, caps: number, path: string): Promise<void> {
  if (await mayAccess(ctx, caps, path)) return;
  throw ctx.anonymous
    ? new CacheroachError("ERR_UNAUTHENTICATED", `${path} needs a login: send Authorization: Bearer <token>`)
    : new CacheroachError(
        "ERR_PERMISSION_DENIED",
        `this session lacks ${caps & CAP.write ? "write" : "read"} on ${path}`,
      );
}
