import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  Diags,
  Files,
  GarbageCollection,
  grpcReflectionV1,
  grpcReflectionV1alpha,
  Principals,
  Scrub,
  Tenants,
  Tokens,
  Uploads,
  VHosts,
} from "@cacheroach/proto";
import type { ConnectRouter } from "@connectrpc/connect";
import { createAuthenticationInterceptor } from "./auth/authentication-interceptor.js";
import { createAuthorizationInterceptor } from "./auth/authorization-interceptor.js";
import { Authorizer } from "./auth/authorizer.js";
import { ContentAccess } from "./auth/content-access.js";
import { OidcClient } from "./auth/oidc-client.js";
import { OidcLogin } from "./auth/oidc-login.js";
import { PrincipalValidator } from "./auth/principal-validator.js";
import { SecretBox } from "./auth/secret-box.js";
import { TokenSigner } from "./auth/token-signer.js";
import { ensureBootstrapData } from "./bootstrap-data.js";
import { ConfigError, resolveConfig, type ServerConfig, type ServerOptions } from "./config.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import { Db } from "./db/db.js";
import type { EmbeddedPostgres } from "./db/embedded-postgres.js";
import { isClientDisconnect } from "./errors.js";
import { createHttpRouter } from "./http/http-router.js";
import { Site } from "./http/site.js";
import { VHostMap } from "./http/vhost-map.js";
import { WebUi } from "./http/web-ui.js";
import { DEFAULT_GC_OPTIONS, GarbageCollector, type TenantCollection } from "./lifecycle/gc.js";
import { PeriodicJob } from "./lifecycle/periodic-job.js";
import { Scrubber } from "./lifecycle/scrub.js";
import { createLogger } from "./logger.js";
import { observeHttp } from "./metrics/http-observer.js";
import { cachedFor, type MetricSources, Metrics } from "./metrics/metrics.js";
import { listenMetrics, withMetricsRoute } from "./metrics/metrics-route.js";
import { TrafficCounter } from "./metrics/traffic.js";
import { createDrainGate } from "./net/drain-gate.js";
import { listenDual } from "./net/dual-listener.js";
import { contextOptions, readTlsFiles, selfSignedTls, type TlsMaterial } from "./net/tls-material.js";
import { createDiagsService } from "./rpc/diags-service.js";
import { createErrorInterceptor } from "./rpc/error-interceptor.js";
import { createFilesService } from "./rpc/files-service.js";
import { createGcService } from "./rpc/gc-service.js";
import { createMetricsInterceptor } from "./rpc/metrics-interceptor.js";
import { createPrincipalsService } from "./rpc/principals-service.js";
import { READ_MANY_BUDGET } from "./rpc/read-many.js";
import {
  createReflectionService,
  createReflectionServiceV1alpha,
  Reflector,
} from "./rpc/reflection-service.js";
import { createRpcAdapter } from "./rpc/rpc-adapter.js";
import { createScrubService } from "./rpc/scrub-service.js";
import { createTenantsService } from "./rpc/tenants-service.js";
import { createTokensService } from "./rpc/tokens-service.js";
import { createUploadsService } from "./rpc/uploads-service.js";
import { createVHostsService } from "./rpc/vhosts-service.js";
import { ensureSigningKeys } from "./signing-keys.js";
import { ChunkStore } from "./store/chunk-store.js";
import { FileStore } from "./store/file-store.js";
import { GcStore } from "./store/gc-store.js";
import { PrincipalLoginStore } from "./store/principal-login-store.js";
import { PrincipalStore } from "./store/principal-store.js";
import { RopeStore } from "./store/rope-store.js";
import { ScrubStore } from "./store/scrub-store.js";
import { SessionStore } from "./store/session-store.js";
import { TenantStore } from "./store/tenant-store.js";
import { UploadStore } from "./store/upload-store.js";
import { UsageStore } from "./store/usage-store.js";
import { VHostStore } from "./store/vhost-store.js";
import { Quotas } from "./uploads/quotas.js";
import { UploadManager } from "./uploads/upload-manager.js";
import { UploadStateCodec } from "./uploads/upload-state.js";

