/**
 * Every server setting, once: its flag name (also its config-file key), environment variable,
 * type, default and help. `cacheroach start` builds its flags from this table, a config file is
 * read against it, and {@link resolveSettings} merges the sources (flag > environment > file >
 * default) and validates each value with the setting's schema, naming the source of a bad one.
 * Loaded by the CLI at start-up, so it imports only the schema library and util/errno.ts (no
 * imports of its own), never the rest of the server.
 */
import { z } from "zod";
import { errnoOf } from "./util/errno.js";

/** Where a value came from, in precedence order. */
export type SettingSource = "flag" | "env" | "file" | "default";

type Kind = "string" | "integer" | "size" | "duration" | "boolean" | "list" | "enum";

/** One setting. `option` is the ServerOptions field it fills (none: the CLI consumes it). */
export interface Setting {
  readonly key: string;
  readonly env: string;
  readonly kind: Kind;
  readonly option?: string;
  /** For durations: the unit of the option's number. */
  readonly unit?: "s" | "ms";
  /** Validates the typed value (ranges, formats). */
  readonly schema: z.ZodType;
  readonly default?: unknown;
  readonly summary: string;
  readonly description?: string;
  readonly helpValue?: string;
  readonly options?: readonly string[];
  /** Shown redacted by --print-config. */
  readonly secret?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const LOG_LEVELS = ["silent", "fatal", "error", "warn", "info", "debug", "trace"] as const;

const bytes = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number()
    .int()
    .min(min, `must be at least ${formatSize(min)}`)
    .max(max, `must be at most ${formatSize(max)}`);
const duration = (min: number, max: number) =>
  z
    .number()
    .int()
    .min(min, `must be at least ${formatDuration(min)}`)
    .max(max, `must be at most ${formatDuration(max)}`);

function setting(s: Setting): Setting {
  return s;
}

/** The table; the order is the order of `start --help` and `--print-config`. */
export const SETTINGS: readonly Setting[] = [
  setting({
    key: "bind",
    env: "CACHEROACH_BIND",
    kind: "string",
    option: "bind",
    schema: z
      .string()
      .regex(/^(?:\[[^\]]+\]|[^:]*):\d{1,5}$/, "must be host:port (e.g. 127.0.0.1:13013 or :13013)"),
    default: "127.0.0.1:13013",
    summary: "Address to listen on (host:port).",
    helpValue: "<host:port>",
  }),
  setting({
    key: "connect",
    env: "CACHEROACH_CONNECT",
    kind: "string",
    option: "databaseUrl",
    schema: z.string().regex(/^postgres(ql)?:\/\//, "must start with postgres:// or postgresql://"),
    summary: "PostgreSQL or CockroachDB URL. Without it, an embedded PostgreSQL runs in the data dir.",
    helpValue: "<postgres://…>",
    secret: true,
  }),
  setting({
    key: "data-dir",
    env: "CACHEROACH_DATA_DIR",
    kind: "string",
    option: "dataDir",
    schema: z.string().min(1, "must not be empty"),
    default: ".cacheroach-data",
    summary: "Directory for the embedded database and the generated signing key.",
    helpValue: "<dir>",
  }),
  setting({
    key: "signing-key",
    env: "CACHEROACH_SIGNING_KEY",
    kind: "list",
    schema: z.array(z.string().min(1)),
    summary: "HMAC signing key, base64 or @file (repeatable; the first one signs).",
    description:
      "In the environment and a config file: a comma-separated list or (file) a YAML list. Without any, a key is generated on first start and kept in the data directory.",
    helpValue: "<base64|@file>",
    secret: true,
  }),
  setting({
    key: "chunk-size",
    env: "CACHEROACH_CHUNK_SIZE",
    kind: "size",
    option: "chunkSize",
    schema: bytes(64 * KiB, 4 * MiB),
    default: 512 * KiB,
    summary: "Chunk size of new content, 64KiB..4MiB.",
    helpValue: "<size>",
  }),
  setting({
    key: "max-connections",
    env: "CACHEROACH_MAX_CONNECTIONS",
    kind: "integer",
    option: "maxConnections",
    schema: z.number().int().min(2, "must be at least 2").max(10_000, "must be at most 10000"),
    default: 20,
    summary: "Database connections this server may hold in all.",
    description:
      "One serves the readiness probe (/readyz); with PostgreSQL a third of the rest (2..8) serve bulk chunk writes and the others everything else. The server never holds more.",
    helpValue: "<n>",
  }),
  setting({
    key: "chunk-write-concurrency",
    env: "CACHEROACH_CHUNK_WRITE_CONCURRENCY",
    kind: "integer",
    option: "chunkWriteConcurrency",
    schema: z.number().int().min(1, "must be at least 1").max(64, "must be at most 64"),
    default: 4,
    summary: "Chunk batches one upload writes to the database at once.",
    helpValue: "<n>",
  }),
  setting({
    key: "cache-size",
    env: "CACHEROACH_CACHE_SIZE",
    kind: "size",
    option: "cacheBytes",
    schema: bytes(0, 1024 * GiB),
    default: 256 * MiB,
    summary: "Memory for cached chunk data (0 turns the cache off).",
    helpValue: "<size>",
  }),
  setting({
    key: "max-put-size",
    env: "CACHEROACH_MAX_PUT_SIZE",
    kind: "size",
    option: "maxPutBytes",
    schema: bytes(1),
    default: 64 * GiB,
    summary: "Largest plain-HTTP PUT/POST body (413 beyond it).",
    helpValue: "<size>",
  }),
  setting({
    key: "upload-ttl",
    env: "CACHEROACH_UPLOAD_TTL",
    kind: "duration",
    unit: "s",
    option: "uploadTtlSeconds",
    schema: duration(1000, 365 * 24 * 3600_000),
    default: 24 * 3600_000,
    summary: "How long an upload may take from Begin to Commit.",
    helpValue: "<duration>",
  }),
  setting({
    key: "default-quota",
    env: "CACHEROACH_DEFAULT_QUOTA",
    kind: "size",
    option: "defaultQuotaBytes",
    schema: bytes(0),
    default: 0,
    summary: "Physical bytes a tenant may store unless it has a quota of its own (0: unlimited).",
    description:
      "A write that would store new chunks beyond the quota is refused (resource_exhausted, HTTP 507) and writes nothing; writes of content the tenant already stores are always allowed. Set a tenant's own quota with `cacheroach tenant set TENANT --quota SIZE`.",
    helpValue: "<size>",
  }),
  setting({
    key: "max-open-uploads",
    env: "CACHEROACH_MAX_OPEN_UPLOADS",
    kind: "integer",
    option: "maxOpenUploads",
    schema: z.number().int().min(0, "must be at least 0").max(1_000_000, "must be at most 1000000"),
    default: 100,
    summary:
      "Uploads one principal may have open (begun, not committed, not expired) in a tenant (0: unlimited).",
    description:
      "Beginning one more is refused (resource_exhausted, HTTP 507). A tenant's own limit (`cacheroach tenant set TENANT --max-open-uploads N`) overrides it.",
    helpValue: "<n>",
  }),
  setting({
    key: "retain-versions",
    env: "CACHEROACH_RETAIN_VERSIONS",
    kind: "integer",
    option: "retainVersions",
    schema: z.number().int().min(0, "must be at least 0").max(1_000_000, "must be at most 1000000"),
    default: 0,
    summary: "Deleted or superseded versions of each path garbage collection keeps, whatever their age.",
    description: "A tenant's own value (`cacheroach tenant set TENANT --retain-versions N`) overrides it.",
    helpValue: "<n>",
  }),
  setting({
    key: "retain",
    env: "CACHEROACH_RETAIN",
    kind: "duration",
    unit: "s",
    option: "retainSeconds",
    schema: duration(0, 100 * 365 * 24 * 3600_000),
    default: 7 * 24 * 3600_000,
    summary: "How long garbage collection keeps a deleted or superseded version.",
    description: "A tenant's own value (`cacheroach tenant set TENANT --retain DURATION`) overrides it.",
    helpValue: "<duration>",
  }),
  setting({
    key: "gc-interval",
    env: "CACHEROACH_GC_INTERVAL",
    kind: "duration",
    unit: "ms",
    option: "gcIntervalMs",
    schema: duration(0, 365 * 24 * 3600_000),
    default: 3600_000,
    summary:
      "How often garbage collection runs (dead versions past retention, expired uploads, unreferenced contents); 0 turns the schedule off (`cacheroach gc` still runs it).",
    helpValue: "<duration>",
  }),
  setting({
    key: "session-cache",
    env: "CACHEROACH_SESSION_CACHE",
    kind: "duration",
    unit: "ms",
    option: "sessionCacheMs",
    schema: duration(1, 3600_000),
    default: 5000,
    summary: "How long a session's validity is cached: the longest a revocation takes to apply.",
    helpValue: "<duration>",
  }),
  setting({
    key: "max-signed-url-validity",
    env: "CACHEROACH_MAX_SIGNED_URL_VALIDITY",
    kind: "duration",
    unit: "s",
    option: "maxSignedUrlSeconds",
    schema: duration(1000, 10 * 365 * 24 * 3600_000),
    default: 7 * 24 * 3600_000,
    summary: "Longest validity of a signed URL.",
    helpValue: "<duration>",
  }),
  setting({
    key: "vhost-refresh",
    env: "CACHEROACH_VHOST_REFRESH",
    kind: "duration",
    unit: "ms",
    option: "vhostRefreshMs",
    schema: duration(1, 3600_000),
    default: 5000,
    summary: "How often the virtual-host map is reloaded from the database.",
    helpValue: "<duration>",
  }),
  setting({
    key: "fetch-max-size",
    env: "CACHEROACH_FETCH_MAX_SIZE",
    kind: "size",
    option: "fetchMaxBytes",
    schema: bytes(1),
    default: GiB,
    summary: "Largest body a server-side fetch (file fetch) stores.",
    helpValue: "<size>",
  }),
  setting({
    key: "fetch-timeout",
    env: "CACHEROACH_FETCH_TIMEOUT",
    kind: "duration",
    unit: "ms",
    option: "fetchTimeoutMs",
    schema: duration(1, 24 * 3600_000),
    default: 300_000,
    summary: "Deadline of one server-side fetch.",
    helpValue: "<duration>",
  }),
  setting({
    key: "fetch-allow-private",
    env: "CACHEROACH_FETCH_ALLOW_PRIVATE",
    kind: "boolean",
    option: "fetchAllowPrivate",
    schema: z.boolean(),
    default: false,
    summary:
      "Let server-side fetches (file fetch) reach loopback, private, link-local and other non-public addresses.",
    description:
      "Off by default: a fetch may reach only public unicast addresses, so a caller with the fetch capability cannot reach this server's own network (the cloud metadata service, databases, admin ports). Turn it on only when every holder of the fetch capability may reach that network.",
  }),
  setting({
    key: "public-url",
    env: "CACHEROACH_PUBLIC_URL",
    kind: "string",
    option: "publicUrl",
    schema: z.string(),
    summary: "URL clients reach this server at, e.g. https://files.example.com behind a TLS proxy.",
    description:
      "Absolute http(s) URL without path, query or credentials. Names the server in configs downloaded from /_/v0/config, counts as this server's own origin for same-origin checks, and (https) marks cookies Secure. Without it the request's Host is used only when it is the bind address or a configured vhost; X-Forwarded-* headers are never trusted.",
    helpValue: "<url>",
  }),
  setting({
    key: "active-content-hosts",
    env: "CACHEROACH_ACTIVE_CONTENT_HOSTS",
    kind: "list",
    option: "activeContentHosts",
    schema: z.array(z.string()),
    default: [],
    summary:
      "Hosts (comma-separated) whose HTML, SVG, XML and scripts are shown inline instead of downloaded.",
    description:
      "On these hosts such files are served inline in a sandbox whose scripts run in an opaque origin (they cannot use this server's cookies or API). Elsewhere they are downloads (Content-Disposition: attachment).",
    helpValue: "<host,…>",
  }),
  setting({
    key: "tls-cert",
    env: "CACHEROACH_TLS_CERT",
    kind: "string",
    option: "tlsCertFile",
    schema: z.string().min(1, "must name a file"),
    summary: "PEM certificate chain: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN, gRPC included) on the port.",
    description:
      "Needs --tls-key. Both files are read again on SIGHUP (a renewed certificate takes effect for new connections; a bad pair is refused and the old one kept).",
    helpValue: "<file.pem>",
  }),
  setting({
    key: "tls-key",
    env: "CACHEROACH_TLS_KEY",
    kind: "string",
    option: "tlsKeyFile",
    schema: z.string().min(1, "must name a file"),
    summary: "PEM private key of --tls-cert.",
    helpValue: "<file.pem>",
    secret: true,
  }),
  setting({
    key: "tls-self-signed",
    env: "CACHEROACH_TLS_SELF_SIGNED",
    kind: "boolean",
    option: "tlsSelfSigned",
    schema: z.boolean(),
    default: false,
    summary: "Serve HTTPS with a self-signed certificate kept in the data directory (development only).",
    description:
      "The certificate (tls-self-signed.crt in the data directory) names localhost, 127.0.0.1, ::1 and the bind host, and is reused while valid: trust it with NODE_EXTRA_CA_CERTS=<file> for the CLI or curl --cacert <file>.",
  }),
  setting({
    key: "metrics-bind",
    env: "CACHEROACH_METRICS_BIND",
    kind: "string",
    option: "metricsBind",
    schema: z.string().regex(/^(?:\[[^\]]+\]|[^:]*):\d{1,5}$/, "must be host:port (e.g. 127.0.0.1:9464)"),
    summary: "Serve /metrics on this host:port only, instead of on the main port.",
    description:
      "Prometheus metrics (docs/observability.md). Without it they are served at /metrics on the main port to anyone who reaches it (counts and latencies only: no paths, tenants or tokens).",
    helpValue: "<host:port>",
  }),
  setting({
    key: "assume-secure",
    env: "CACHEROACH_ASSUME_SECURE",
    kind: "boolean",
    option: "assumeSecure",
    schema: z.boolean(),
    default: false,
    summary: "Treat every request as HTTPS: the server is behind a TLS-terminating proxy.",
    description:
      "Cookies are marked Secure, and URLs the server builds from a request (the OIDC redirect URL, the server of a downloaded CLI config) use https. --public-url with https implies it.",
  }),
  setting({
    key: "oidc-issuer",
    env: "CACHEROACH_OIDC_ISSUER",
    kind: "string",
    option: "oidcIssuer",
    schema: z
      .string()
      .regex(/^https?:\/\/\S+$/, "must be the issuer's URL, e.g. https://accounts.google.com"),
    summary: "OpenID Connect issuer URL: turns on browser and `cacheroach auth login` logins (docs/oidc.md).",
    description:
      "Its metadata is discovered at start (<issuer>/.well-known/openid-configuration); a server that cannot reach it does not start. Needs --oidc-client-id, --oidc-client-secret and --oidc-domains. Register <server URL>/_/oidc/receive as the redirect URL at the provider.",
    helpValue: "<url>",
  }),
  setting({
    key: "oidc-client-id",
    env: "CACHEROACH_OIDC_CLIENT_ID",
    kind: "string",
    option: "oidcClientId",
    schema: z.string().min(1, "must not be empty"),
    summary: "OAuth client ID this server has at the OIDC provider.",
    helpValue: "<id>",
  }),
  setting({
    key: "oidc-client-secret",
    env: "CACHEROACH_OIDC_CLIENT_SECRET",
    kind: "string",
    option: "oidcClientSecret",
    schema: z.string().min(1, "must not be empty"),
    summary: "The client's secret at the OIDC provider, or @file to read it from a file.",
    helpValue: "<secret|@file>",
    secret: true,
  }),
  setting({
    key: "oidc-domains",
    env: "CACHEROACH_OIDC_DOMAINS",
    kind: "list",
    option: "oidcDomains",
    schema: z.array(z.string()),
    default: [],
    summary: "Email domains (comma-separated) whose verified users may log in with OIDC.",
    description:
      "A user logs in only when the provider says their email is verified and it ends with @<one of these domains>. Required with --oidc-issuer.",
    helpValue: "<domain,…>",
  }),
  setting({
    key: "oidc-refresh-grace",
    env: "CACHEROACH_OIDC_REFRESH_GRACE",
    kind: "duration",
    unit: "ms",
    option: "oidcRefreshGraceMs",
    schema: duration(1000, 24 * 3600_000),
    default: 300_000,
    summary:
      "How long other instances keep accepting an OIDC user while one re-validates it at the provider.",
    description:
      "When a user's access token has expired, the next request re-validates the user with its refresh token at the provider. One instance does it; the others accept the user until this window ends. If the provider cannot be reached, it is tried again after the window.",
    helpValue: "<duration>",
  }),
  setting({
    key: "grace-period",
    env: "CACHEROACH_GRACE_PERIOD",
    kind: "duration",
    unit: "ms",
    option: "gracePeriodMs",
    schema: duration(0, 24 * 3600_000),
    default: 30_000,
    summary: "How long requests in flight may run on after Ctrl-C or SIGTERM before they are cut.",
    description:
      "The server stops as soon as no request is in flight any more; one still running when the period ends is cut (its client sees the connection or HTTP/2 stream reset). 0s cuts them at once.",
    helpValue: "<duration>",
  }),
  setting({
    key: "scrub-interval",
    env: "CACHEROACH_SCRUB_INTERVAL",
    kind: "duration",
    unit: "ms",
    option: "scrubIntervalMs",
    schema: duration(0, 365 * 24 * 3600_000).refine(
      (v) => v === 0 || v >= 1000,
      "must be 0s (off) or at least 1s",
    ),
    default: 0,
    summary: "How often this server scrubs every tenant (re-hashes all stored data); 0s = never.",
    description:
      "Off by default: a scrub reads every stored byte, and every server with it on scrubs the whole database on its own, so turn it on for one instance (e.g. 24h or 7d). Reads always verify the chunks they serve, and `cacheroach scrub` runs one on demand. The first run starts one interval after start-up.",
    helpValue: "<duration>",
  }),
  setting({
    key: "scrub-rate",
    env: "CACHEROACH_SCRUB_RATE",
    kind: "size",
    option: "scrubBytesPerSecond",
    schema: bytes(0),
    default: 32 * MiB,
    summary:
      "Bytes per second a scrub reads at most (scheduled, and on demand unless it asks for another rate); 0 = no limit.",
    description:
      "Paces the scrub so it does not starve serving: 32MiB a second reads 1 TiB in about 9 hours.",
    helpValue: "<size>",
  }),
  setting({
    key: "log-level",
    env: "CACHEROACH_LOG_LEVEL",
    kind: "enum",
    option: "logLevel",
    options: LOG_LEVELS,
    schema: z.enum(LOG_LEVELS),
    default: "info",
    summary: "How much the server logs (JSON lines on stderr).",
  }),
];

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

