/**
 * @cacheroach/cli: the `cacheroach` command-line client. The commands live in ./commands (loaded
 * by oclif); the reusable pieces are exported here.
 */
export { BaseCommand, normalizeServerUrl } from "./lib/base-command.js";
export { downloadBatch, READ_BATCH } from "./lib/batch-download.js";
export { CHUNK_UPLOAD_ENV, ChunkBodies, ChunkRouteMissing } from "./lib/chunk-bodies.js";
export { mapLimit } from "./lib/concurrency.js";
export {
  type CliConfig,
  CONFIG_ENV,
  ConfigInvalidError,
  ConfigMissingError,
  configSession,
  defaultConfigPath,
  loadConfig,
  resolveConfigPath,
  saveConfig,
  sessionToJson,
} from "./lib/config.js";
export { checkConfigTarget, writeConfigTarget } from "./lib/config-out.js";
export { DEDUP_BATCH_CHUNKS } from "./lib/dedup-upload.js";
export {
  absoluteUrl,
  type Destination,
  type DownloadContext,
  downloadFile,
  type HttpGetter,
} from "./lib/download.js";
export { describeError, ExitCode, IntegrityError, isRetryable, UserError } from "./lib/errors.js";
export { formatBytes, parseDuration, table } from "./lib/format.js";
export {
  defaultHashCacheDir,
  type FileIdentity,
  HASH_CACHE_ENV,
  HashCache,
  identityOf,
  nowNs,
  SETTLE_NS,
} from "./lib/hash-cache.js";
export {
  type HashedBlock,
  HashPool,
  PARALLEL_HASH_MIN_BYTES,
  ParallelContentHasher,
} from "./lib/hash-pool.js";
export { HttpClient, isConnectionError, redactUrl } from "./lib/http.js";
export { checkRemoteDir, checkRemotePath, isUuid, remotePathProblem } from "./lib/paths.js";
export { withRetry } from "./lib/retry.js";
export { ContentHasher, chunkHash, contentHash, hex, ROPE_CONTEXT, RopeHasher } from "./lib/rope-hash.js";
export {
  CAPABILITY_NAMES,
  type CapabilityName,
  capabilityText,
  checkPathPattern,
  parseCapabilities,
  type SessionJson,
  scopeText,
  sessionJson,
} from "./lib/sessions.js";
export {
  BigWindowSessionManager,
  type ClientTransport,
  DEFAULT_TRANSPORT,
  makeTransport,
  TRANSPORT_ENV,
  TRANSPORT_KINDS,
  type TransportKind,
} from "./lib/transport.js";
export { ONE_SHOT_LIMIT, type UploadJob, uploadFile } from "./lib/upload.js";
