import type { Authorizer } from "../auth/authorizer.js";
import { CAP, tokenKind } from "../auth/session.js";
import { CacheroachError } from "../errors.js";
import { header } from "../net/node-http.js";
import type { BlockPool } from "../uploads/block-pool.js";
import { FRAME_HEAD_BYTES } from "../uploads/chunk-frames.js";
import { storeChunkStream } from "../uploads/chunk-stream.js";
import type { UploadManager } from "../uploads/upload-manager.js";
import { sendJson } from "./answers.js";
import { MethodNotAllowed } from "./error-answer.js";
import type { Incoming } from "./request-context.js";

/** Where a client POSTs the chunks of an upload (docs/http.md, "Chunk uploads"). */
export const CHUNK_UPLOAD_ROUTE = "/_/v0/uploads/chunks";
/** The media type of a chunk upload body. */
export const CHUNK_UPLOAD_TYPE = "application/vnd.cacheroach.chunks";
/** The header carrying the upload state (base64), as PutChunks' `state` field does. */
export const UPLOAD_STATE_HEADER = "cacheroach-upload-state";
/** Most chunk bytes of one body, in max_transfer_sizes (64 MiB at the default 4 MiB). */
export const CHUNK_UPLOAD_TRANSFERS = 16;

/** Base64 (either alphabet, padding optional): anything else is not a state. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** What the chunk upload route needs. */
export interface ChunkUploadDeps {
  readonly authz: Authorizer;
  readonly uploads: UploadManager;
  /** Blocks of max_transfer_size that bodies are gathered in. */
  readonly pool: BlockPool;
}

/**
 * POST /_/v0/uploads/chunks: PutChunks as a streamed body of chunk frames (chunk-frames.ts), for
 * clients sending much new content. Authorized exactly as PutChunks: a bearer token in the
 * Authorization header (never a cookie or a query parameter) whose session has write on the path
 * of the upload the signed state names. Answers 200 with what was stored, or an error by the
 * usual mapping (a status, cacheroach-error-code, a message).
 */
export async function handleChunkUpload(incoming: Incoming, deps: ChunkUploadDeps): Promise<void> {
  const { req, res } = incoming;
  if (req.method !== "POST") throw new MethodNotAllowed(`${CHUNK_UPLOAD_ROUTE} answers POST only`, "POST");
  const auth = header(req, "authorization")?.trim() ?? "";
  const bearer = /^bearer\s+(\S+)$/i.exec(auth);
  if (!bearer) {
    throw new CacheroachError(
      "ERR_UNAUTHENTICATED",
      auth
        ? 'authorization header must be "Bearer <token>"'
        : "chunk uploads need Authorization: Bearer <token>",
    );
  }
  const session = await deps.authz.authenticate(bearer[1]!);
  if (tokenKind(session) === "signed-url") {
    throw new CacheroachError(
      "ERR_PERMISSION_DENIED",
      "a signed-URL token only reads its one file over HTTP; it cannot upload",
    );
  }
  const encoded = header(req, UPLOAD_STATE_HEADER)?.trim() ?? "";
  if (!encoded) throw new CacheroachError("ERR_BAD_REQUEST", `the ${UPLOAD_STATE_HEADER} header is missing`);
  if (!BASE64.test(encoded)) {
    throw new CacheroachError("ERR_BAD_UPLOAD_STATE", `the ${UPLOAD_STATE_HEADER} header is not base64`);
  }
  const state = deps.uploads.codec.decode(Buffer.from(encoded, "base64"));
  await deps.authz.require(session, { caps: CAP.write, tenantId: state.tenantId, path: state.path });
  const type = header(req, "content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== CHUNK_UPLOAD_TYPE) {
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `a chunk upload body is Content-Type ${CHUNK_UPLOAD_TYPE}, not ${type ? JSON.stringify(type) : "none"}`,
    );
  }
  const maxBytes = maxChunkUploadBytes(deps.uploads, state.chunkSize);
  const declared = header(req, "content-length");
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new CacheroachError(
      "ERR_TOO_LARGE",
      `a body of ${declared} bytes exceeds the ${maxBytes}-byte limit of one chunk upload`,
    );
  }
  // Not destroyed when storing fails midway: the error answer must still reach the client (the
  // router drains what is left of the body).
  const body: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }),
  };
  const result = await storeChunkStream(deps.uploads, state, body, { maxBytes, pool: deps.pool });
  sendJson(res, 200, result, { "cache-control": "no-store" });
}

/** The largest chunk upload body: {@link CHUNK_UPLOAD_TRANSFERS} max_transfer_sizes of chunks, framed. */
export function maxChunkUploadBytes(uploads: UploadManager, chunkSize: number): number {
  const data = CHUNK_UPLOAD_TRANSFERS * uploads.limits.maxTransferSize;
  return data + (Math.ceil(data / chunkSize) + 1) * FRAME_HEAD_BYTES;
}