/** Reported by Diags.Echo. */
const SERVER_VERSION = "0.1.0";
/**
 * How long close() waits for the database pool to end once connections are closed: handlers cut
 * at the end of the grace period may still hold a connection for a moment.
 */
const DB_CLOSE_MS = 5000;

/**
 * Chunks one read fetches ahead, each a COPY on its own connection. 2 cut PostgreSQL's CPU per MiB
 * of a cold 1 GiB read by 16–23 % against 4, at the same wall time, on two shared cores
 * (docs/performance.md, round 3); the raw read limit is fastest with 2 connections too.
 */
const READ_AHEAD = 2;

/** A started server. */
export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:13013 (RPC and plain HTTP on the same port). */
  readonly url: string;
  readonly port: number;
  /** The database URL in use (embedded or external); contains credentials — never log it. */
  readonly databaseUrl: string;
  readonly config: ServerConfig;
  /** Where Prometheus scrapes: `<url>/metrics`, or the metrics-bind listener's. */
  readonly metricsUrl: string;
  /**
   * Reads tls-cert/tls-key again and uses them for new connections (SIGHUP). False when the
   * server has no certificate files; a pair that does not load is refused (TlsError) and the
   * certificate in use kept.
   */
  reloadTls(): Promise<boolean>;
  /**
   * Drains and stops: from the call on, every new request except `/healthz` is answered 503 (so
   * `/readyz` too), idle connections close and HTTP/2 sessions get GOAWAY; requests in flight
   * finish for up to `gracePeriodMs`, then the rest are cut, the port released, the database pool
   * closed and the embedded database stopped. Idempotent.
   */
  close(): Promise<void>;
}

/** The certificate the port serves, from files or made self-signed; undefined for cleartext. */
async function loadTls(config: ServerConfig): Promise<TlsMaterial | undefined> {
  if (!config.tls) return undefined;
  if ("certFile" in config.tls) return readTlsFiles(config.tls.certFile, config.tls.keyFile);
  const hosts = config.host === "0.0.0.0" || config.host === "::" ? [] : [config.host];
  return selfSignedTls(config.dataDir, hosts);
}

