import { CAP } from "../../auth/session.js";
import { CacheroachError } from "../../errors.js";
import { header } from "../../net/node-http.js";
import type { WritePrecondition } from "../../store/file-meta.js";
import { PreconditionFailed } from "../../store/file-store.js";
import { evaluate, parseETags } from "../conditional.js";
import { mayAccess, type RequestContext } from "../request-context.js";
import { validatorsOf } from "../serve-file.js";

/**
 * Maps If-Match / If-None-Match / If-Unmodified-Since to a write precondition: evaluated now
 * against the current file (412 early, nothing read from the body) and, where it names the
 * current state, passed on so the write re-checks it atomically.
 */
export async function writePrecondition(
  ctx: RequestContext,
  path: string,
): Promise<WritePrecondition | undefined> {
  const h = {
    ifMatch: header(ctx.req, "if-match"),
    ifNoneMatch: header(ctx.req, "if-none-match"),
    ifUnmodifiedSince: header(ctx.req, "if-unmodified-since"),
  };
  if (h.ifMatch === undefined && h.ifNoneMatch === undefined && h.ifUnmodifiedSince === undefined)
    return undefined;
  for (const v of [h.ifMatch, h.ifNoneMatch]) {
    if (v !== undefined && parseETags(v).length === 0) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `malformed entity tag list ${JSON.stringify(v.slice(0, 80))}`,
      );
    }
  }
  const current = await ctx.deps.files.get(ctx.tenantId, path);
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

/**
 * `err` as the caller may see it: a failed write precondition names the path's version and ETag
 * only to callers who may read the path (PreconditionFailed.revealIf). Rejects with the result.
 */
export async function revealed(ctx: RequestContext, err: unknown): Promise<never> {
  throw await PreconditionFailed.revealIf(err, (path) => mayAccess(ctx, CAP.read, path));
}
