/**
 * Sending an upload's new chunks as one streamed HTTP body (POST /_/v0/uploads/chunks, the
 * server's http/chunk-upload.ts; wire format in docs/http.md) instead of PutChunks calls. A
 * PutChunks call is a whole protobuf message: the encoder builds it in a fresh buffer of the
 * call's size, and the server reads it whole into another, and touching fresh memory is what
 * cost most CPU per MiB here. A body is written from the read block itself (a 36-byte head per
 * chunk, then a view of the chunk's bytes), and the server reads it into blocks it reuses.
 *
 * Servers without the route (older ones) answer 404 or 405, a proxy with a smaller body limit 413
 * without the server's error code: {@link ChunkRouteMissing}, and the caller sends with PutChunks
 * from then on.
 */
import * as http from "node:http";
import * as https from "node:https";
import { ERROR_TABLE, type ErrorCode } from "@cacheroach/server/error-table";
import { Code, ConnectError } from "@connectrpc/connect";
import { SERVER_ERROR_CODE } from "./errors.js";
import { isConnectionError } from "./http.js";

/** The route, its body's media type and the header naming the upload (see the server's chunk-upload.ts). */
export const CHUNK_UPLOAD_ROUTE = "/_/v0/uploads/chunks";
export const CHUNK_UPLOAD_TYPE = "application/vnd.cacheroach.chunks";
export const UPLOAD_STATE_HEADER = "cacheroach-upload-state";
/** A frame's head: the chunk's hash (32 bytes), then its length (uint32, big-endian). */
export const FRAME_HEAD_BYTES = 36;

/** Environment variable choosing how new chunks are sent: `http` (default) or `rpc` (PutChunks). */
export const CHUNK_UPLOAD_ENV = "CACHEROACH_CHUNK_UPLOAD";

/** Whether the environment asks for chunk bodies (the default) or PutChunks; a bad value is an error. */
export function chunkBodiesFromEnv(): boolean {
  const v = process.env[CHUNK_UPLOAD_ENV];
  if (v === undefined || v === "" || v === "http") return true;
  if (v === "rpc") return false;
  throw new Error(`${CHUNK_UPLOAD_ENV}=${v} is not one of http, rpc`);
}

/** The server has no chunk upload route (an older server): send with PutChunks. */
export class ChunkRouteMissing extends Error {
  constructor(status: number) {
    super(`the server answered ${status} to ${CHUNK_UPLOAD_ROUTE}`);
    this.name = "ChunkRouteMissing";
  }
}

/** One chunk to send: its hash and bytes. */
export interface ChunkToSend {
  readonly hash: Uint8Array;
  readonly data: Uint8Array;
}

/** What the server answers a body it stored. */
export interface ChunkBodyAnswer {
  chunks: number;
  bytes: number;
  stored: number;
}

/** Largest answer read (the success JSON is a few dozen bytes; an error a line of text). */
const ANSWER_MAX = 16 * 1024;

/**
 * Posts chunk bodies to one server with one token, over kept-alive connections (HTTP/1.1, plain
 * or TLS). `supported` turns false once the server shows it lacks the route.
 */
export class ChunkBodies {
  /** False once the server answered that it has no chunk upload route. */
  supported = true;
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(
    server: string,
    private readonly token: string,
    private readonly idleTimeoutMs = 60_000,
  ) {
    this.url = new URL(CHUNK_UPLOAD_ROUTE, server.endsWith("/") ? server : `${server}/`);
    this.agent =
      this.url.protocol === "https:"
        ? new https.Agent({ keepAlive: true })
        : new http.Agent({ keepAlive: true });
  }