/** A setting's value is invalid, or a config file is; the message names the source and key. */
export class SettingsError extends Error {
  override readonly name = "SettingsError";
}

/** Raw values of one source: flags as oclif parsed them (strings, booleans, string arrays). */
export interface SettingSources {
  /** Flag values by setting key; undefined = not given. */
  flags: Readonly<Record<string, unknown>>;
  env: Readonly<Record<string, string | undefined>>;
  /** Parsed config file (a mapping of setting keys), and its path for messages. */
  file?: { path: string; values: Readonly<Record<string, unknown>> };
}

/** The effective value of every setting and where each came from. */
export interface ResolvedSettings {
  readonly values: ReadonlyMap<string, unknown>;
  readonly sources: ReadonlyMap<string, SettingSource>;
}

/** Merges flag > environment > file > default and validates every value. */
export function resolveSettings(src: SettingSources): ResolvedSettings {
  if (src.file) {
    for (const key of Object.keys(src.file.values)) {
      if (!BY_KEY.has(key)) {
        const near = nearest(key);
        throw new SettingsError(
          `${src.file.path}: unknown setting "${key}"${near ? ` (did you mean "${near}"?)` : ""}`,
        );
      }
    }
  }
  const values = new Map<string, unknown>();
  const sources = new Map<string, SettingSource>();
  for (const s of SETTINGS) {
    const flag = src.flags[s.key];
    const env = src.env[s.env];
    const file = src.file?.values[s.key];
    let raw: unknown;
    let source: SettingSource;
    let where: string;
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      [raw, source, where] = [flag, "flag", `--${s.key}`];
    } else if (env !== undefined && env !== "") {
      [raw, source, where] = [env, "env", s.env];
    } else if (file !== undefined && file !== null) {
      [raw, source, where] = [file, "file", `${src.file?.path}: ${s.key}`];
    } else {
      if (s.default !== undefined) {
        values.set(s.key, s.default);
        sources.set(s.key, "default");
      }
      continue;
    }
    values.set(s.key, parseSettingValue(s, raw, where));
    sources.set(s.key, source);
  }
  return { values, sources };
}

