import type { RequestHandler } from "./dual-listener.js";

/** Sits in front of the server's handler and turns new requests away once the server drains. */
export interface DrainGate {
  /** The handler to listen with: the wrapped one until {@link start}, then the refusals. */
  readonly handler: RequestHandler;
  /** True once {@link start} was called. */
  readonly draining: boolean;
  /** From now on, every request except `/healthz` and `/metrics` is answered 503. Idempotent. */
  start(): void;
}

/**
 * Wraps `handler` so that, once the server drains (SIGTERM), every request that arrives is
 * answered `503` with `Retry-After` and `/readyz` says `not ready: server is shutting down`: a
 * load balancer stops sending, and a client's RPC fails as `unavailable`, which it may retry
 * elsewhere, while the requests already running finish. `/healthz` keeps answering, because the
 * process is alive: an orchestrator that restarts containers failing their liveness probe would
 * otherwise signal a draining server again, and a second signal stops it at once. `/metrics` keeps
 * answering too, so the drain can be watched.
 */
export function createDrainGate(handler: RequestHandler): DrainGate {
  let draining = false;
  return {
    get draining() {
      return draining;
    },
    start() {
      draining = true;
    },
    handler: (req, res) => {
      const path = (req.url ?? "").split("?", 1)[0];
      if (!draining || path === "/healthz" || path === "/metrics") return handler(req, res);
      const body = path === "/readyz" ? "not ready: server is shutting down\n" : "server is shutting down\n";
      res.writeHead(503, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": String(Buffer.byteLength(body)),
        "cache-control": "no-store",
        "retry-after": "2",
      });
      res.end(body);
    },
  };
}
