/**
 * Plain HTTP GETs (signed-URL downloads): keep-alive agents, an idle timeout, and helpers to
 * classify dropped connections and keep access tokens out of messages.
 */
import * as http from "node:http";
import * as https from "node:https";

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

/** A minimal GET client with keep-alive connections; `close()` releases them. */
export class HttpClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });

  /** `idleTimeoutMs`: a connection that delivers nothing for this long is dropped (ETIMEDOUT). */
  constructor(private readonly idleTimeoutMs = 60_000) {}

  /** Sends a GET and resolves with the response once its headers arrive. */
  get(url: string, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
    const u = new URL(url);
    const secure = u.protocol === "https:";
    const mod = secure ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        u,
        {
          method: "GET",
          headers: { "user-agent": "cacheroach-cli", ...headers },
          agent: secure ? this.httpsAgent : this.httpAgent,
        },
        resolve,
      );
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
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** Reads at most `max` bytes of a (small, error) response body as text, then discards the rest. */
export async function readSmallBody(res: http.IncomingMessage, max = 2048): Promise<string> {
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
