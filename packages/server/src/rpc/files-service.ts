import { create } from "@bufbuild/protobuf";
import { durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ChunkRefSchema,
  type ChunksRequest,
  type Files,
  FileVersionSchema,
  type ListRequest,
  ListResponseSchema,
  type ReadRequest,
  type ReadResponse,
  ReadResponseSchema,
} from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CAP } from "../auth/session.js";
import { signRetrieveUrl } from "../auth/signed-urls.js";
import type { TokenSigner } from "../auth/token-signer.js";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import { damagedContent } from "../store/damaged-content.js";
import type { FileRecord } from "../store/file-meta.js";
import { type FileStore, noFile } from "../store/file-store.js";
import { validatePath, validatePrefix } from "../store/paths.js";
import type { Rope, RopeStore } from "../store/rope-store.js";
import { fromPrecondition, toFileMeta } from "./convert.js";
import { encodeListResponse } from "./list-encoding.js";
import { preEncoded, respondsInBinary } from "./pre-encoded.js";
import { preconditionDetail } from "./precondition-detail.js";
import { readMany } from "./read-many.js";

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;
const DEFAULT_VERSIONS_PAGE = 100;
const MAX_VERSIONS_PAGE = 1000;

/**
 * The Files service: stat, list, read, chunk lists and deletes (authorization: auth/policy.ts;
 * answers narrowed to what the caller may read: a listing's prefix file, precondition details).
 */