/** Coerces a raw value (text from a flag or the environment, or a YAML value) and validates it. */
export function parseSettingValue(s: Setting, raw: unknown, where: string): unknown {
  const bad = (why: string) =>
    new SettingsError(`${where}: ${why}${typeof raw === "string" ? ` (got ${JSON.stringify(raw)})` : ""}`);
  let typed: unknown;
  switch (s.kind) {
    case "string":
    case "enum":
      if (typeof raw !== "string") throw bad("must be text");
      typed = raw;
      if (s.options && !s.options.includes(raw)) throw bad(`must be one of ${s.options.join(", ")}`);
      break;
    case "integer":
      typed = typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
      if (typeof typed !== "number" || !Number.isInteger(typed)) throw bad("must be a whole number");
      break;
    case "size":
      typed = typeof raw === "number" ? raw : typeof raw === "string" ? parseSize(raw) : undefined;
      if (typed === undefined) throw bad("must be a size in bytes, e.g. 65536, 512KiB, 64GiB");
      break;
    case "duration":
      typed = typeof raw === "string" ? parseDuration(raw) : raw === 0 ? 0 : undefined;
      if (typed === undefined) throw bad("must be a duration with a unit, e.g. 500ms, 30s, 5m, 24h, 7d");
      break;
    case "boolean":
      typed =
        typeof raw === "boolean"
          ? raw
          : typeof raw === "string"
            ? BOOLEAN_TEXT[raw.trim().toLowerCase()]
            : undefined;
      if (typed === undefined) throw bad("must be true or false");
      break;
    case "list":
      typed = Array.isArray(raw)
        ? raw.map(String)
        : typeof raw === "string"
          ? raw
              .split(",")
              .map((v) => v.trim())
              .filter((v) => v !== "")
          : undefined;
      if (typed === undefined) throw bad("must be a comma-separated list");
      break;
  }
  const r = s.schema.safeParse(typed);
  if (!r.success) throw bad(r.error.issues[0]?.message ?? "is invalid");
  return r.data;
}

