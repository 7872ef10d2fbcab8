import { CAP } from "../../auth/session.js";
import { CacheroachError } from "../../errors.js";
import { directoryPage } from "../directory-page.js";
import { mayAccess, type RequestContext, requireAccess } from "../request-context.js";
import { serveFile, USER_CONTENT_HEADERS } from "../serve-file.js";
import { encodePath } from "../url-path.js";

/** Entries shown in a directory listing page. */
const LISTING_LIMIT = 1000;

/**
 * GET/HEAD of `dir/`: its index.html if the caller may read one, else an HTML listing of the
 * first {@link LISTING_LIMIT} children. The listing is one database query whatever the number
 * of children (FileStore.children), and an empty one tells a missing directory apart.
 */
export async function serveDirectory(ctx: RequestContext, dir: string): Promise<void> {
  const { req, res, deps, tenantId } = ctx;
  const index = `${dir}/index.html`;
  const indexFile = (await mayAccess(ctx, CAP.read, index))
    ? await deps.files.get(tenantId, index)
    : undefined;
  if (indexFile) {
    return serveFile(ctx, deps.ropes, indexFile, {
      cacheControl: `${ctx.anonymous ? "public" : "private"}, no-cache`,
      inlineActive: deps.site.inlineActiveContent(req),
    });
  }
  await requireAccess(ctx, CAP.read, `${dir}/*`);
  const entries = await deps.files.children(tenantId, dir, LISTING_LIMIT + 1);
  if (dir !== "" && entries.length === 0) {
    // A file of that name is a redirect only for a caller who may read it: a "/dir/*" grant does
    // not cover "/dir" itself, and must not learn whether it exists.
    if ((await mayAccess(ctx, CAP.read, dir)) && (await deps.files.get(tenantId, dir))) {
      res.writeHead(301, { location: `${encodePath(dir)}${ctx.url.search}` });
      return void res.end();
    }
    throw new CacheroachError("ERR_NOT_FOUND", `no directory ${dir}/`);
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
