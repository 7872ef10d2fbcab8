import { Code, ConnectError, type ConnectRouter, createConnectRouter } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  type UniversalHandler,
  type UniversalHandlerOptions,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  endStreamToJson,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { ERROR_CODE_HEADER } from "../errors.js";
import { type HttpHandler, type HttpRequest, type HttpResponse, header } from "../net/node-http.js";

/** Options of {@link createRpcAdapter}: connect-node's adapter options that cacheroach uses. */
export interface RpcAdapterOptions extends Partial<UniversalHandlerOptions> {
  readonly routes: (router: ConnectRouter) => void;
  /** Every request that is not RPC (plain HTTP). */
  readonly fallback: HttpHandler;
  /** A handler that failed after its response began (the client sees a reset stream). */
  readonly onHandlerError?: (err: unknown, method: string) => void;
}

/** The RPC protocols, as a request's content type (or Connect GET query) names them. */
export type RpcProtocol = "connect" | "connect-stream" | "grpc" | "grpc-web";

/**
 * connect-node's adapter (connectNodeAdapter) with two differences that keep RPC and files apart:
 *
 * - A request in an RPC protocol for a path that is no method of the server is answered
 *   `unimplemented` in that protocol's own form, instead of reaching the plain-HTTP fallback,
 *   which would store its body as a file (see {@link rpcProtocolOf} for what counts as RPC).
 * - A request body that is not a valid protobuf message is `invalid_argument`, as connect-node
 *   already answers for bad JSON; it answers a bad binary body `internal` ("parse binary: …"), in
 *   code that offers no hook, so the answer is corrected on its way out.
 */
export function createRpcAdapter(options: RpcAdapterOptions): HttpHandler {
  const router = createConnectRouter(options);
  options.routes(router);
  const methods = new Map<string, UniversalHandler>();
  for (const h of router.handlers) methods.set(h.requestPath, h);
  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    const handler = methods.get(path);
    if (!handler) {
      const protocol = rpcProtocolOf(req, path);
      if (protocol === undefined) return options.fallback(req, res);
      return refuse(req, res, protocol, unknownMethod(path, methods));
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, undefined);
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(parseFailureAsInvalid(uRes, handler), res))
      .catch((err: unknown) => {
        if (ConnectError.from(err).code === Code.Aborted) return;
        options.onHandlerError?.(err, path);
      });
  };
}