const BOOLEAN_TEXT: Record<string, boolean> = {
  true: true,
  false: false,
  "1": true,
  "0": false,
  yes: true,
  no: false,
};

/** The ServerOptions fields the settings fill (durations converted to the option's unit). */
export function settingsToOptions(resolved: ResolvedSettings): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    if (s.option === undefined || !resolved.values.has(s.key)) continue;
    const v = resolved.values.get(s.key);
    options[s.option] = s.kind === "duration" && s.unit === "s" ? (v as number) / 1000 : v;
  }
  return options;
}

/**
 * The effective settings as a config file would hold them (sizes and durations in words), with
 * secrets redacted: `--print-config` output, valid as input to `--config`.
 */
export function describeSettings(
  resolved: ResolvedSettings,
): Record<string, { value: unknown; source: SettingSource }> {
  const out: Record<string, { value: unknown; source: SettingSource }> = {};
  for (const s of SETTINGS) {
    if (!resolved.values.has(s.key)) continue;
    const v = resolved.values.get(s.key);
    let shown: unknown = v;
    if (s.kind === "size") shown = formatSize(v as number);
    else if (s.kind === "duration") shown = formatDuration(v as number);
    if (s.secret) shown = redact(s, v);
    out[s.key] = { value: shown, source: resolved.sources.get(s.key) ?? "default" };
  }
  return out;
}

