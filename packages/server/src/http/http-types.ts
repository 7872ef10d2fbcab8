import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

/** The adapter's plain-HTTP handler type (connect-node does not export it by name). */
export type HttpHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
/** An HTTP/1.1 or HTTP/2 compatibility request. */
export type HttpRequest = Parameters<HttpHandler>[0];
/** An HTTP/1.1 or HTTP/2 compatibility response. */
export type HttpResponse = Parameters<HttpHandler>[1];

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

/** A single header value (the first, when repeated). */
export function header(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * True when the client of `req` has gone: its request, HTTP/1.1 connection or HTTP/2 stream is
 * destroyed (an answer can no longer reach it).
 */
export function clientGone(req: HttpRequest): boolean {
  if (req.destroyed) return true;
  return "stream" in req ? req.stream.destroyed || req.stream.closed : req.socket.destroyed;
}
