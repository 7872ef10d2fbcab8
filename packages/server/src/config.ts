import { resolve } from "node:path";
import { SETTINGS } from "./settings.js";

/**
 * Options of {@link startServer}; every field is optional. Defaults and checks come from the
 * settings table (settings.ts), shared with `cacheroach start`'s flags and config file.
 */
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
  /** Chunk batches one upload writes at once; default 4. */
  chunkWriteConcurrency?: number;
  /** How long an upload state stays valid; default 24 h. */
  uploadTtlSeconds?: number;
  /** Physical bytes a tenant without a quota of its own may store; default 0 (unlimited). */
  defaultQuotaBytes?: number;
  /** Open uploads per principal per tenant without a limit of its own; default 100 (0: unlimited). */
  maxOpenUploads?: number;
  /** Deleted or superseded versions per path garbage collection keeps (tenant default); default 0. */
  retainVersions?: number;
  /** Seconds garbage collection keeps a deleted or superseded version (tenant default); default 7 days. */
  retainSeconds?: number;
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
  /** host:port of a separate listener for /metrics; default none (/metrics on the main port). */
  metricsBind?: string;
  /**
   * How long the running server's `close()` lets requests in flight finish before it cuts them;
   * default 30 s. 0 cuts them at once.
   */
  gracePeriodMs?: number;
  /** How often garbage collection runs; 0: only on demand. Default 1 h. */
  gcIntervalMs?: number;
  /**
   * Garbage collection's safety margin before a condemned chunk may be deleted (default 10 s;
   * see lifecycle/gc.ts). Not a setting: tests shorten it.
   */
  gcMarginMs?: number;
  /** How often the server scrubs every tenant, in ms; 0 (default) = never. */
  scrubIntervalMs?: number;
  /** Bytes per second a scrub reads at most; default 32 MiB; 0 = no limit. */
  scrubBytesPerSecond?: number;
  /** PEM certificate chain and key files: serve HTTPS (reloaded by RunningServer.reloadTls). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Serve HTTPS with a self-signed certificate kept in dataDir (development). */
  tlsSelfSigned?: boolean;
  /** Every request counts as HTTPS (behind a TLS proxy): Secure cookies, https URLs; default false. */
  assumeSecure?: boolean;
  /** OpenID Connect issuer URL: OIDC logins are on when it is set (with the three below). */
  oidcIssuer?: string;
  /** OAuth client ID at the issuer. */
  oidcClientId?: string;
  /** OAuth client secret, or "@file" to read it (trimmed) from a file at start. */
  oidcClientSecret?: string;
  /** Email domains whose verified users may log in with OIDC. */
  oidcDomains?: readonly string[];
  /** How long other instances accept an OIDC principal while one refreshes it; default 5 min. */
  oidcRefreshGraceMs?: number;
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
  readonly chunkWriteConcurrency: number;
  readonly uploadTtlSeconds: number;
  readonly sessionCacheMs: number;
  /** Server defaults of the per-tenant storage policy (a tenant's own values override them). */
  readonly defaultQuotaBytes: number;
  readonly maxOpenUploads: number;
  readonly retainVersions: number;
  readonly retainSeconds: number;
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
  /** Where /metrics is served apart from the main port, or undefined (on the main port). */
  readonly metricsBind: { host: string; port: number } | undefined;
  /** How long close() lets requests in flight finish, in ms. */
  readonly gracePeriodMs: number;
  /** How often garbage collection runs, in ms (0: only on demand). */
  readonly gcIntervalMs: number;
  /** Garbage collection's safety margin, in ms. */
  readonly gcMarginMs: number;
  /** How often the server scrubs every tenant, in ms; 0 = never. */
  readonly scrubIntervalMs: number;
  /** Bytes per second a scrub reads at most; 0 = no limit. */
  readonly scrubBytesPerSecond: number;
  /** How the port speaks TLS, or undefined (cleartext HTTP/1.1 and h2c). */
  readonly tls:
    | { readonly certFile: string; readonly keyFile: string }
    | { readonly selfSigned: true }
    | undefined;
  /** Every request counts as HTTPS (a TLS proxy in front). */
  readonly assumeSecure: boolean;
  /** OIDC logins, or undefined when they are off. */
  readonly oidc: OidcSettings | undefined;
  /** The refresh grace window (ms). */
  readonly oidcRefreshGraceMs: number;
}

/** OIDC provider settings (validated; the secret may still be "@file"). */
export interface OidcSettings {
  readonly issuer: URL;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Lower-cased email domains allowed to log in. */
  readonly domains: ReadonlySet<string>;
}

/** A configuration value is invalid; the message names it. */
/** Garbage collection's default safety margin (lifecycle/gc.ts explains it). */
export const DEFAULT_GC_MARGIN_MS = 10_000;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Validates options and fills defaults from the settings table (the same schema checks a flag,
 * an environment variable or a config file goes through). Throws ConfigError naming the setting.
 */
