import { resolve } from "node:path";
import { DEFAULT_CHUNK_SIZE } from "@cacheroach/core";
import { MIN_CONNECTIONS } from "./db/db.js";
import { LOG_LEVELS } from "./logger.js";

/** Options of {@link startServer}; every field is optional and validated once here. */
export interface ServerOptions {
  /** host:port the server binds (default "127.0.0.1:13013"); port 0 picks a free port. */
  bind?: string;
  /** postgres:// URL of an external PostgreSQL or CockroachDB; absent = embedded PostgreSQL in dataDir. */
  databaseUrl?: string;
  /** Directory for the embedded database and the generated signing key; default ".cacheroach-data". */
  dataDir?: string;
  /** HMAC signing keys (≥ 32 bytes each), first signs; default: generated and kept in dataDir. */
  signingKeys?: Uint8Array[];
  /** Chunk size of new uploads in bytes, 64 KiB..4 MiB; default 512 KiB. */
  chunkSize?: number;
  /** Log level: silent, fatal, error, warn, info, debug, trace; default "info". */
  logLevel?: string;
  /** Bytes of chunk data cached in memory; default 256 MiB. */
  cacheBytes?: number;
  /** How long an upload state stays valid; default 24 h. */
  uploadTtlSeconds?: number;
  /** How long session validity is cached (the revocation delay); default 5 s. */
  sessionCacheMs?: number;
  /** Database connections this server may hold in all, at least 2; default 20. */
  maxConnections?: number;
  /** Largest plain-HTTP PUT/POST body in bytes (413 beyond it); default 64 GiB. */
  maxPutBytes?: number;
  /** Longest validity of a signed URL in seconds; default 7 days. */
  maxSignedUrlSeconds?: number;
  /** How often the vhost map is reloaded; default 5 s. */
  vhostRefreshMs?: number;
  /** Largest body Uploads.Fetch stores; default 1 GiB. */
  fetchMaxBytes?: number;
  /** Deadline of one Uploads.Fetch; default 5 minutes. */
  fetchTimeoutMs?: number;
  /** Let Uploads.Fetch reach loopback/private/link-local addresses; default false (SSRF guard). */
  fetchAllowPrivate?: boolean;
  /**
   * The URL clients reach this server at (e.g. "https://files.example.com" behind a TLS proxy):
   * absolute http(s), no path, query or credentials. Used for the `server` of /_/v0/config, as
   * an own origin for same-origin checks, and (https) to mark cookies Secure. Default: none (the
   * request's Host when it names this server, else the bind address).
   */
  publicUrl?: string;
  /**
   * Host names whose HTML, SVG, XML and script files are shown inline (in a sandbox whose
   * scripts run in an opaque origin) rather than downloaded; default none.
   */
  activeContentHosts?: readonly string[];
}

/** Validated server configuration. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly signingKeys: Uint8Array[] | undefined;
  readonly chunkSize: number;
  readonly maxTransferSize: number;
  readonly logLevel: string;
  readonly cacheBytes: number;
  readonly uploadTtlSeconds: number;
  readonly sessionCacheMs: number;
  readonly maxConnections: number;
  readonly maxPutBytes: number;
  readonly maxSignedUrlSeconds: number;
  readonly vhostRefreshMs: number;
  readonly fetchMaxBytes: number;
  readonly fetchTimeoutMs: number;
  readonly fetchAllowPrivate: boolean;
  /** Validated public URL (origin only), or undefined. */
  readonly publicUrl: URL | undefined;
  /** Lower-cased host names (no port) allowed to serve active content inline. */
  readonly activeContentHosts: ReadonlySet<string>;
}

/** A configuration value is invalid; the message names it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Validates options and fills defaults. Throws ConfigError naming the bad setting. */
export function resolveConfig(o: ServerOptions): ServerConfig {
  const bind = o.bind ?? "127.0.0.1:13013";
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(bind);
  if (!m)
    throw new ConfigError(`bind ${JSON.stringify(bind)} must be host:port (e.g. 127.0.0.1:13013 or :13013)`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`bind port ${port} is out of range`);
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 64 * 1024 || chunkSize > 4 * 1024 * 1024) {
    throw new ConfigError(`chunk size ${chunkSize} must be an integer from 65536 to 4194304 bytes`);
  }
  const logLevel = o.logLevel ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`log level ${JSON.stringify(logLevel)} must be one of ${LOG_LEVELS.join(", ")}`);
  }
  if (o.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(o.databaseUrl)) {
    throw new ConfigError("database URL must start with postgres:// or postgresql://");
  }
  for (const k of o.signingKeys ?? [])
    if (k.length < 32) throw new ConfigError("signing keys must be at least 32 bytes");
  return {
    host: m[1] ?? (m[2] || "0.0.0.0"),
    port,
    databaseUrl: o.databaseUrl,
    dataDir: resolve(o.dataDir ?? ".cacheroach-data"),
    signingKeys: o.signingKeys?.length ? o.signingKeys : undefined,
    chunkSize,
    // Eight chunks per Transfer keeps round trips few while a message stays well under limits.
    maxTransferSize: chunkSize * 8,
    logLevel,
    cacheBytes: o.cacheBytes ?? 256 * 1024 * 1024,
    uploadTtlSeconds: o.uploadTtlSeconds ?? 24 * 3600,
    sessionCacheMs: o.sessionCacheMs ?? 5000,
    maxConnections: connections(o.maxConnections ?? 20),
    maxPutBytes: positive(o.maxPutBytes ?? 64 * 1024 ** 3, "max PUT bytes"),
    maxSignedUrlSeconds: positive(o.maxSignedUrlSeconds ?? 7 * 24 * 3600, "max signed-URL seconds"),
    vhostRefreshMs: positive(o.vhostRefreshMs ?? 5000, "vhost refresh interval"),
    fetchMaxBytes: positive(o.fetchMaxBytes ?? 1024 ** 3, "fetch max bytes"),
    fetchTimeoutMs: positive(o.fetchTimeoutMs ?? 300_000, "fetch timeout"),
    fetchAllowPrivate: o.fetchAllowPrivate ?? false,
    publicUrl: o.publicUrl === undefined || o.publicUrl === "" ? undefined : parsePublicUrl(o.publicUrl),
    activeContentHosts: new Set((o.activeContentHosts ?? []).map(parseHostName)),
  };
}

/** An absolute http(s) URL naming only an origin; throws ConfigError saying what is wrong. */
export function parsePublicUrl(value: string): URL {
  const bad = (why: string) => new ConfigError(`public URL ${JSON.stringify(value)} ${why}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad("is not an absolute URL (e.g. https://files.example.com)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw bad("must start with http:// or https://");
  if (url.username || url.password) throw bad("must not contain credentials");
  if (url.pathname !== "/" || url.search || url.hash || /[?#]/.test(value))
    throw bad("must not have a path, query or fragment");
  return new URL(url.origin);
}

/** A host name of the active-content allow-list: a DNS name or IP literal, lower-cased, no port. */
function parseHostName(value: string): string {
  const h = value.trim().toLowerCase();
  if (
    !/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/.test(
      h,
    )
  ) {
    throw new ConfigError(
      `active-content host ${JSON.stringify(value)} must be a host name without port or scheme (e.g. site.example.com)`,
    );
  }
  return h;
}

function connections(n: number): number {
  if (!Number.isInteger(n) || n < MIN_CONNECTIONS || n > 10_000) {
    throw new ConfigError(`max connections must be an integer from ${MIN_CONNECTIONS} to 10000, not ${n}`);
  }
  return n;
}

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${what} must be a positive number, not ${n}`);
  return n;
}
