import type { Authorizer } from "../auth/authorizer.js";
import { CAP, type SessionInfo } from "../auth/session.js";
import { StoreError } from "../errors.js";
import type { WritePrecondition } from "../store/file-meta.js";
import { type FileStore, noFile, PreconditionFailed } from "../store/file-store.js";
import type { RopeStore } from "../store/rope-store.js";
import { writeStream } from "../uploads/stream-writer.js";
import type { UploadManager } from "../uploads/upload-manager.js";
import { evaluate, parseETags } from "./conditional.js";
import { validateContentType } from "./content-type.js";
import { directoryPage } from "./directory-page.js";
import { type HttpRequest, type HttpResponse, header, sendJson, sendText } from "./http-types.js";
import { PUBLIC_SESSION } from "./request-session.js";
import { serveFile, USER_CONTENT_HEADERS, validatorsOf } from "./serve-file.js";
import type { Site } from "./site.js";
import { encodePath, parseUrlPath } from "./url-path.js";

/** What the file handler needs. */
export interface FileHandlerDeps {
  readonly files: FileStore;
  readonly ropes: RopeStore;
  readonly uploads: UploadManager;
  readonly authz: Authorizer;
  /** Largest PUT/POST body in bytes; larger ones get 413 before anything is stored. */
  readonly maxPutBytes: number;
  /** How clients reach the server (which hosts may show active content inline). */
  readonly site: Site;
}

/** Entries shown in a directory listing page. */
const LISTING_LIMIT = 1000;
const ALLOW = "GET, HEAD, PUT, POST, DELETE, OPTIONS";

/**
 * Serves one tenant's files over plain HTTP at their paths: GET/HEAD (with ?version=N,
 * directories, ranges and conditionals), PUT/POST streaming uploads with If-Match /
 * If-None-Match, and DELETE. `session` is the caller's (the public session when anonymous).
 */
export async function handleFileRequest(
  deps: FileHandlerDeps,
  req: HttpRequest,
  res: HttpResponse,
  url: URL,
  rawPath: string,
  tenantId: string,
  session: SessionInfo,
): Promise<void> {
  const target = parseUrlPath(rawPath);
  const require = async (caps: number, path: string) => {
    if (!(await deps.authz.may(session, { caps, tenantId, path }))) {
      // Anonymous callers may gain access by logging in (401); others are simply refused (403).
      throw new StoreError(
        session === PUBLIC_SESSION ? "ERR_UNAUTHENTICATED" : "ERR_PERMISSION_DENIED",
        session === PUBLIC_SESSION
          ? `${path} needs a login: send Authorization: Bearer <token>`
          : `this session lacks ${caps & CAP.write ? "write" : "read"} on ${path}`,
      );
    }
  };
  const anonymous = session === PUBLIC_SESSION;
  // A failed write precondition names the path's version and ETag only to callers who may read it.
  const reveal = async (err: unknown): Promise<never> => {
    throw await PreconditionFailed.revealIf(err, (path) =>
      deps.authz.may(session, { caps: CAP.read, tenantId, path }),
    );
  };
  switch (req.method) {
    case "GET":
    case "HEAD": {
      const version = parseVersion(url.searchParams.get("version"));
      if (target.kind === "dir")
        return serveDirectory(deps, req, res, url, tenantId, target.dir, require, anonymous);
      await require(CAP.read, target.path);
      const file = await deps.files.get(tenantId, target.path, version);
      if (!file) {
        if (version === 0) {
          // The redirect says that files exist below the path: only for callers who may list it.
          const mayList = await deps.authz.may(session, {
            caps: CAP.read,
            tenantId,
            path: `${target.path}/*`,
          });
          if (mayList && (await deps.files.isDirectory(tenantId, target.path))) {
            res.writeHead(301, { location: `${encodePath(target.path)}/${url.search}` });
            return void res.end();
          }
        }
        throw noFile(target.path, version);
      }
      const cache = version
        ? `${anonymous ? "public" : "private"}, max-age=31536000, immutable`
        : `${anonymous ? "public" : "private"}, no-cache`;
      return serveFile(req, res, file, deps.ropes, {
        cacheControl: cache,
        inlineActive: deps.site.inlineActiveContent(req),
      });
    }
    case "PUT":
    case "POST": {
      if (target.kind === "dir")
        throw new StoreError("ERR_BAD_PATH", "cannot write to a directory path (ends with /)");
      await require(CAP.write, target.path);
      const declared = header(req, "content-length");
      if (declared !== undefined && Number(declared) > deps.maxPutBytes) {
        throw new StoreError(
          "ERR_TOO_LARGE",
          `body of ${declared} bytes exceeds the ${deps.maxPutBytes}-byte limit`,
        );
      }
      const precondition = await writePrecondition(deps.files, req, tenantId, target.path).catch(reveal);
      const ct = header(req, "content-type") ?? "";
      // Not destroyed when the write fails midway: the error answer must still reach the client
      // (the router drains what is left of the body).
      const body: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }),
      };
      const file = await writeStream(deps.uploads, tenantId, target.path, body, {
        maxBytes: deps.maxPutBytes,
        precondition,
        meta: {},
        contentType: ct.startsWith("application/x-www-form-urlencoded") ? "" : validateContentType(ct),
        uploader: { principalId: session.principalId, sessionId: session.id },
      }).catch(reveal);
      const etag = validatorsOf(file).etag;
      if (file.ctime.getTime() === file.mtime.getTime()) {
        return sendJson(
          res,
          201,
          {
            tenantId,
            path: file.path,
            version: file.version,
            size: file.size,
            contentHash: file.ropeHash.toString("hex"),
          },
          { etag, location: encodePath(file.path) },
        );
      }
      res.writeHead(204, { etag });
      return void res.end();
    }
    case "DELETE": {
      if (target.kind === "dir")
        throw new StoreError("ERR_BAD_PATH", "cannot delete a directory path (ends with /)");
      await require(CAP.write, target.path);
      const precondition = await writePrecondition(deps.files, req, tenantId, target.path).catch(reveal);
      await deps.files.delete(tenantId, target.path, precondition).catch(reveal);
      res.writeHead(204);
      return void res.end();
    }
    case "OPTIONS":
      res.writeHead(204, { allow: ALLOW });
      return void res.end();
    default:
      return sendText(res, 405, `method ${req.method} is not allowed`, { allow: ALLOW });
  }
}

