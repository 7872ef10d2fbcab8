/**
 * Whether a remote path names a directory: files are stored by full path, so a "directory" is any
 * path with files below it. Used to explain a "not found" for a path that is one.
 */
import type { Files } from "@cacheroach/proto";
import type { Client } from "@connectrpc/connect";

/**
 * True when some live file is stored below `path` ("/a" → "/a/..."); false when none is, or the
 * listing fails (the caller's own error then stands).
 */
export async function hasFilesBelow(
  files: Client<typeof Files>,
  tenantId: string,
  path: string,
): Promise<boolean> {
  const dir = path.replace(/\/+$/, "");
  // "/a" lists /a itself first, then what is below /a/ (bytewise order): two rows decide.
  const page = await files.list({ tenantId, path: dir, pageSize: 2 }).catch(() => undefined);
  return page?.files.some((f) => f.path.startsWith(`${dir}/`)) ?? false;
}
