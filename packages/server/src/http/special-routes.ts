import { toJson } from "@bufbuild/protobuf";
import { SessionSchema } from "@cacheroach/proto";
import type { Authorizer } from "../auth/authorizer.js";
import { CAP, tokenKind } from "../auth/session.js";
import { toSession } from "../auth/session-message.js";
import { CacheroachError } from "../errors.js";
import { type FileStore, noFile } from "../store/file-store.js";
import type { RopeStore } from "../store/rope-store.js";
import { sendJson } from "./answers.js";
import { attachment } from "./disposition.js";
import { MethodNotAllowed } from "./error-answer.js";
import type { Incoming } from "./request-context.js";
import { findToken } from "./request-session.js";
import { requireSameOrigin } from "./same-origin.js";
import { serveFile } from "./serve-file.js";
import type { Site } from "./site.js";

/**
 * GET /_/v0/retrieve/<name>?access_token=<jwt>: serves the one file a signed URL names (the
 * <name> segment is cosmetic), with the same range and conditional behaviour as vhost serving
 * and a Content-Disposition naming the file.
 */
export async function handleRetrieve(
  incoming: Incoming,
  deps: { authz: Authorizer; files: FileStore; ropes: RopeStore },
): Promise<void> {
  const { req, url } = incoming;
  if (req.method !== "GET" && req.method !== "HEAD") {
    throw new MethodNotAllowed("signed URLs answer GET and HEAD only", "GET, HEAD");
  }
  const found = findToken(req, url);
  if (!found)
    throw new CacheroachError("ERR_UNAUTHENTICATED", "a signed URL needs its access_token parameter");
  const s = await deps.authz.authenticate(found.token);
  const sc = s.scope;
  if (sc.kind !== "location" || !(s.caps & CAP.read) || sc.path.endsWith("*")) {
    throw new CacheroachError("ERR_PERMISSION_DENIED", "this token is not a signed URL for one file");
  }
  const file = await deps.files.get(sc.tenantId, sc.path, sc.version);
  if (!file) throw noFile(sc.path, sc.version);
  await serveFile(incoming, deps.ropes, file, {
    cacheControl: "private, no-cache",
    disposition: attachment(file.path),
  });
}

/**
 * GET /_/v0/config: a CLI configuration file for the presented session (header, cookie or
 * access_token), so a browser login or a shared token becomes `~/.cacheroach/config`. A token
 * presented only as a cookie is handed out to same-origin requests only: any site could
 * otherwise have the victim's browser fetch it. The server URL comes from configuration (see
 * Site.baseUrl), never from X-Forwarded-* headers.
 */
export async function handleConfig(
  incoming: Incoming,
  deps: { authz: Authorizer; site: Site },
): Promise<void> {
  const { req, res, url } = incoming;
  const found = findToken(req, url);
  if (!found)
    throw new CacheroachError("ERR_UNAUTHENTICATED", "present a token to download its CLI configuration");
  if (found.source === "cookie") requireSameOrigin(req, deps.site, "a configuration download by cookie");
  const s = await deps.authz.authenticate(found.token);
  if (tokenKind(s) === "signed-url")
    throw new CacheroachError("ERR_PERMISSION_DENIED", "a signed-URL token only reads its one file");
  const config = {
    server: await deps.site.baseUrl(req),
    token: found.token,
    session: toJson(SessionSchema, toSession(s)),
    ...(s.scope.kind === "location" ? { defaultTenant: s.scope.tenantId } : {}),
  };
  sendJson(res, 200, config, {
    "content-disposition": 'attachment; filename="cacheroach.cfg"',
    "cache-control": "no-store",
  });
}
