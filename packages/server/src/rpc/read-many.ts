import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type ReadManyRequest,
  type ReadManyResponse,
  ReadManyResponseSchema,
  type ReadManyResultSchema,
} from "@cacheroach/proto";
import type { HandlerContext } from "@connectrpc/connect";
import { MAX_BATCH_ITEMS } from "../auth/policy.js";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import type { FileRecord } from "../store/file-meta.js";
import { validatePath } from "../store/paths.js";
import type { Rope, RopeStore } from "../store/rope-store.js";
import { toFileMeta } from "./convert.js";
import { toItemError } from "./item-error.js";
import { preEncoded, respondsInBinary } from "./pre-encoded.js";
import { encodeReadManyResponse, type ReadManyItem } from "./read-many-encoding.js";

/** Files up to this size come with their contents unless the request says otherwise. */
const DEFAULT_MAX_SIZE = 1 << 20;
/** Contents one response carries at most (and the largest max_size). */
export const READ_MANY_BUDGET = 16 << 20;

/**
 * Files.ReadMany: the heads of many paths, and the contents of the small ones, within
 * {@link READ_MANY_BUDGET} bytes. A path without a live file is a not_found item, and a file whose
 * content the database no longer holds whole (when the answer would carry it) a data_loss item;
 * the call as a whole fails only on bad input.
 *
 * One statement reads the heads together with the chunk lists and chunks of the files of at most
 * budget / paths bytes (so whatever it returns fits the answer); larger files that the budget
 * still admits are read afterwards, one chunk-list query and one chunk query for all of them. A
 * binary answer is written by a hand-written encoder (read-many-encoding.ts).
 */
export async function readMany(
  req: ReadManyRequest,
  ropes: RopeStore,
  ctx?: HandlerContext,
  answerMaxBytes = Number.POSITIVE_INFINITY,
): Promise<ReadManyResponse | MessageInitShape<typeof ReadManyResponseSchema>> {
  const tenantId = parseId(req.tenantId, "tenant_id");
  if (req.paths.length < 1 || req.paths.length > MAX_BATCH_ITEMS) {
    throw new CacheroachError("ERR_BAD_REQUEST", `paths must hold 1..${MAX_BATCH_ITEMS} items`);
  }
  const paths = req.paths.map((p) => validatePath(p));
  if (req.maxSize < 0n || req.maxSize > BigInt(READ_MANY_BUDGET)) {
    throw new CacheroachError("ERR_BAD_REQUEST", `max_size must be 0..${READ_MANY_BUDGET}`);
  }
  const maxSize = req.maxSize === 0n ? DEFAULT_MAX_SIZE : Number(req.maxSize);
  const inlineMax = Math.min(maxSize, Math.floor(READ_MANY_BUDGET / paths.length));
  const heads = await ropes.liveHeads(tenantId, [...new Set(paths)], inlineMax);

  // Which contents the answer carries: in request order, each file within max_size and what is
  // left of the budget. The budget also keeps the whole answer under the server's response limit
  // (its metadata counted, contents as base64 in JSON), which would otherwise fail the call.
  const found = paths.map((p) => heads.get(p));
  const binary = !ctx || respondsInBinary(ctx);
  const metadata = found.reduce((n, h, i) => n + metadataBytes(h?.file, paths[i]!), 0) * (binary ? 1 : 2);
  let budget = Math.min(
    READ_MANY_BUDGET,
    Math.floor((answerMaxBytes - metadata - ANSWER_SLACK) / (binary ? 1 : BASE64_GROWTH)),
  );
  const included = found.map((h) => {
    if (!h || h.file.size > maxSize || h.file.size > budget) return false;
    budget -= h.file.size;
    return true;
  });
  // By path: the content, or why it cannot be read (damaged in the database: that item's error).
  const contents = new Map<string, Buffer | CacheroachError>();
  const later: Rope[] = [];
  found.forEach((h, i) => {
    if (!h || !included[i]) return;
    if (h.contents) contents.set(paths[i]!, h.contents);
    else later.push({ hash: h.file.ropeHash, size: h.file.size, chunkSize: h.file.chunkSize, chunkCount: 0 });
  });
  if (later.length > 0) {
    const byRope = await ropes.readWhole(tenantId, later);
    found.forEach((h, i) => {
      if (h && included[i] && !contents.has(paths[i]!)) {
        contents.set(paths[i]!, byRope.get(h.file.ropeHash.toString("hex"))!);
      }
    });
  }

  const items = found.map((h, i): ReadManyItem => {
    const path = paths[i]!;
    const c = included[i] ? contents.get(path) : undefined;
    if (!h || c instanceof CacheroachError) {
      const e = toItemError(
        c instanceof CacheroachError ? new CacheroachError(c.code, `${path}: ${c.message}`) : notFound(path),
      );
      return { error: { code: e.code ?? "", message: e.message ?? "", errorCode: e.errorCode ?? "" } };
    }
    return { file: h.file, contents: c };
  });
  if (ctx && respondsInBinary(ctx)) return preEncoded(ReadManyResponseSchema, encodeReadManyResponse(items));
  return { results: items.map(toResult) };
}

function notFound(path: string): CacheroachError {
  return new CacheroachError("ERR_NOT_FOUND", `no file at ${path}`);
}

/** Bytes of an answer besides its results' metadata and contents (framing, headers). */
const ANSWER_SLACK = 64 << 10;
/** Base64 text per content byte in JSON answers (4/3, with room for line framing). */
const BASE64_GROWTH = 1.34;

/** A generous estimate of one result's encoded size without its contents. */
function metadataBytes(file: FileRecord | undefined, path: string): number {
  if (!file) return 2 * Buffer.byteLength(path) + 128; // a not_found item: code and message
  let meta = 0;
  for (const [k, v] of Object.entries(file.meta)) meta += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
  return Buffer.byteLength(file.path) + Buffer.byteLength(file.contentType) + meta + 160;
}

/** One result as a message (JSON answers; the binary encoder writes the same fields). */
function toResult(it: ReadManyItem): MessageInitShape<typeof ReadManyResultSchema> {
  if ("error" in it) return { error: it.error };
  if (it.contents === undefined) return { file: toFileMeta(it.file) };
  return { file: toFileMeta(it.file), contents: it.contents, contentsIncluded: true };
}
