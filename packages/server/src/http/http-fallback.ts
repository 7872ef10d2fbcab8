import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Db } from "../db/db.js";

/** The adapter's plain-HTTP handler type (connect-node does not export it by name). */
export type HttpHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;

/**
 * Plain-HTTP requests that are not RPCs: health and readiness probes. (Virtual-host file serving
 * and signed URLs are added here by the HTTP-surface work.)
 */
export function createHttpFallback(db: Db): HttpHandler {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string) => {
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    };
    if (path === "/healthz") return send(200, "ok\n");
    if (path === "/readyz") {
      db.query("SELECT 1")
        .then(() => send(200, "ready\n"))
        .catch(() => send(503, "database unavailable\n"));
      return;
    }
    send(404, "not found\n");
  };
}
