import type { HttpRequest, HttpResponse } from "../net/node-http.js";

/** Sends a short plain-text response (errors and simple answers). */
export function sendText(
  res: HttpResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = body.endsWith("\n") ? body : `${body}\n`;
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(text);
}

/** Sends a JSON response. */
export function sendJson(
  res: HttpResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(text);
}

/**
 * True when the client of `req` has gone: its request, HTTP/1.1 connection or HTTP/2 stream is
 * destroyed (an answer can no longer reach it).
 */
export function clientGone(req: HttpRequest): boolean {
  if (req.destroyed) return true;
  return "stream" in req ? req.stream.destroyed || req.stream.closed : req.socket.destroyed;
}