function redact(s: Setting, v: unknown): unknown {
  if (typeof v === "string" && v.startsWith("@")) return v; // a file name, not the secret
  if (Array.isArray(v)) return v.map((k: string) => (k.startsWith("@") ? k : "<redacted>"));
  if (s.key === "connect" && typeof v === "string") {
    try {
      const u = new URL(v);
      if (u.password) u.password = "redacted";
      return u.toString();
    } catch {
      return "<redacted>";
    }
  }
  return "<redacted>";
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: KiB,
  kb: 1000,
  kib: KiB,
  m: MiB,
  mb: 1000 ** 2,
  mib: MiB,
  g: GiB,
  gb: 1000 ** 3,
  gib: GiB,
  t: 1024 * GiB,
  tb: 1000 ** 4,
  tib: 1024 * GiB,
};

/** "65536", "512KiB", "1.5GiB", "10MB" → bytes; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n)
    ? n
    : Number.isFinite(n) && n < Number.MAX_SAFE_INTEGER
      ? Math.round(n)
      : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** "500ms", "30s", "1h30m", "7d" → milliseconds; a unit is required; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  // Zero is zero in any unit ("--gc-interval 0" turns the schedule off, as its help says).
  if (t === "0") return 0;
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g))
    ms += Number(m[1]) * (DURATION_UNITS[m[2] as string] ?? 0);
  return Number.isSafeInteger(Math.round(ms)) ? Math.round(ms) : undefined;
}

/** Bytes in the largest binary unit that divides them: 524288 → "512KiB". */
export function formatSize(n: number): string {
  for (const [unit, size] of [
    ["TiB", 1024 * GiB],
    ["GiB", GiB],
    ["MiB", MiB],
    ["KiB", KiB],
  ] as const)
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  return String(n);
}

