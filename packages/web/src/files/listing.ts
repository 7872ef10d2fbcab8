/**
 * A folder's children from Files.List, which lists every file below a prefix (recursively, in
 * path order): files directly in the folder, and one entry per sub-folder with its file count,
 * total size and latest change. The API has no one-level listing yet, so a folder with very many
 * files below it is read up to {@link MAX_FILES} and the listing says it was cut short.
 */
import type { FileMeta } from "@cacheroach/proto";
import type { Api } from "../api/client.js";

/** At most this many files below a folder are read to list it. */
export const MAX_FILES = 50_000;
const PAGE = 5000;

/** One row of a folder listing. */
export type Entry =
  | { kind: "file"; name: string; path: string; file: FileMeta }
  | { kind: "folder"; name: string; path: string; files: number; size: bigint; modified: Date | undefined };

/** A folder's rows, and whether the listing was cut short. */
export interface Listing {
  readonly entries: Entry[];
  readonly truncated: boolean;
  /** Every file path seen below the folder, with its live version (conflict checks). */
  readonly versions: Map<string, bigint>;
}

/** Lists `dir` ("/" or "/a/b") of `tenantId`. */
export async function listFolder(
  api: Api,
  tenantId: string,
  dir: string,
  signal?: AbortSignal,
): Promise<Listing> {
  const prefix = dir === "/" ? "/" : `${dir}/`;
  const files = new Map<string, Entry & { kind: "file" }>();
  const folders = new Map<string, Entry & { kind: "folder" }>();
  const versions = new Map<string, bigint>();
  let cursor = "";
  let seen = 0;
  do {
    const page = await api.files.list({ tenantId, path: dir, cursor, pageSize: PAGE }, { signal });
    for (const f of page.files) {
      seen++;
      versions.set(f.path, f.version);
      if (!f.path.startsWith(prefix)) continue; // the file at the prefix itself
      const rest = f.path.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash < 0) {
        files.set(f.path, { kind: "file", name: rest, path: f.path, file: f });
        continue;
      }
      const name = rest.slice(0, slash);
      const path = prefix + name;
      const modified = f.modifiedAt ? new Date(Number(f.modifiedAt.seconds) * 1000) : undefined;
      const prior = folders.get(path);
      if (prior) {
        prior.files++;
        prior.size += f.size;
        if (modified && (!prior.modified || modified > prior.modified)) prior.modified = modified;
      } else folders.set(path, { kind: "folder", name, path, files: 1, size: f.size, modified });
    }
    cursor = page.nextCursor;
  } while (cursor !== "" && seen < MAX_FILES);
  return { entries: [...folders.values(), ...files.values()], truncated: cursor !== "", versions };
}

/** How rows are ordered. */
export type SortKey = "name" | "size" | "modified";

/** `entries` sorted by `key` (folders first), ascending unless `descending`. */
export function sortEntries(entries: readonly Entry[], key: SortKey, descending: boolean): Entry[] {
  const size = (e: Entry) => (e.kind === "file" ? e.file.size : e.size);
  const time = (e: Entry) =>
    e.kind === "file"
      ? Number(e.file.modifiedAt?.seconds ?? 0n) * 1000 + (e.file.modifiedAt?.nanos ?? 0) / 1e6
      : (e.modified?.getTime() ?? 0);
  const cmp = (a: Entry, b: Entry): number => {
    if (a.kind !== b.kind) return a.kind === "folder" ? -1 : 1;
    let c = 0;
    if (key === "size") c = size(a) < size(b) ? -1 : size(a) > size(b) ? 1 : 0;
    else if (key === "modified") c = time(a) - time(b);
    if (c === 0) c = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    return descending ? -c : c;
  };
  return [...entries].sort(cmp);
}