/**
 * Starts cacheroach: the database (embedded PostgreSQL in the data directory unless a URL is
 * given), migrations, start-up data, and Connect + gRPC + gRPC-Web + plain HTTP on one port.
 * This is the composition root: every dependency is wired here by hand.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const config = resolveConfig(options);
  const log = createLogger(config.logLevel);
  let lock: DataDirLock | undefined;
  let embedded: EmbeddedPostgres | undefined;
  let db: Db | undefined;
  try {
    // The OIDC provider first: an issuer that cannot be discovered stops the start at once.
    const oidc = config.oidc
      ? await OidcClient.discover(config.oidc, await readSecretSetting(config.oidc.clientSecret))
      : undefined;
    if (oidc) log.info({ issuer: oidc.issuer }, "OIDC provider discovered");
    let databaseUrl: string;
    if (config.databaseUrl) databaseUrl = config.databaseUrl;
    else {
      // Before anything in the directory is touched: a second server would stop the first one's
      // postmaster as if it were an orphan.
      lock = await lockDataDir(config.dataDir);
      // Loaded only when needed: the package installs process exit hooks at import time.
      const { startEmbeddedPostgres } = await import("./db/embedded-postgres.js");
      embedded = await startEmbeddedPostgres({ dir: join(config.dataDir, "pg") });
      databaseUrl = embedded.url;
      log.info({ dir: join(config.dataDir, "pg") }, "embedded PostgreSQL started");
    }
    const keys = config.signingKeys ?? (await ensureSigningKeys(config.dataDir));
    // The metrics read their sources at scrape time; the sources are filled in as they are made.
    const sources: MetricSources = {};
    const metrics = new Metrics({ version: SERVER_VERSION }, sources);
    db = await Db.connect({
      url: databaseUrl,
      log,
      maxConnections: config.maxConnections,
      onOperation: (seconds, ok) => metrics.query(seconds, ok),
    });
    const applied = await db.migrate();
    if (applied.length) log.info({ applied }, "schema migrated");
    const sessions = new SessionStore(db, config.sessionCacheMs);
    const tenants = new TenantStore(db);
    const principals = new PrincipalStore(db);
    const vhostStore = new VHostStore(db);
    await ensureBootstrapData({ tenants, vhosts: vhostStore, principals, sessions });

    const signer = new TokenSigner(keys);
    const loginStore = new PrincipalLoginStore(db);
    const refreshTokens = new SecretBox(keys, "oidc refresh token v1");
    const validator = new PrincipalValidator({
      store: loginStore,
      oidc,
      tokenBox: refreshTokens,
      graceMs: config.oidcRefreshGraceMs,
      failureCacheMs: config.sessionCacheMs,
      log,
      onRefresh: (outcome) => metrics.oidcRefresh(outcome),
    });
    const authz = new Authorizer(signer, sessions, principals, config.sessionCacheMs, validator);
    const login =
      oidc && config.oidc
        ? new OidcLogin({
            oidc,
            domains: config.oidc.domains,
            principals: loginStore,
            sessions,
            signer,
            cookieBox: new SecretBox(keys, "oidc login cookie v1"),
            tokenBox: refreshTokens,
            onLogin: (id) => {
              validator.forget(id);
              authz.forgetPrincipal(id);
            },
          })
        : undefined;
    const codec = new UploadStateCodec(keys);
    const chunks = new ChunkStore(db, {
      cacheBytes: config.cacheBytes,
      writeConcurrency: config.chunkWriteConcurrency,
    });
    const ropes = new RopeStore(db, chunks, READ_AHEAD);
    const files = new FileStore(db);
    const uploadStore = new UploadStore(db);
    const usage = new UsageStore(db);
    const quotas = new Quotas(tenants, usage, chunks, uploadStore, {
      quotaBytes: config.defaultQuotaBytes,
      maxOpenUploads: config.maxOpenUploads,
    });
    const uploads = new UploadManager(
      uploadStore,
      tenants,
      chunks,
      ropes,
      files,
      codec,
      {
        chunkSize: config.chunkSize,
        maxTransferSize: config.maxTransferSize,
        uploadTtlSeconds: config.uploadTtlSeconds,
      },
      quotas,
    );
    const gcJob = new PeriodicJob(
      "gc",
      config.gcIntervalMs,
      async () => {
        const reports = await gc.run();
        for (const r of reports) {
          if (r.error)
            log.warn({ tenant: r.tenantId, err: r.error }, "garbage collection failed for a tenant");
          else if (r.versions + r.uploads + r.ropes + r.chunks + r.purgedRows > 0)
            log.info({ tenant: r.tenantId, ...summary(r) }, "garbage collected");
        }
      },
      log,
    );
    const gc = new GarbageCollector(
      new GcStore(db),
      {
        ...DEFAULT_GC_OPTIONS,
        marginMs: config.gcMarginMs,
        retainVersions: config.retainVersions,
        retainSeconds: config.retainSeconds,
      },
      gcJob.abort.signal,
    );
    const scrubber = new Scrubber(new ScrubStore(db), { bytesPerSecond: config.scrubBytesPerSecond, log });
    // The scheduled scrub of every tenant; the scrub logs its own summary and problems.
    const scrubJob = new PeriodicJob(
      "scrub",
      config.scrubIntervalMs,
      async (signal) => {
        for await (const _ of scrubber.run({ signal, trigger: "schedule" })) {
          // events are logged by the scrub; metrics read its counters
        }
      },
      log,
    );
    // Responses: a Read message carries at most one transfer; a ReadMany answer up to its 16 MiB
    // contents budget plus metadata (it keeps itself under this limit).
    const writeMaxBytes = Math.max(config.maxTransferSize, READ_MANY_BUDGET) + (4 << 20);

    const routes = (router: ConnectRouter) => {
      router.service(
        Files,
        createFilesService(files, ropes, signer, config.maxSignedUrlSeconds, writeMaxBytes, authz),
      );
      router.service(
        Uploads,
        createUploadsService(
          uploads,
          chunks,
          files,
          {
            maxBytes: config.fetchMaxBytes,
            timeoutMs: config.fetchTimeoutMs,
            allowPrivate: config.fetchAllowPrivate,
          },
          authz,
          new ContentAccess(authz, files),
        ),
      );
      router.service(
        Tenants,
        createTenantsService(tenants, authz, {
          usage,
          quotas,
          retention: { retainVersions: config.retainVersions, retainSeconds: config.retainSeconds },
          onDeleted: () => gcJob.kick(),
        }),
      );
      router.service(GarbageCollection, createGcService(gc));
      router.service(Principals, createPrincipalsService(principals, sessions, authz));
      router.service(Tokens, createTokensService(signer, sessions, authz));
      router.service(VHosts, createVHostsService(vhostStore));
      router.service(Diags, createDiagsService(db!, SERVER_VERSION));
      router.service(Scrub, createScrubService(scrubber));
      // gRPC server reflection (public): grpcurl and buf curl work without the schema.
      const reflector = new Reflector([
        Files,
        Uploads,
        Tenants,
        GarbageCollection,
        Principals,
        Tokens,
        VHosts,
        Diags,
        Scrub,
      ]);
      router.service(grpcReflectionV1.ServerReflection, createReflectionService(reflector));
      router.service(grpcReflectionV1alpha.ServerReflection, createReflectionServiceV1alpha(reflector));
    };
    const vhosts = new VHostMap(vhostStore, config.vhostRefreshMs);
    const site = new Site({
      publicUrl: config.publicUrl,
      activeContentHosts: config.activeContentHosts,
      isVHost: (host) => vhosts.has(host),
      assumeSecure: config.assumeSecure,
    });
    const dbForMetrics = db;
    const traffic = new TrafficCounter();
    sources.chunkCache = () => {
      const c = chunks.counters;
      const size = chunks.cacheSize();
      return { hits: c.cacheHits, misses: c.cacheMisses, bytes: size.bytes, entries: size.entries };
    };
    sources.dedup = () => {
      const c = chunks.counters;
      return {
        chunksSkipped: c.chunksSkipped,
        bytesSkipped: c.bytesSkipped,
        chunksWritten: c.chunksWritten,
        bytesWritten: c.bytesWritten,
      };
    };
    sources.corruptReads = () => chunks.counters.corruptReads;
    sources.scrub = () => scrubber.counters;
    sources.dbPools = () => dbForMetrics.poolStats();
    sources.quotaRefusals = () => quotas.refusals;
    sources.traffic = () => traffic.read();
    sources.uploadsOpen = cachedFor(15_000, () => uploadStore.countOpen());
    sources.gc = () => gc.counters;
    const httpRouter = createHttpRouter({
      db,
      files,
      ropes,
      uploads,
      authz,
      sessions,
      vhosts,
      site,
      login,
      principals,
      maxPutBytes: config.maxPutBytes,
      log,
      ui: WebUi.load(),
    });
    const handler = createRpcAdapter({
      routes,
      // Outermost first: errors are mapped and logged for everything inside, then who is
      // calling, then whether the policy lets them.
      interceptors: [
        createMetricsInterceptor((method, code, seconds) => metrics.rpc(method, code, seconds)),
        createErrorInterceptor(log),
        createAuthenticationInterceptor(authz),
        createAuthorizationInterceptor(authz, { uploadStates: codec }),
      ],
      // Plain HTTP, timed; /metrics on this port unless it has a listener of its own.
      fallback: observeHttp(
        config.metricsBind ? httpRouter : withMetricsRoute(metrics, httpRouter),
        (route, method, status, seconds) => metrics.http(route, method, status, seconds),
      ),
      // gzip on random chunk data costs far more than it saves (docs/performance.md).
      acceptCompression: [],
      // Bounded request size: one Transfer/PutChunks plus protobuf overhead.
      readMaxBytes: config.maxTransferSize + 64 * 1024,
      writeMaxBytes,
      // Writing an answer that already began failed: usually the client went away.
      onHandlerError: (err, method) =>
        log[isClientDisconnect(err) ? "info" : "warn"](
          { method, err: err instanceof Error ? err.message : String(err) },
          "rpc response failed",
        ),
    });
    const tlsMaterial = await loadTls(config);
    const metricsServer = config.metricsBind
      ? await listenMetrics(metrics, config.metricsBind.host, config.metricsBind.port)
      : undefined;
    const gate = createDrainGate(handler);
    const listener = await listenDual(gate.handler, config.host, config.port, {
      shutdownGraceMs: config.gracePeriodMs,
      // Large enough that chunk payloads are not throttled on loopback, small enough that a
      // client which also uses big windows cannot deadlock a connection carrying large data in
      // both directions at once (both Node ends stop reading while a write is pending).
      initialWindowSize: 2 << 20,
      connectionWindowSize: 4 << 20,
      onConnection: (socket) => traffic.track(socket),
      ...(tlsMaterial ? { tls: contextOptions(tlsMaterial) } : {}),
      onError: (err, source) =>
        log[source !== "handler" && isClientDisconnect(err) ? "info" : "warn"](
          { source, err: err instanceof Error ? err.message : String(err) },
          "connection error",
        ),
    }).catch((err: unknown) => {
      metricsServer?.close();
      throw err;
    });
    site.bind(listener.host, listener.port);
    const host =
      config.host === "0.0.0.0" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
    const url = `${tlsMaterial ? "https" : "http"}://${host}:${listener.port}`;
    let metricsUrl = `${url}/metrics`;
    if (metricsServer) {
      const a = metricsServer.address() as AddressInfo;
      metricsUrl = `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}/metrics`;
      log.info({ url: metricsUrl }, "metrics listening");
    }
    log.info({ url }, "cacheroach listening");
    gcJob.start();
    scrubJob.start();
    const dbRef = db;
    let closed: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      gate.start();
      await gcJob.stop();
      // Scrubs are long reads, not requests to finish: on-demand ones end (UNAVAILABLE, run it
      // again) and the scheduled one stops before the drain waits for the rest.
      scrubber.close();
      await scrubJob.stop();
      log.info({ gracePeriodMs: config.gracePeriodMs }, "draining: finishing requests in flight");
      const t0 = Date.now();
      await listener.close();
      const ms = Date.now() - t0;
      if (config.gracePeriodMs > 0 && ms >= config.gracePeriodMs)
        log.warn({ ms }, "grace period over: requests still in flight were cut");
      else log.info({ ms }, "drained");
      // Scrapes went on during the drain.
      metricsServer?.closeAllConnections();
      metricsServer?.close();
      const dbClosed = dbRef.close();
      try {
        if (await settlesWithin(dbClosed, DB_CLOSE_MS)) await dbClosed;
        else log.warn({ ms: DB_CLOSE_MS }, "database pool still busy after the drain; stopping anyway");
      } finally {
        await embedded?.stop();
        await lock?.release();
        log.flush?.();
      }
    };
    return {
      url,
      port: listener.port,
      databaseUrl,
      config,
      metricsUrl,
      async reloadTls() {
        const tlsConfig = config.tls;
        if (!tlsConfig || !("certFile" in tlsConfig)) return false;
        const next = await readTlsFiles(tlsConfig.certFile, tlsConfig.keyFile);
        listener.setSecureContext(contextOptions(next));
        log.info({ cert: tlsConfig.certFile }, "TLS certificate reloaded");
        return true;
      },
      close: () => {
        closed ??= close();
        return closed;
      },
    };
  } catch (err) {
    await db?.close().catch(() => {});
    await embedded?.stop().catch(() => {});
    await lock?.release().catch(() => {});
    throw err;
  }
}

/** The numbers of a tenant's collection worth a log line. */
function summary(r: TenantCollection) {
  const { versions, uploads, ropes, chunks, bytes, pendingChunks, purgedRows } = r;
  return { versions, uploads, ropes, chunks, bytes, pendingChunks, purgedRows };
}

/** A secret setting's value: itself, or "@file": the file's contents, trimmed. */
async function readSecretSetting(value: string): Promise<string> {
  if (!value.startsWith("@")) return value;
  const { readFile } = await import("node:fs/promises");
  const path = value.slice(1);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`oidc-client-secret file ${path} cannot be read: ${(err as Error).message}`);
  }
  const secret = text.trim();
  if (secret === "") throw new ConfigError(`oidc-client-secret file ${path} is empty`);
  return secret;
}

/** True if `p` settles within `ms` (whether it resolves or rejects), false once `ms` have passed. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
