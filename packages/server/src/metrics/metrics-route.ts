import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { HttpHandler, HttpRequest, HttpResponse } from "../net/node-http.js";
import type { Metrics } from "./metrics.js";

type Req = HttpRequest | IncomingMessage;
type Res = HttpResponse | ServerResponse;

/** Answers `GET /metrics` with a scrape; true when it did (the request was for it). */
export function answerMetrics(metrics: Metrics, req: Req, res: Res): boolean {
  const path = (req.url ?? "").split("?", 1)[0];
  if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) return false;
  metrics.scrape().then(
    ({ contentType, body }) => {
      (res as ServerResponse).writeHead(200, {
        "content-type": contentType,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
      });
      if (req.method === "HEAD") res.end();
      else (res as ServerResponse).end(body);
    },
    () => {
      (res as ServerResponse).writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      (res as ServerResponse).end("metrics collection failed\n");
    },
  );
  return true;
}

/** A handler that serves `/metrics` itself and passes every other request on. */
export function withMetricsRoute(metrics: Metrics, next: HttpHandler): HttpHandler {
  return (req, res) => {
    if (!answerMetrics(metrics, req, res)) next(req, res);
  };
}

/** A separate HTTP/1.1 listener that serves only `/metrics` (the `metrics-bind` setting). */
export async function listenMetrics(metrics: Metrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (!answerMetrics(metrics, req, res)) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("only /metrics is served here\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
