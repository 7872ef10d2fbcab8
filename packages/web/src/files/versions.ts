/**
 * Earlier versions of a file, from Files.Versions (newest first, one page). Versions of a deleted
 * state cannot be read back, so only superseded ones are offered for restoring; versions garbage
 * collection removed are simply not listed.
 */
import type { FileMeta } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../api/client.js";
import { upload, versionReader } from "./upload.js";

/** Earlier versions are listed this many at a time. */
export const VERSIONS_PAGE = 10;

/**
 * A page of the versions of `file.path` before `below` (newest first), and where the next page
 * starts (0: no more).
 */
export async function earlierVersions(
  api: Api,
  file: FileMeta,
  below: bigint,
): Promise<{ found: FileMeta[]; next: bigint }> {
  const page = await api.files.versions({
    tenantId: file.tenantId,
    path: file.path,
    beforeVersion: below,
    pageSize: VERSIONS_PAGE,
  });
  return {
    found: page.versions.filter((v) => v.file && !v.deletedAt).map((v) => v.file!),
    next: page.nextBeforeVersion,
  };
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