  /**
   * Sends `chunks` (in order; every one but the last of chunk_size bytes) for the upload `state`
   * names. Failures are ConnectErrors with the code the server's error maps to (a connection that
   * broke is Unavailable), so callers retry them as they retry PutChunks; an older server is
   * {@link ChunkRouteMissing}.
   */
  post(state: Uint8Array, chunks: readonly ChunkToSend[]): Promise<ChunkBodyAnswer> {
    let length = 0;
    const heads = Buffer.allocUnsafe(FRAME_HEAD_BYTES * chunks.length);
    chunks.forEach((c, i) => {
      heads.set(c.hash, i * FRAME_HEAD_BYTES);
      heads.writeUInt32BE(c.data.length, i * FRAME_HEAD_BYTES + 32);
      length += FRAME_HEAD_BYTES + c.data.length;
    });
    const request = this.url.protocol === "https:" ? https.request : http.request;
    return new Promise<ChunkBodyAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        reject(asConnectError(err));
      };
      const req = request(this.url, {
        method: "POST",
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          "content-type": CHUNK_UPLOAD_TYPE,
          "content-length": String(length),
          [UPLOAD_STATE_HEADER]: Buffer.from(state).toString("base64"),
          "user-agent": "cacheroach-cli",
        },
      });
      req.setTimeout(this.idleTimeoutMs, () => {
        req.destroy(
          Object.assign(new Error(`no progress for ${Math.round(this.idleTimeoutMs / 1000)} s`), {
            code: "ETIMEDOUT",
          }),
        );
      });
      req.on("error", fail);
      req.on("response", (res) => {
        readAnswer(res).then((text) => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          if (status === 200) {
            try {
              resolve(JSON.parse(text) as ChunkBodyAnswer);
            } catch {
              reject(
                new ConnectError(
                  `the server's answer to a chunk upload is not JSON: ${text.slice(0, 200)}`,
                  Code.Internal,
                ),
              );
            }
            return;
          }
          if (status === 404 || status === 405 || (status === 413 && !res.headers[SERVER_ERROR_CODE])) {
            // An older server (no such endpoint), or a proxy in front that takes no bodies this
            // large (its 413 names no cacheroach code): the caller falls back to PutChunks.
            this.supported = false;
            reject(new ChunkRouteMissing(status));
            return;
          }
          reject(httpFailure(status, res.headers, text));
        }, fail);
      });
      // The chunks leave as they are (views of the caller's memory), the heads between them.
      req.cork();
      chunks.forEach((c, i) => {
        req.write(heads.subarray(i * FRAME_HEAD_BYTES, (i + 1) * FRAME_HEAD_BYTES));
        req.write(c.data);
      });
      req.uncork();
      req.end();
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** The answer's text (at most {@link ANSWER_MAX} bytes of it). */
async function readAnswer(res: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const piece of res as AsyncIterable<Buffer>) {
    if (n < ANSWER_MAX) parts.push(piece.subarray(0, ANSWER_MAX - n));
    n += piece.length;
  }
  return Buffer.concat(parts).toString("utf8").trim();
}

/**
 * An error answer as the ConnectError the same failure of PutChunks would be: the code the
 * server's stable error code maps to (its ERROR_TABLE), else one for the status; the stable code
 * and Retry-After in the metadata.
 */
export function httpFailure(
  status: number,
  headers: http.IncomingHttpHeaders,
  message: string,
): ConnectError {
  const serverCode = headers[SERVER_ERROR_CODE];
  const known = typeof serverCode === "string" && Object.hasOwn(ERROR_TABLE, serverCode);
  const code = known ? ERROR_TABLE[serverCode as ErrorCode].connect : codeOfStatus(status);
  const metadata: Record<string, string> = {};
  if (typeof serverCode === "string") metadata[SERVER_ERROR_CODE] = serverCode;
  const retryAfter = headers["retry-after"];
  if (typeof retryAfter === "string") metadata["retry-after"] = retryAfter;
  return new ConnectError(message || `HTTP ${status}`, code, metadata);
}

/** A failure to reach the server or of the connection, as Unavailable (retried); anything else as it is. */
function asConnectError(err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  if (isConnectionError(err)) {
    return new ConnectError(
      `chunk upload: ${(err as Error).message}`,
      Code.Unavailable,
      undefined,
      undefined,
      err,
    );
  }
  return err;
}

/** A status without a stable code (a proxy's answer): the nearest Connect code. */
function codeOfStatus(status: number): Code {
  if (status === 400) return Code.InvalidArgument;
  if (status === 401) return Code.Unauthenticated;
  if (status === 403) return Code.PermissionDenied;
  if (status === 413 || status === 429) return Code.ResourceExhausted;
  if (status === 502 || status === 503 || status === 504) return Code.Unavailable;
  return status >= 500 ? Code.Internal : Code.Unknown;
}