export function createFilesService(
  files: FileStore,
  ropes: RopeStore,
  signer: TokenSigner,
  maxSignedUrlSeconds: number,
  /** The server's response size limit (Connect writeMaxBytes): ReadMany answers stay under it. */
  answerMaxBytes: number,
  authz: Authorizer,
): ServiceImpl<typeof Files> {
  const ropeOf = async (tenantId: string, hash: Buffer): Promise<Rope> => {
    const rope = await ropes.get(tenantId, hash);
    if (!rope) throw damagedContent(hash, "its rope is missing");
    return rope;
  };
  /** The file the request names (its latest version, or the one asked for); ERR_NOT_FOUND if none. */
  const fileOf = async (tenantId: string, path: string, v: bigint): Promise<FileRecord> => {
    const n = version(v);
    const f = await files.get(tenantId, path, n);
    if (!f) throw noFile(path, n);
    return f;
  };
  return {
    async stat(req) {
      const f = await fileOf(parseId(req.tenantId, "tenant_id"), validatePath(req.path), req.version);
      return { file: toFileMeta(f) };
    },

    async list(req: ListRequest, ctx: HandlerContext) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const prefix = validatePrefix(req.path);
      const limit = req.pageSize === 0 ? DEFAULT_PAGE : req.pageSize;
      if (limit < 1 || limit > MAX_PAGE)
        throw new CacheroachError("ERR_BAD_REQUEST", `page_size must be 1..${MAX_PAGE}`);
      const after = req.cursor === "" ? undefined : decodeCursor(req.cursor, prefix);
      // The policy checked read on "prefix/*", which does not cover the file at the prefix itself.
      const session = ctx.values.get(kSession);
      const withPrefix =
        prefix !== "" &&
        session !== undefined &&
        (await authz.may(session, { caps: CAP.read, tenantId, path: prefix }));
      const page = await files.list(tenantId, prefix, after, limit, withPrefix);
      const nextCursor =
        page.after === undefined ? "" : Buffer.from(page.after, "utf8").toString("base64url");
      // Big pages are the bulk of listing time when protobuf-es encodes them (see list-encoding.ts).
      if (respondsInBinary(ctx))
        return preEncoded(ListResponseSchema, encodeListResponse(page.files, nextCursor));
      return { files: page.files.map(toFileMeta), nextCursor };
    },

    async *read(req: ReadRequest): AsyncGenerator<ReadResponse> {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const f = await fileOf(tenantId, validatePath(req.path), req.version);
      const offset = Number(req.offset);
      if (req.offset < 0n || offset > f.size) {
        throw new CacheroachError(
          "ERR_BAD_REQUEST",
          `offset ${req.offset} is outside the file (size ${f.size})`,
        );
      }
      if (req.length < 0n) throw new CacheroachError("ERR_BAD_REQUEST", "length must not be negative");
      const length = req.length === 0n ? f.size - offset : Math.min(Number(req.length), f.size - offset);
      const rope = await ropeOf(tenantId, f.ropeHash); // damaged content fails before the first message
      yield create(ReadResponseSchema, { file: toFileMeta(f), offset: BigInt(offset) });
      let pos = offset;
      for await (const data of ropes.read(tenantId, rope, offset, length)) {
        yield create(ReadResponseSchema, { data, offset: BigInt(pos) });
        pos += data.length;
      }
    },

    async chunks(req: ChunksRequest) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const f = await fileOf(tenantId, validatePath(req.path), req.version);
      const limit = req.limit === 0 ? DEFAULT_PAGE : req.limit;
      if (limit < 1 || limit > MAX_PAGE)
        throw new CacheroachError("ERR_BAD_REQUEST", `limit must be 1..${MAX_PAGE}`);
      if (req.fromOffset < 0n)
        throw new CacheroachError("ERR_BAD_REQUEST", "from_offset must not be negative");
      const rope = await ropeOf(tenantId, f.ropeHash);
      const entries = await ropes.entries(tenantId, rope, Number(req.fromOffset), limit);
      const last = entries[entries.length - 1];
      return {
        file: toFileMeta(f),
        chunks: entries.map((e) =>
          create(ChunkRefSchema, { hash: e.hash, length: e.length, offset: BigInt(e.offset) }),
        ),
        more: last !== undefined && last.offset + last.length < rope.size,
      };
    },

    readMany: (req, ctx) => readMany(req, ropes, ctx, answerMaxBytes),

    async versions(req) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const path = validatePath(req.path);
      const limit = req.pageSize === 0 ? DEFAULT_VERSIONS_PAGE : req.pageSize;
      if (limit < 1 || limit > MAX_VERSIONS_PAGE)
        throw new CacheroachError("ERR_BAD_REQUEST", `page_size must be 1..${MAX_VERSIONS_PAGE}`);
      const before = version(req.beforeVersion);
      const page = await files.versions(tenantId, path, before, limit);
      if (page.length === 0 && before === 0) {
        throw new CacheroachError("ERR_NOT_FOUND", `no versions of ${path} are stored`);
      }
      const last = page[page.length - 1];
      return {
        versions: page.map((v) =>
          create(FileVersionSchema, {
            file: toFileMeta(v.file),
            live: v.live,
            deletedAt: v.file.dtime ? timestampFromDate(v.file.dtime) : undefined,
          }),
        ),
        nextBeforeVersion: page.length === limit && last !== undefined ? BigInt(last.file.version) : 0n,
      };
    },

    async retrieve(req, ctx: HandlerContext) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const f = await fileOf(tenantId, validatePath(req.path), req.version);
      const wanted = req.validFor ? durationMs(req.validFor) : 24 * 3600 * 1000;
      if (wanted <= 0) throw new CacheroachError("ERR_BAD_REQUEST", "valid_for must be positive");
      const { uri, expiresAt } = await signRetrieveUrl({
        signer,
        caller: ctx.values.get(kSession)!,
        file: f,
        pinVersion: req.version !== 0n,
        validForMs: Math.min(wanted, maxSignedUrlSeconds * 1000),
      });
      return { getUri: uri, expiresAt: timestampFromDate(expiresAt), file: toFileMeta(f) };
    },

    async delete(req, ctx: HandlerContext) {
      const pre = fromPrecondition(req.precondition);
      if (pre?.kind === "mustNotExist")
        throw new CacheroachError("ERR_BAD_REQUEST", "must_not_exist makes no sense for a delete");
      const tenantId = parseId(req.tenantId, "tenant_id");
      try {
        const v = await files.delete(tenantId, validatePath(req.path), pre);
        return { version: BigInt(v) };
      } catch (err) {
        throw await preconditionDetail(authz, ctx, tenantId)(err);
      }
    },
  };
}

function version(v: bigint): number {
  if (v < 0n) throw new CacheroachError("ERR_BAD_REQUEST", "version must not be negative");
  return Number(v);
}

function decodeCursor(cursor: string, prefix: string): string {
  const bad = () =>
    new CacheroachError(
      "ERR_BAD_REQUEST",
      "cursor is invalid; pass next_cursor from the previous page unchanged",
    );
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  const path = Buffer.from(cursor, "base64url").toString("utf8");
  try {
    validatePath(path);
  } catch {
    throw bad();
  }
  if (path !== prefix && !path.startsWith(`${prefix}/`)) throw bad();
  return path;
}