/**
 * GET/HEAD of `dir/`: its index.html if the caller may read one, else an HTML listing of the
 * first {@link LISTING_LIMIT} children. The listing is one database query whatever the number
 * of children (FileStore.children), and an empty one tells a missing directory apart.
 */
async function serveDirectory(
  deps: FileHandlerDeps,
  req: HttpRequest,
  res: HttpResponse,
  url: URL,
  tenantId: string,
  dir: string,
  require: (caps: number, path: string) => Promise<void>,
  anonymous: boolean,
): Promise<void> {
  const index = `${dir}/index.html`;
  try {
    await require(CAP.read, index);
    const file = await deps.files.get(tenantId, index);
    if (file)
      return serveFile(req, res, file, deps.ropes, {
        cacheControl: `${anonymous ? "public" : "private"}, no-cache`,
        inlineActive: deps.site.inlineActiveContent(req),
      });
  } catch (err) {
    if (
      !(err instanceof StoreError) ||
      !["ERR_NOT_FOUND", "ERR_PERMISSION_DENIED", "ERR_UNAUTHENTICATED"].includes(err.code)
    )
      throw err;
  }
  await require(CAP.read, `${dir}/*`);
  const entries = await deps.files.children(tenantId, dir, LISTING_LIMIT + 1);
  if (dir !== "" && entries.length === 0) {
    // A file of that name is a redirect only for a caller who may read it: a "/dir/*" grant does
    // not cover "/dir" itself, and must not learn whether it exists.
    const mayReadFile = await require(CAP.read, dir).then(
      () => true,
      () => false,
    );
    if (mayReadFile && (await deps.files.get(tenantId, dir)) !== undefined) {
      res.writeHead(301, { location: `${encodePath(dir)}${url.search}` });
      return void res.end();
    }
    throw new StoreError("ERR_NOT_FOUND", `no directory ${dir}/`);
  }
  const body = directoryPage(dir, entries.slice(0, LISTING_LIMIT), entries.length > LISTING_LIMIT);
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-cache",
    ...USER_CONTENT_HEADERS,
  });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

function parseVersion(v: string | null): number {
  if (v === null) return 0;
  if (!/^[1-9]\d{0,15}$/.test(v))
    throw new StoreError("ERR_BAD_REQUEST", "version must be a positive integer");
  return Number(v);
}

/**
 * Maps If-Match / If-None-Match / If-Unmodified-Since to a write precondition: evaluated now
 * against the current file (412 early, nothing read from the body) and, where it names the
 * current state, passed on so the write re-checks it atomically.
 */
async function writePrecondition(
  files: FileStore,
  req: HttpRequest,
  tenantId: string,
  path: string,
): Promise<WritePrecondition | undefined> {
  const h = {
    ifMatch: header(req, "if-match"),
    ifNoneMatch: header(req, "if-none-match"),
    ifUnmodifiedSince: header(req, "if-unmodified-since"),
  };
  if (h.ifMatch === undefined && h.ifNoneMatch === undefined && h.ifUnmodifiedSince === undefined)
    return undefined;
  for (const v of [h.ifMatch, h.ifNoneMatch]) {
    if (v !== undefined && parseETags(v).length === 0) {
      throw new StoreError("ERR_BAD_REQUEST", `malformed entity tag list ${JSON.stringify(v.slice(0, 80))}`);
    }
  }
  const current = await files.get(tenantId, path);
  if (evaluate(h, current && validatorsOf(current), false) !== "proceed") {
    throw new PreconditionFailed(
      path,
      `${path}: the request's If-Match / If-None-Match / If-Unmodified-Since condition does not hold`,
      current
        ? `${path} is at version ${current.version} with ETag ${validatorsOf(current).etag}`
        : `${path} does not exist`,
    );
  }
  if (h.ifNoneMatch !== undefined && parseETags(h.ifNoneMatch).includes("*")) return { kind: "mustNotExist" };
  if (h.ifMatch !== undefined && current) {
    return parseETags(h.ifMatch).includes("*")
      ? { kind: "mustExist" }
      : { kind: "contentHash", hash: current.ropeHash };
  }
  return current ? { kind: "contentHash", hash: current.ropeHash } : { kind: "mustNotExist" };
}
