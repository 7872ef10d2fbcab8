/**
 * Earlier versions of a file. The API has no "list versions" call on this branch yet, so they are
 * read one by one with Files.Stat{version}: version numbers of a path count up from 1 and are
 * never reused, so the versions before the current one are N-1, N-2, …; those garbage collection
 * removed (or that were deletions) answer NOT_FOUND and are left out.
 */
import type { FileMeta } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../api/client.js";
import { upload, versionReader } from "./upload.js";

/** Earlier versions are looked for this many at a time. */
export const VERSIONS_PAGE = 10;

/** The versions of `file.path` before `below` (newest first), looking at most a page back. */
export async function earlierVersions(api: Api, file: FileMeta, below: bigint): Promise<FileMeta[]> {
  const wanted: bigint[] = [];
  for (let v = below - 1n; v >= 1n && wanted.length < VERSIONS_PAGE; v--) wanted.push(v);
  const found = await Promise.all(
    wanted.map((version) =>
      api.files.stat({ tenantId: file.tenantId, path: file.path, version }).then(
        (r) => r.file,
        (err: unknown) => {
          if (err instanceof ConnectError && err.code === Code.NotFound) return undefined;
          throw err;
        },
      ),
    ),
  );
  return found.filter((f): f is FileMeta => f !== undefined);
}

/**
 * Makes `old` the current content of its path again, as a new version, provided `current` is
 * still the live version (else FAILED_PRECONDITION and nothing changes). Content some live file
 * still holds is linked by its hash (no bytes travel); otherwise the old version is read back and
 * written again, a block at a time.
 */
export async function restoreVersion(api: Api, old: FileMeta, current: FileMeta): Promise<FileMeta> {
  const guard = { kind: { case: "version" as const, value: current.version } };
  try {
    const r = await api.uploads.begin({
      tenantId: old.tenantId,
      path: old.path,
      committed: { case: "contentHash", value: old.contentHash },
      precondition: guard,
      contentType: old.contentType,
    });
    return r.file!;
  } catch (err) {
    if (!(err instanceof ConnectError && err.code === Code.NotFound)) throw err;
  }
  return upload(
    api,
    {
      tenantId: old.tenantId,
      path: old.path,
      size: Number(old.size),
      read: versionReader(api, old.tenantId, old.path, old.version),
      contentType: old.contentType,
      guard: { kind: "replace", version: current.version },
    },
    () => undefined,
    new AbortController().signal,
  );
}
