import { CAP } from "../../auth/session.js";
import { CacheroachError } from "../../errors.js";
import { type RequestContext, requireAccess } from "../request-context.js";
import { revealed, writePrecondition } from "./write-precondition.js";

/** DELETE of a file: 204, with If-Match / If-None-Match / If-Unmodified-Since. */
export async function handleDelete(ctx: RequestContext): Promise<void> {
  const { target, deps, tenantId } = ctx;
  if (target.kind === "dir")
    throw new CacheroachError("ERR_BAD_PATH", "cannot delete a directory path (ends with /)");
  await requireAccess(ctx, CAP.write, target.path);
  const reveal = (err: unknown) => revealed(ctx, err);
  const precondition = await writePrecondition(ctx, target.path).catch(reveal);
  await deps.files.delete(tenantId, target.path, precondition).catch(reveal);
  ctx.res.writeHead(204);
  ctx.res.end();
}
