/**
 * Connect transports for the CLI: binary protobuf, no compression (gzip costs far more CPU than it
 * saves on chunk data), and large HTTP/2 flow-control windows when HTTP/2 is used.
 */
import * as http from "node:http";
import type * as http2 from "node:http2";
import * as https from "node:https";
import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";

/** The transports the CLI can use. */
export const TRANSPORT_KINDS = ["connect-h1", "connect-h2", "grpc", "grpc-web-h1", "grpc-web-h2"] as const;
export type TransportKind = (typeof TRANSPORT_KINDS)[number];

/** The default transport (chosen by measurement; see docs/benchmarks.md). */
export const DEFAULT_TRANSPORT: TransportKind = "connect-h1";

/** Environment variable that overrides the transport (for benchmarks and troubleshooting). */
export const TRANSPORT_ENV = "CACHEROACH_TRANSPORT";

/** Picks the transport kind from the environment, else the default. */
export function transportKindFromEnv(): TransportKind {
  const v = process.env[TRANSPORT_ENV];
  if (!v) return DEFAULT_TRANSPORT;
  if ((TRANSPORT_KINDS as readonly string[]).includes(v)) return v as TransportKind;
  throw new Error(`${TRANSPORT_ENV}=${v} is not one of ${TRANSPORT_KINDS.join(", ")}`);
}

const STREAM_WINDOW = 16 << 20;
const SESSION_WINDOW = 64 << 20;

/**
 * An HTTP/2 session manager that also raises the connection-level receive window (node's
 * `settings.initialWindowSize` only sets the per-stream one; the connection stays at 64 KiB).
 */
export class BigWindowSessionManager extends Http2SessionManager {
  private readonly tuned = new WeakSet<http2.ClientHttp2Session>();

  constructor(url: string) {
    super(url, { idleConnectionTimeoutMs: 5_000 }, { settings: { initialWindowSize: STREAM_WINDOW } });
  }

  override async request(...a: Parameters<Http2SessionManager["request"]>): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(...a);
    const session = stream.session as http2.ClientHttp2Session | undefined;
    if (session && !this.tuned.has(session)) {
      this.tuned.add(session);
      session.setLocalWindowSize(SESSION_WINDOW);
    }
    return stream;
  }
}

/** A transport and how to release its connections. */
export interface ClientTransport {
  kind: TransportKind;
  transport: Transport;
  /** Closes pooled connections so the process can exit promptly. */
  close(): void;
}

/** Creates a transport of the given kind to `baseUrl`. */
export function makeTransport(
  baseUrl: string,
  kind: TransportKind = DEFAULT_TRANSPORT,
  interceptors: Interceptor[] = [],
): ClientTransport {
  const common = {
    baseUrl,
    useBinaryFormat: true,
    acceptCompression: [],
    interceptors,
  };
  if (kind === "connect-h1" || kind === "grpc-web-h1") {
    const agent = baseUrl.startsWith("https:")
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
    const opts = { ...common, httpVersion: "1.1" as const, nodeOptions: { agent } };
    const transport = kind === "connect-h1" ? createConnectTransport(opts) : createGrpcWebTransport(opts);
    return { kind, transport, close: () => agent.destroy() };
  }
  const sessionManager = new BigWindowSessionManager(baseUrl);
  const opts = { ...common, httpVersion: "2" as const, sessionManager };
  const transport =
    kind === "grpc"
      ? createGrpcTransport({ ...common, sessionManager })
      : kind === "connect-h2"
        ? createConnectTransport(opts)
        : createGrpcWebTransport(opts);
  return { kind, transport, close: () => sessionManager.abort() };
}
