import { LRUCache } from "lru-cache";
import { CacheroachError } from "../errors.js";
import type { Logger } from "../logger.js";
import { type PrincipalLoginStore, REFRESH_STATUS } from "../store/principal-login-store.js";
import type { OidcClient } from "./oidc-client.js";
import type { SecretBox } from "./secret-box.js";

/** The longest a principal is taken as valid without looking at its row again. */
const MAX_CACHE_MS = 3600_000;

/** What {@link PrincipalValidator} works with. */
export interface PrincipalValidatorDeps {
  readonly store: PrincipalLoginStore;
  /** The provider; undefined when OIDC is off (principals with refresh tokens are then accepted). */
  readonly oidc: OidcClient | undefined;
  /** Opens and seals refresh tokens at rest. */
  readonly tokenBox: SecretBox;
  /** How long other instances accept a principal while one refreshes it (the grace window). */
  readonly graceMs: number;
  /** How long a "log in again" verdict is cached here (a new login elsewhere shows after it). */
  readonly failureCacheMs: number;
  readonly log: Logger;
  /** Counts refreshes at the provider by outcome (metrics, tests). */
  readonly onRefresh?: (outcome: "ok" | "refused" | "unavailable") => void;
}

/**
 * Re-validates OIDC principals on authenticated requests: a principal whose refresh time has
 * passed is refreshed at the provider with its refresh token before its sessions are accepted
 * again. One instance claims the refresh (the row's version guards it) and marks the principal
 * refreshing until the grace window ends, so the other instances keep accepting it meanwhile
 * and N instances do not all call the provider. The provider refusing the refresh token (HTTP
 * 400) marks the principal as needing a new login: its sessions are refused (ERR_LOGIN_REQUIRED)
 * until it logs in again. A provider that cannot be reached fails the request that tried
 * (ERR_UNAVAILABLE) and nothing else: it is tried again when the grace window has passed.
 *
 * Results are cached per principal until its refresh time (at most an hour); principals without
 * a refresh token (made by an operator or the CLI) cost one look-up an hour.
 */
export class PrincipalValidator {
  private readonly cache = new LRUCache<string, { failure?: CacheroachError }>({
    max: 10_000,
    ttl: MAX_CACHE_MS,
  });
  private readonly inFlight = new Map<string, Promise<void>>();
  private warnedOff = false;

  constructor(private readonly deps: PrincipalValidatorDeps) {}

  /** Resolves when the principal's sessions may be used; throws ERR_LOGIN_REQUIRED or ERR_UNAVAILABLE. */
  async check(principalId: string): Promise<void> {
    const hit = this.cache.get(principalId);
    if (hit) {
      if (hit.failure) throw hit.failure;
      return;
    }
    let p = this.inFlight.get(principalId);
    if (!p) {
      p = this.validate(principalId).finally(() => this.inFlight.delete(principalId));
      this.inFlight.set(principalId, p);
    }
    return p;
  }

  /** Forgets what is cached about a principal (it just logged in). */
  forget(principalId: string): void {
    this.cache.delete(principalId);
  }

  private accept(principalId: string, until: number): void {
    const ttl = Math.min(MAX_CACHE_MS, until - Date.now());
    if (ttl > 0) this.cache.set(principalId, {}, { ttl });
  }

  private refuse(principalId: string, why: string): CacheroachError {
    const failure = new CacheroachError(
      "ERR_LOGIN_REQUIRED",
      `the identity provider no longer accepts this login (${why}): log in again with \`cacheroach auth login <server URL>\` or in the browser`,
    );
    this.cache.set(principalId, { failure }, { ttl: Math.max(1, this.deps.failureCacheMs) });
    return failure;
  }

  private async validate(principalId: string): Promise<void> {
    const { store } = this.deps;
    // Each round either decides, or lost a race to another instance and reads the row again.
    for (let round = 0; round < 5; round++) {
      const st = await store.state(principalId);
      const now = Date.now();
      if (!st) return; // deleted: its sessions went with it (the session check refuses them)
      if (st.status === REFRESH_STATUS.needsLogin) throw this.refuse(principalId, "its refresh was refused");
      if (st.sealedRefreshToken === "") return this.accept(principalId, now + MAX_CACHE_MS);
      if (st.refreshAfter.getTime() > now) return this.accept(principalId, st.refreshAfter.getTime());
      const oidc = this.deps.oidc;
      if (!oidc) {
        if (!this.warnedOff) {
          this.warnedOff = true;
          this.deps.log.warn(
            "OIDC is off: principals that logged in with OIDC are accepted without re-validation",
          );
        }
        return this.accept(principalId, now + MAX_CACHE_MS);
      }
      const claimed = await store.claim(principalId, st.version, new Date(now + this.deps.graceMs));
      if (claimed === undefined) continue;
      const token = this.deps.tokenBox.open(st.sealedRefreshToken);
      if (token === undefined) {
        await store.needsLogin(principalId, claimed);
        throw this.refuse(
          principalId,
          "its stored refresh token cannot be read with this server's signing keys",
        );
      }
      const outcome = await oidc.refresh(token);
      if (outcome.ok) {
        this.deps.onRefresh?.("ok");
        const sealed = outcome.refreshToken ? this.deps.tokenBox.seal(outcome.refreshToken) : undefined;
        await store.refreshed(principalId, claimed, outcome.expiresAt, sealed);
        return this.accept(principalId, outcome.expiresAt.getTime());
      }
      if (outcome.permanent) {
        this.deps.onRefresh?.("refused");
        this.deps.log.info(
          { principal: principalId, reason: outcome.reason },
          "OIDC refresh refused: login needed",
        );
        await store.needsLogin(principalId, claimed);
        throw this.refuse(principalId, `the provider answered ${outcome.reason}`);
      }
      this.deps.onRefresh?.("unavailable");
      this.deps.log.warn(
        { principal: principalId, reason: outcome.reason },
        "OIDC refresh failed; will retry",
      );
      // The row stays "refreshing" until the grace window ends: until then every instance
      // accepts the principal, then one tries again.
      throw new CacheroachError(
        "ERR_UNAVAILABLE",
        "the identity provider cannot be reached to re-validate this login; try again in a moment",
      );
    }
    // Always losing the race means the row is changing constantly; let the caller retry.
    throw new CacheroachError("ERR_UNAVAILABLE", "this login is being re-validated; try again in a moment");
  }
}
