/**
 * The cacheroach server: start it with {@link startServer}. Also exports what the CLI shares
 * with the server (signing keys, bootstrap tokens); content hashing lives in @cacheroach/core.
 */

export { WELL_KNOWN } from "@cacheroach/core";
export { OidcDiscoveryError } from "./auth/oidc-client.js";
export type { ServerConfig, ServerOptions } from "./config.js";
export { ConfigError, resolveConfig } from "./config.js";
export { DATA_DIR_LOCK_FILE, DataDirInUseError } from "./data-dir-lock.js";
export type { ErrorCode } from "./errors.js";
export { CacheroachError, ERROR_TABLE } from "./errors.js";
export { TlsError } from "./net/tls-material.js";
export type { RunningServer } from "./server.js";
export { startServer } from "./server.js";
export {
  BOOTSTRAP_PRINCIPAL,
  ensureSigningKeys,
  mintBootstrapToken,
  parseSigningKey,
  readSigningKeys,
  SIGNING_KEYS_FILE,
} from "./signing-keys.js";
