/**
 * Plain HTTP GETs (signed-URL downloads): an idle timeout, and helpers to classify dropped
 * connections and keep access tokens out of messages. http: URLs are fetched over a plain socket
 * (raw-http.ts) whose body can be read straight into the caller's buffers; https: ones through
 * node:https with a keep-alive agent.
 */
import type * as http from "node:http";
import * as https from "node:https";
import { rawGet } from "./raw-http.js";

/** Errors that mean the connection broke (worth resuming), not that the server said no. */
const CONNECTION_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ERR_STREAM_PREMATURE_CLOSE",
  "HPE_INVALID_CONSTANT",
  "UND_ERR_SOCKET",
]);

/** True when `err` is a broken, refused or stalled connection. */
export function isConnectionError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== "object") return false;
  if (typeof e.code === "string" && CONNECTION_CODES.has(e.code)) return true;
  return /^(aborted|socket hang up|premature close)$/i.test(String(e.message));
}

/** The URL with any access_token replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, "$1…");
}

/**
 * Where {@link HttpAnswer.readBody} puts a body: it reads the next bytes straight into
 * `space()` and reports them with `filled(n)`; while `busy()` it stops reading until `ready()`.
 */
export interface BodyTarget {
  /** Memory for the next bytes (not empty while the body has bytes left). */
  space(): Buffer;
  /** `n` bytes were read into the start of the last `space()`. */
  filled(n: number): void;
  /** True when no more should be read until {@link ready} resolves. */
  busy(): boolean;
  /** Resolves once more may be read; rejects if the target failed (which ends the read). */
  ready(): Promise<void>;
}

/** The parts of a response a download reads (node's IncomingMessage has them). */
export interface HttpAnswer {
  statusCode?: number | undefined;
  headers: http.IncomingHttpHeaders;
  /** Whether the whole body arrived. */
  readonly complete: boolean;
  destroy(error?: Error): unknown;
  [Symbol.asyncIterator](): AsyncIterator<Buffer>;
  /**
   * Present when the body's length is known and it can be read without copies: reads all of it
   * into `target`. Resolves once it has; rejects with what broke the connection (a body that
   * ends early is a premature close), or with the target's own failure.
   */
  readBody?(target: BodyTarget): Promise<void>;
}

/** A minimal GET client; `close()` releases pooled (https) connections. */
export class HttpClient {
  /** Made on the first https: request (most servers the CLI talks to are http:). */
  private httpsAgent: https.Agent | undefined;

  /** `idleTimeoutMs`: a connection that delivers nothing for this long is dropped (ETIMEDOUT). */
  constructor(private readonly idleTimeoutMs = 60_000) {}

  /** Sends a GET and resolves with the response once its headers arrive. */
  get(url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const u = new URL(url);
    const all = { "user-agent": "cacheroach-cli", ...headers };
    if (u.protocol === "http:") return rawGet(u, all, this.idleTimeoutMs);
    this.httpsAgent ??= new https.Agent({ keepAlive: true });
    const agent = this.httpsAgent;
    return new Promise((resolve, reject) => {
      const req = https.request(u, { method: "GET", headers: all, agent }, resolve);
      req.setTimeout(this.idleTimeoutMs, () => {
        const err = new Error(
          `no data for ${Math.round(this.idleTimeoutMs / 1000)} s`,
        ) as NodeJS.ErrnoException;
        err.code = "ETIMEDOUT";
        req.destroy(err);
      });
      req.on("error", reject);
      req.end();
    });
  }

  /** Closes pooled connections. */
  close(): void {
    this.httpsAgent?.destroy();
  }
}

/** Reads at most `max` bytes of a (small, error) response body as text, then discards the rest. */
export async function readSmallBody(res: HttpAnswer, max = 2048): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const piece of res as AsyncIterable<Buffer>) {
      if (n < max) parts.push(piece.subarray(0, max - n));
      n += piece.length;
      if (n >= max) break;
    }
  } catch {
    // the message is best effort
  }
  res.destroy();
  return Buffer.concat(parts).toString("utf8").trim();
}
