import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { type HttpRoute, httpRouteOf } from "./metrics.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/** Receives one answered plain HTTP request. */
export type HttpObserver = (route: HttpRoute, method: string, status: number, seconds: number) => void;

/**
 * Wraps a plain HTTP handler so every request is timed to the end of its answer (or to the
 * moment the client went away, recorded with the status that was being sent).
 */
export function observeHttp<Req extends Request, Res extends Response>(
  handler: (req: Req, res: Res) => void,
  observe: HttpObserver,
): (req: Req, res: Res) => void {
  return (req, res) => {
    const start = performance.now();
    const route = httpRouteOf(req.url ?? "/");
    (res as ServerResponse).once("close", () =>
      observe(route, req.method ?? "GET", res.statusCode, (performance.now() - start) / 1000),
    );
    handler(req, res);
  };
}
