/**
 * Walking a remote directory with Files.List: every live file below a prefix a page at a time
 * ({@link listRemote}), or only its immediate children ({@link listChildren}: files directly in it
 * and the names of its sub-directories, skipping each sub-directory's files with a cursor past its
 * last possible path, so a directory costs one call per sub-directory, not per file).
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type FileMeta,
  type Files,
  type FilesListBytes,
  type ListRequestSchema,
  listResponseOfBytes,
} from "@cacheroach/proto";
import type { CallOptions, Client } from "@connectrpc/connect";

/** The most files one List call returns (the server's page limit). */
export const MAX_LIST_PAGE = 10_000;

/** The highest code point: no path segment sorts after "\u{10FFFF}" byte-wise but longer ones starting with it. */
const LAST = "\u{10FFFF}";

/** What a listing needs. */
export interface RemoteLister {
  /** Files.List: a Files client, or (faster) {@link fastLister} of a FilesListBytes client. */
  files: Pick<Client<typeof Files>, "list"> | PageLister;
  tenantId: string;
  /** Files per call (default {@link MAX_LIST_PAGE}). */
  pageSize?: number;
}

/** One page of Files.List whose files are decoded only when asked for (see {@link fastLister}). */
export interface LazyPage {
  nextCursor: string;
  files(): FileMeta[];
}

/** A Files.List client whose answer's cursor is known before its files are decoded. */
export interface PageLister extends Pick<Client<typeof Files>, "list"> {
  listPage(req: MessageInitShape<typeof ListRequestSchema>, opts?: CallOptions): Promise<LazyPage>;
}

/**
 * Files.List through a {@link FilesListBytes} client: the answer is decoded by the hand-written
 * decoder (proto/src/list-decoding.ts), several times faster than protobuf-es and with far less
 * garbage, into the same messages. Its `listPage` lets {@link listRemote} ask for the next page
 * before it decodes the current one, so the server works on one while the client decodes the other.
 */
export function fastLister(client: Client<typeof FilesListBytes>): PageLister {
  return {
    list: async (req, opts?: CallOptions) => listResponseOfBytes(await client.list(req, opts)),
    listPage: async (req, opts?: CallOptions) => {
      const res = await client.list(req, opts);
      return { nextCursor: res.nextCursor, files: () => listResponseOfBytes(res).files };
    },
  };
}

function cursorOf(path: string): string {
  return Buffer.from(path, "utf8").toString("base64url");
}

/** "/a/b" for "/a/b/" or "/a/b"; "" for the root. */
export function prefixOf(dir: string): string {
  if (dir === "/" || dir === "") return "";
  return dir.endsWith("/") ? dir.slice(0, -1) : dir;
}

/**
 * Every live file at or below `prefix` ("/a" lists "/a" itself and what is below "/a/"; "/" or ""
 * the whole tenant), in bytewise path order, one page per call. The next page is asked for as soon
 * as the current one's cursor is known, before the current one is decoded and handed on.
 */
export async function* listRemote(ctx: RemoteLister, prefix: string): AsyncGenerator<FileMeta[]> {
  const pageSize = ctx.pageSize ?? MAX_LIST_PAGE;
  const ask = (cursor: string): Promise<LazyPage> => {
    const req = { tenantId: ctx.tenantId, path: prefix === "" ? "/" : prefix, cursor, pageSize };
    if ("listPage" in ctx.files) return ctx.files.listPage(req);
    return ctx.files.list(req).then((page) => ({ nextCursor: page.nextCursor, files: () => page.files }));
  };
  let pending: Promise<LazyPage> | undefined = ask("");
  try {
    while (pending !== undefined) {
      const page: LazyPage = await pending;
      pending = page.nextCursor === "" ? undefined : ask(page.nextCursor);
      const files = page.files();
      if (files.length > 0) yield files;
    }
  } finally {
    // A consumer that stopped early (or a page that failed to decode) leaves a call in flight.
    pending?.catch(() => {});
  }
}

/** Every live file strictly below directory `dir` ("/a/" or "/a"), keyed by its path relative to it. */
export async function remoteFilesBelow(ctx: RemoteLister, dir: string): Promise<Map<string, FileMeta>> {
  const prefix = prefixOf(dir);
  const out = new Map<string, FileMeta>();
  for await (const page of listRemote(ctx, prefix)) {
    for (const f of page) {
      if (f.path.startsWith(`${prefix}/`)) out.set(f.path.slice(prefix.length + 1), f);
    }
  }
  return out;
}

/** One immediate child of a directory: a file, or a sub-directory (by its path, ending in "/"). */
export type Child = { kind: "file"; file: FileMeta } | { kind: "dir"; path: string };

/**
 * The immediate children of `prefix` in bytewise order (and the file at `prefix` itself, first,
 * when there is one): files directly in it, and each sub-directory once.
 */
export async function* listChildren(ctx: RemoteLister, prefix: string): AsyncGenerator<Child> {
  const below = `${prefix}/`;
  let cursor = "";
  let lastDir = "";
  let skips = 1;
  do {
    const page = await ctx.files.list({
      tenantId: ctx.tenantId,
      path: prefix === "" ? "/" : prefix,
      cursor,
      pageSize: ctx.pageSize ?? 1000,
    });
    cursor = page.nextCursor;
    for (const f of page.files) {
      const rest = f.path.startsWith(below) ? f.path.slice(below.length) : undefined;
      const slash = rest === undefined ? -1 : rest.indexOf("/");
      if (rest === undefined || slash < 0) {
        yield { kind: "file", file: f };
        continue;
      }
      const dir = `${below}${rest.slice(0, slash)}/`;
      if (dir !== lastDir) {
        yield { kind: "dir", path: dir };
        lastDir = dir;
        skips = 1;
      } else {
        skips++; // a name starting with U+10FFFF: skip further (never loops: the cursor grows)
      }
      // Resume past every path of this sub-directory.
      cursor = cursorOf(`${dir}${LAST.repeat(skips)}`);
      break;
    }
  } while (cursor !== "");
}