export function resolveConfig(o: ServerOptions): ServerConfig {
  const v = (key: string) => optionValue(o, key);
  const { host, port } = parseBind(v("bind") as string, "bind");
  const metricsBind = v("metrics-bind") as string | undefined;
  for (const k of o.signingKeys ?? [])
    if (k.length < 32) throw new ConfigError("signing keys must be at least 32 bytes");
  const chunkSize = v("chunk-size") as number;
  const publicUrl = v("public-url") as string | undefined;
  return {
    host,
    port,
    databaseUrl: v("connect") as string | undefined,
    dataDir: resolve(v("data-dir") as string),
    signingKeys: o.signingKeys?.length ? o.signingKeys : undefined,
    chunkSize,
    // Eight chunks per Transfer keeps round trips few while a message stays well under limits.
    maxTransferSize: chunkSize * 8,
    logLevel: v("log-level") as string,
    cacheBytes: v("cache-size") as number,
    chunkWriteConcurrency: v("chunk-write-concurrency") as number,
    uploadTtlSeconds: v("upload-ttl") as number,
    sessionCacheMs: v("session-cache") as number,
    defaultQuotaBytes: v("default-quota") as number,
    maxOpenUploads: v("max-open-uploads") as number,
    retainVersions: v("retain-versions") as number,
    retainSeconds: v("retain") as number,
    maxConnections: v("max-connections") as number,
    maxPutBytes: v("max-put-size") as number,
    maxSignedUrlSeconds: v("max-signed-url-validity") as number,
    vhostRefreshMs: v("vhost-refresh") as number,
    fetchMaxBytes: v("fetch-max-size") as number,
    fetchTimeoutMs: v("fetch-timeout") as number,
    fetchAllowPrivate: v("fetch-allow-private") as boolean,
    publicUrl: publicUrl === undefined || publicUrl === "" ? undefined : parsePublicUrl(publicUrl),
    activeContentHosts: new Set((v("active-content-hosts") as string[]).map(parseHostName)),
    metricsBind: metricsBind === undefined ? undefined : parseBind(metricsBind, "metrics-bind"),
    gracePeriodMs: v("grace-period") as number,
    gcIntervalMs: v("gc-interval") as number,
    gcMarginMs: o.gcMarginMs ?? DEFAULT_GC_MARGIN_MS,
    scrubIntervalMs: v("scrub-interval") as number,
    scrubBytesPerSecond: v("scrub-rate") as number,
    tls: tlsMode(
      v("tls-cert") as string | undefined,
      v("tls-key") as string | undefined,
      v("tls-self-signed") as boolean,
    ),
    assumeSecure: v("assume-secure") as boolean,
    oidc: oidcSettings(
      v("oidc-issuer") as string | undefined,
      v("oidc-client-id") as string | undefined,
      v("oidc-client-secret") as string | undefined,
      v("oidc-domains") as string[],
    ),
    oidcRefreshGraceMs: v("oidc-refresh-grace") as number,
  };
}

/** All four OIDC settings or none; domains lower-cased and checked. */
function oidcSettings(
  issuer: string | undefined,
  clientId: string | undefined,
  clientSecret: string | undefined,
  domains: string[],
): OidcSettings | undefined {
  const given = { "oidc-issuer": issuer, "oidc-client-id": clientId, "oidc-client-secret": clientSecret };
  const present = Object.entries(given).filter(([, x]) => x !== undefined && x !== "");
  if (present.length === 0 && domains.length === 0) return undefined;
  const missing = [
    ...Object.entries(given)
      .filter(([, x]) => x === undefined || x === "")
      .map(([k]) => k),
    ...(domains.length === 0 ? ["oidc-domains"] : []),
  ];
  if (missing.length > 0)
    throw new ConfigError(
      `OIDC needs --oidc-issuer, --oidc-client-id, --oidc-client-secret and --oidc-domains together: ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing`,
    );
  let url: URL;
  try {
    url = new URL(issuer as string);
  } catch {
    throw new ConfigError(`oidc-issuer ${JSON.stringify(issuer)} is not an absolute URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new ConfigError(`oidc-issuer ${JSON.stringify(issuer)} must be an https:// URL`);
  const set = new Set<string>();
  for (const d of domains) {
    const h = d.trim().toLowerCase().replace(/^@/, "");
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.test(h))
      throw new ConfigError(`oidc-domains: ${JSON.stringify(d)} is not an email domain (e.g. example.com)`);
    set.add(h);
  }
  return { issuer: url, clientId: clientId as string, clientSecret: clientSecret as string, domains: set };
}

/**
 * One option's value in the option's own unit, validated by its setting's schema, or the
 * setting's default.
 */
function optionValue(o: ServerOptions, key: string): unknown {
  const s = SETTING[key];
  if (s?.option === undefined) throw new Error(`no setting ${key}`);
  const given = (o as Record<string, unknown>)[s.option];
  const seconds = s.kind === "duration" && s.unit === "s";
  if (given === undefined) return seconds ? (s.default as number) / 1000 : s.default;
  const r = s.schema.safeParse(seconds && typeof given === "number" ? given * 1000 : given);
  if (!r.success) {
    const shown = s.kind === "size" || s.kind === "duration" ? String(given) : JSON.stringify(given);
    throw new ConfigError(`${s.key} ${shown} ${r.error.issues[0]?.message ?? "is invalid"}`);
  }
  return given;
}

const SETTING = Object.fromEntries(SETTINGS.map((s) => [s.key, s]));

function tlsMode(
  cert: string | undefined,
  key: string | undefined,
  selfSigned: boolean,
): ServerConfig["tls"] {
  if (selfSigned) {
    if (cert !== undefined || key !== undefined)
      throw new ConfigError("tls-self-signed cannot be combined with tls-cert/tls-key");
    return { selfSigned: true };
  }
  if ((cert === undefined) !== (key === undefined))
    throw new ConfigError(
      `${cert === undefined ? "tls-key needs tls-cert" : "tls-cert needs tls-key"}: give both files`,
    );
  return cert !== undefined && key !== undefined
    ? { certFile: resolve(cert), keyFile: resolve(key) }
    : undefined;
}

/** host:port (validated by the settings schema) → its parts; an empty host means all interfaces. */
function parseBind(bind: string, key: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(bind) as RegExpExecArray;
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${key} port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
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
