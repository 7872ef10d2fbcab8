import { type HttpRoute, httpRouteOf } from "./metrics.js";

/** What the observer reads of a request and response (Node's HTTP/1.1 and HTTP/2 kinds both fit). */
interface Req {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
}
interface Res {
  readonly statusCode: number;
  once(event: "close", listener: () => void): unknown;
}

/** Receives one answered plain HTTP request. */
export type HttpObserver = (route: HttpRoute, method: string, status: number, seconds: number) => void;

/**
 * Wraps a plain HTTP handler so every request is timed to the end of its answer (or to the
 * moment the client went away, recorded with the status that was being sent).
 */
export function observeHttp<Q extends Req, S extends Res>(
  handler: (req: Q, res: S) => void,
  observe: HttpObserver,
): (req: Q, res: S) => void {
  return (req, res) => {
    const start = performance.now();
    const route = httpRouteOf(req.url ?? "/");
    res.once("close", () =>
      observe(route, req.method ?? "GET", res.statusCode, (performance.now() - start) / 1000),
    );
    handler(req, res);
  };
}