/** Milliseconds in the largest unit that divides them: 86400000 → "1d". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** The known key closest to a misspelled one (edit distance ≤ 3), for "did you mean". */
function nearest(key: string): string | undefined {
  let best: [string, number] | undefined;
  for (const s of SETTINGS) {
    const d = editDistance(key, s.key);
    if (d <= 3 && (!best || d < best[1])) best = [s.key, d];
  }
  return best?.[0];
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * Reads a config file: YAML (JSON is YAML too) holding a mapping of setting keys, e.g.
 * `max-connections: 40`. Duplicate keys, other shapes and unreadable files are SettingsErrors.
 */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const { readFile } = await import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = errnoOf(err);
    throw new SettingsError(
      `config file ${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(err)}`,
    );
  }
  const YAML = await import("yaml");
  let doc: unknown;
  try {
    doc = YAML.parse(text, { uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    const line = (err as { linePos?: [{ line: number }] }).linePos?.[0]?.line;
    const first = (err as Error).message.split("\n")[0];
    throw new SettingsError(`config file ${path}${line ? `:${line}` : ""}: ${first}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new SettingsError(
      `config file ${path}: must be a mapping of settings (e.g. "max-connections: 40")`,
    );
  return doc as Record<string, unknown>;
}

/** `--print-config` as YAML that `--config` reads back, each line saying where its value came from. */
export async function printableSettings(resolved: ResolvedSettings): Promise<string> {
  const YAML = await import("yaml");
  const lines: string[] = [];
  for (const [key, { value, source }] of Object.entries(describeSettings(resolved))) {
    const text = YAML.stringify({ [key]: value }).trimEnd();
    const [first, ...rest] = text.split("\n");
    lines.push(`${first}  # ${source}`, ...rest);
  }
  return `${lines.join("\n")}\n`;
}
