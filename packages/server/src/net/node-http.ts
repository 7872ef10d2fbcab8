import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

/**
 * The request handler of the port (connect-node's fallback type, which it does not export by
 * name): both the RPC adapter (rpc/) and the plain-HTTP router (http/) are one.
 */
export type HttpHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
/** An HTTP/1.1 or HTTP/2 compatibility request. */
export type HttpRequest = Parameters<HttpHandler>[0];
/** An HTTP/1.1 or HTTP/2 compatibility response. */
export type HttpResponse = Parameters<HttpHandler>[1];

/** A single header value (the first, when repeated). */
export function header(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
