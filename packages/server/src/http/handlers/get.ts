import { CAP } from "../../auth/session.js";
import { CacheroachError } from "../../errors.js";
import { mayAccess, type RequestContext, requireAccess } from "../request-context.js";
import { serveFile } from "../serve-file.js";
import { encodePath } from "../url-path.js";
import { serveDirectory } from "./directory.js";

/**
 * GET of a file (`?version=N` for an old one, immutable) with ranges and conditionals, or of a
 * directory (`dir/`: its index page or a listing). A missing file that has files below it is a
 * redirect to `path/`, for callers who may list it.
 */
export async function handleGet(ctx: RequestContext): Promise<void> {
  const { target, deps, tenantId, anonymous } = ctx;
  const version = parseVersion(ctx.url.searchParams.get("version"));
  if (target.kind === "dir") return serveDirectory(ctx, target.dir);
  await requireAccess(ctx, CAP.read, target.path);
  const file = await deps.files.get(tenantId, target.path, version);
  if (!file) {
    // The redirect says that files exist below the path: only for callers who may list it.
    if (
      version === 0 &&
      (await mayAccess(ctx, CAP.read, `${target.path}/*`)) &&
      (await deps.files.isDirectory(tenantId, target.path))
    ) {
      ctx.res.writeHead(301, { location: `${encodePath(target.path)}/${ctx.url.search}` });
      return void ctx.res.end();
    }
    throw new CacheroachError(
      "ERR_NOT_FOUND",
      version === 0 ? `no file at ${target.path}` : `no version ${version} of ${target.path}`,
    );
  }
  const scope = anonymous ? "public" : "private";
  return serveFile(ctx, deps.ropes, file, {
    cacheControl: version ? `${scope}, max-age=31536000, immutable` : `${scope}, no-cache`,
    inlineActive: deps.site.inlineActiveContent(ctx.req),
  });
}

/** HEAD is GET without the body: serveFile and the listing leave it out for HEAD. */
export const handleHead = handleGet;

function parseVersion(v: string | null): number {
  if (v === null) return 0;
  if (!/^[1-9]\d{0,15}$/.test(v))
    throw new CacheroachError("ERR_BAD_REQUEST", "version must be a positive integer");
  return Number(v);
}
