import { CAP } from "../../auth/session.js";
import { CacheroachError } from "../../errors.js";
import { header } from "../../net/node-http.js";
import { validateContentType } from "../../store/media-type.js";
import { writeStream } from "../../uploads/stream-writer.js";
import { sendJson } from "../answers.js";
import { type RequestContext, requireAccess } from "../request-context.js";
import { validatorsOf } from "../serve-file.js";
import { encodePath } from "../url-path.js";
import { revealed, writePrecondition } from "./write-precondition.js";

/**
 * PUT of a file: the body streams in (never whole in memory), with If-Match / If-None-Match /
 * If-Unmodified-Since. 201 with a JSON summary for a new path, 204 for a new version.
 */
export async function handlePut(ctx: RequestContext): Promise<void> {
  const { req, res, target, deps, tenantId, session } = ctx;
  if (target.kind === "dir")
    throw new CacheroachError("ERR_BAD_PATH", "cannot write to a directory path (ends with /)");
  await requireAccess(ctx, CAP.write, target.path);
  const declared = header(req, "content-length");
  if (declared !== undefined && Number(declared) > deps.maxPutBytes) {
    throw new CacheroachError(
      "ERR_TOO_LARGE",
      `body of ${declared} bytes exceeds the ${deps.maxPutBytes}-byte limit`,
    );
  }
  const precondition = await writePrecondition(ctx, target.path).catch((err: unknown) => revealed(ctx, err));
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
    // What curl --data and HTML forms send when nothing names a type: not the file's type.
    contentType: ct.startsWith("application/x-www-form-urlencoded") ? "" : validateContentType(ct),
    uploader: { principalId: session.principalId, sessionId: session.id },
  }).catch((err: unknown) => revealed(ctx, err));
  const etag = validatorsOf(file).etag;
  if (file.ctime.getTime() === file.mtime.getTime()) {
    const summary = {
      tenantId,
      path: file.path,
      version: file.version,
      size: file.size,
      contentHash: file.ropeHash.toString("hex"),
    };
    return sendJson(res, 201, summary, { etag, location: encodePath(file.path) });
  }
  res.writeHead(204, { etag });
  res.end();
}

/** POST is PUT (HTML forms and `curl --data-binary` send it). */
export const handlePost = handlePut;