/** A path ending in `/<package>.<Service>/<Method>`: how every RPC method is addressed. */
const METHOD_PATH = /\/[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

/**
 * The RPC protocol a request speaks, or undefined for plain HTTP. The content type decides:
 * `application/grpc*`, `application/grpc-web*` and `application/connect+*` exist only for RPC.
 * `application/proto` and `application/json` (Connect unary) are ordinary types of uploaded files
 * too, so those count as RPC only on a POST that carries Connect's protocol header (every Connect
 * client sends it) or whose path is shaped like a method; a Connect GET carries `connect=v1` or
 * `encoding` and `message` in its query. A PUT is never RPC, so `curl -T x.json` stores a file as always.
 */
export function rpcProtocolOf(req: HttpRequest, path: string): RpcProtocol | undefined {
  const type = (header(req, "content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (type === "application/grpc" || type.startsWith("application/grpc+")) return "grpc";
  if (type.startsWith("application/grpc-web")) return "grpc-web";
  if (type.startsWith("application/connect+")) return "connect-stream";
  const shaped = METHOD_PATH.test(path);
  if (req.method === "POST" && (type === "application/proto" || type === "application/json")) {
    if (shaped || header(req, "connect-protocol-version") !== undefined) return "connect";
  }
  if (req.method === "GET" && shaped) {
    const query = new URLSearchParams((req.url ?? "").split("?", 2)[1] ?? "");
    if (query.get("connect") === "v1" || (query.has("encoding") && query.has("message"))) return "connect";
  }
  return undefined;
}

/** Why `path` is no method, saying how to fix a server URL that carries a path. */
function unknownMethod(path: string, methods: ReadonlyMap<string, UniversalHandler>): ConnectError {
  for (const known of methods.keys()) {
    if (path.endsWith(known) && path.length > known.length) {
      const prefix = path.slice(0, -known.length);
      return new ConnectError(
        `${path} is not an RPC method: the server's methods are at the root, not under ${prefix}; remove the path from the server URL`,
        Code.Unimplemented,
      );
    }
  }
  return new ConnectError(`${path} is not an RPC method of this server`, Code.Unimplemented);
}

/** Answers `err` in the protocol's own form; the request body is discarded unread. */
function refuse(req: HttpRequest, res: HttpResponse, protocol: RpcProtocol, err: ConnectError): void {
  afterBody(req, () => answer(req, res, protocol, err));
}

/** How long a refused request's body is read and discarded before the answer goes out anyway. */
const DISCARD_GRACE_MS = 5000;

/**
 * Runs `then` once the request body has been read and discarded: an HTTP/2 answer that ends the
 * stream while the client is still sending was sometimes lost (curl saw nothing at all), and an
 * HTTP/1.1 one can be reset by the unread data. A body still arriving after
 * {@link DISCARD_GRACE_MS} gets the answer anyway, and is cut off after as long again.
 */
function afterBody(req: HttpRequest, then: () => void): void {
  if (req.complete) {
    then();
    return;
  }
  const cut = () => {
    if (req.complete) return;
    if ("stream" in req) req.stream.destroy();
    else req.socket.destroy();
  };
  const done = () => {
    clearTimeout(timer);
    req.off("end", done);
    then();
    if (!req.complete) setTimeout(cut, DISCARD_GRACE_MS).unref();
  };
  const timer = setTimeout(done, DISCARD_GRACE_MS);
  timer.unref();
  req.once("end", done);
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

/** Writes `err` as the protocol's answer. */
function answer(req: HttpRequest, res: HttpResponse, protocol: RpcProtocol, err: ConnectError): void {
  if (res.headersSent || res.writableEnded) return;
  const type = header(req, "content-type") ?? "";
  res.setHeader(ERROR_CODE_HEADER, "ERR_UNKNOWN_METHOD");
  switch (protocol) {
    case "connect": {
      // 404, not the 501 of an unimplemented method: no such path (Connect clients read both as
      // unimplemented, and the body says so).
      const body = errorToJsonBytes(err, undefined);
      res.writeHead(404, {
        "content-type": "application/json",
        "content-length": String(body.byteLength),
      });
      res.end(body);
      return;
    }
    case "connect-stream": {
      const json = JSON.stringify(endStreamToJson(new Headers(), err, undefined));
      const body = encodeEnvelope(endStreamFlag, new TextEncoder().encode(json));
      res.writeHead(200, { "content-type": type, "content-length": String(body.byteLength) });
      res.end(body);
      return;
    }
    case "grpc":
    case "grpc-web": {
      // A "trailers-only" answer: the status in the headers of an empty response.
      const status: Record<string, string> = {};
      setTrailerStatus(new Headers(), err).forEach((v, k) => {
        status[k] = v;
      });
      res.writeHead(200, { "content-type": type, ...status });
      res.end();
      return;
    }
  }
}

/** Is this connect-node's error for a request body that is not valid protobuf binary? */
function isParseFailure(err: ConnectError | undefined): err is ConnectError {
  return err !== undefined && err.code === Code.Internal && err.rawMessage.startsWith("parse binary: ");
}

function invalidBody(err: ConnectError, handler: UniversalHandler): ConnectError {
  const why = err.rawMessage.slice("parse binary: ".length);
  return new ConnectError(
    `request is not a valid ${handler.method.input.typeName} message (${why})`,
    Code.InvalidArgument,
  );
}

/**
 * The response with connect-node's `internal` "parse binary" error (whatever the protocol carries
 * it in: a Connect error body, a Connect end-stream message, gRPC trailers, a gRPC-Web trailer
 * frame) turned into `invalid_argument`. Other responses pass through untouched; only a unary
 * Connect error body is read before it is sent (it is small).
 */
function parseFailureAsInvalid(
  uRes: UniversalServerResponse,
  handler: UniversalHandler,
): UniversalServerResponse {
  const body = uRes.body;
  if (body === undefined) return uRes;
  const type = uRes.header?.get("content-type") ?? "";
  if (uRes.status === 500 && type.startsWith("application/json")) {
    // Connect unary: the whole answer is one JSON error.
    const out: UniversalServerResponse = { ...uRes };
    out.body = rewriteUnaryError(out, body, handler);
    return out;
  }
  return {
    ...uRes,
    body: (async function* () {
      for await (const chunk of body) yield rewriteLastFrame(chunk, handler);
      // gRPC: the status travels in trailers, complete once the body has ended.
      const trailer = uRes.trailer;
      if (trailer && isParseFailure(findTrailerError(trailer))) {
        const err = invalidBody(findTrailerError(trailer)!, handler);
        trailer.delete("grpc-status-details-bin");
        setTrailerStatus(trailer, err);
      }
    })(),
  };
}

/** Reads a Connect unary error; a parse failure is corrected, `out`'s status and headers too. */
async function* rewriteUnaryError(
  out: UniversalServerResponse,
  body: AsyncIterable<Uint8Array>,
  handler: UniversalHandler,
): AsyncGenerator<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of body) parts.push(chunk);
  const bytes = Buffer.concat(parts);
  const err = errorFromJsonBytes(bytes, undefined, new ConnectError("", Code.Unknown));
  if (!isParseFailure(err)) {
    yield* createAsyncIterable([bytes]);
    return;
  }
  // Headers go out after the first chunk is read, so they can still be corrected here.
  const fixed = errorToJsonBytes(invalidBody(err, handler), undefined);
  out.status = codeToHttpStatus(Code.InvalidArgument);
  out.header?.set("content-length", String(fixed.byteLength));
  yield fixed;
}

/**
 * A chunk that is exactly one final frame (the adapter writes one frame per chunk): a Connect
 * end-stream message or a gRPC-Web trailer frame, corrected when it carries a parse failure.
 */
function rewriteLastFrame(chunk: Uint8Array, handler: UniversalHandler): Uint8Array {
  if (chunk.byteLength < 5) return chunk;
  const flags = chunk[0]!;
  const length = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).readUInt32BE(1);
  if (length !== chunk.byteLength - 5) return chunk;
  const data = chunk.subarray(5);
  if (flags === trailerFlag) {
    const trailer = trailerParse(data);
    const err = findTrailerError(trailer);
    if (!isParseFailure(err)) return chunk;
    trailer.delete("grpc-status-details-bin");
    return encodeEnvelope(
      trailerFlag,
      trailerSerialize(setTrailerStatus(trailer, invalidBody(err, handler))),
    );
  }
  if (flags === endStreamFlag) {
    const end = endStreamFromJson(data);
    if (!isParseFailure(end.error)) return chunk;
    const json = JSON.stringify(endStreamToJson(end.metadata, invalidBody(end.error, handler), undefined));
    return encodeEnvelope(endStreamFlag, new TextEncoder().encode(json));
  }
  return chunk;
}
