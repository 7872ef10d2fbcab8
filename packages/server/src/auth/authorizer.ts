import { StoreError } from "../errors.js";
import { capNames, grants, type Need, type SessionInfo } from "./session.js";
import type { SessionStore } from "./session-store.js";
import type { TokenSigner } from "./token-signer.js";

/**
 * Turns bearer tokens into sessions and decides whether a session may do something. Every
 * authorization decision of the server goes through `require`.
 */
export class Authorizer {
  constructor(
    private readonly signer: TokenSigner,
    private readonly sessions: SessionStore,
  ) {}

  /** Verifies a token; durable sessions must also still be active in the database. */
  async authenticate(token: string): Promise<SessionInfo> {
    const s = await this.signer.verify(token);
    if (s.id !== undefined && !(await this.sessions.isActive(s.id))) {
      throw new StoreError("ERR_UNAUTHENTICATED", "session has been revoked or has expired");
    }
    return s;
  }

  /**
   * May `s` act with `need.caps` at `need.path` in `need.tenantId`? Super sessions may do
   * anything; location sessions are checked directly; a principal session (a login) with the
   * delegate capability acts through the grants its principal holds.
   */
  async may(s: SessionInfo, need: Need): Promise<boolean> {
    if (grants(s, need)) return true;
    if (s.scope.kind !== "principal" || (s.caps & need.caps) !== need.caps) return false;
    for (const g of await this.sessions.activeFor(s.scope.principalId)) {
      if (g.scope.kind !== "principal" && grants(g, need)) return true;
    }
    return false;
  }

  /** Throws ERR_PERMISSION_DENIED naming the capability and location unless `may` holds. */
  async require(s: SessionInfo, need: Need): Promise<void> {
    if (!(await this.may(s, need))) {
      throw new StoreError(
        "ERR_PERMISSION_DENIED",
        `this session lacks ${capNames(need.caps)} on ${need.path} in tenant ${need.tenantId}; ask an administrator to delegate it (cacheroach session delegate)`,
      );
    }
  }
}
