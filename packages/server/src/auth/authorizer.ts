import { LRUCache } from "lru-cache";
import { CacheroachError } from "../errors.js";
import type { PrincipalStore } from "../store/principal-store.js";
import type { SessionStore } from "../store/session-store.js";
import { CAP, capNames, grants, type Need, type SessionInfo, tokenKind } from "./session.js";
import type { TokenSigner } from "./token-signer.js";

/**
 * Turns bearer tokens into sessions and decides what a session may do. Every authorization
 * decision of the server goes through this class.
 *
 * A principal's authority is the set of its active sessions plus those of its email-domain
 * principal (a principal whose verified email is bob@example.com inherits the grants given to
 * the domain principal of example.com). A login session (scope on_principal(P)) acts through
 * that set; a location session acts only within its own scope.
 */
export class Authorizer {
  private readonly domainOf: LRUCache<string, { domainPrincipal: string | null }>;

  constructor(
    private readonly signer: TokenSigner,
    private readonly sessions: SessionStore,
    private readonly principals: PrincipalStore,
    cacheTtlMs: number,
    /** Re-validates OIDC principals (see principal-validator.ts); none: every principal is valid. */
    private readonly principalCheck?: { check(principalId: string): Promise<void> },
  ) {
    this.domainOf = new LRUCache({ max: 10_000, ttl: Math.max(1, cacheTtlMs) });
  }

  /**
   * Verifies a token. A durable session must still be active with its whole chain of authority
   * (see SessionStore.isActive); a signed URL (an ephemeral token minted under a session) dies
   * with the session it was minted under, and with that session's authority over the file.
   */
  async authenticate(token: string): Promise<SessionInfo> {
    const s = await this.signer.verify(token);
    const kind = tokenKind(s);
    if (kind === "durable" && !(await this.sessions.isActive(s.id!))) {
      throw new CacheroachError(
        "ERR_UNAUTHENTICATED",
        "session has been revoked or has expired, or the authority it was issued under has",
      );
    }
    if (kind === "signed-url") {
      const issuer = (await this.sessions.isActive(s.issuedBy!))
        ? await this.sessions.get(s.issuedBy!)
        : undefined;
      const sc = s.scope;
      const ok =
        issuer !== undefined &&
        sc.kind === "location" &&
        (await this.may(issuer, { caps: s.caps, tenantId: sc.tenantId, path: sc.path }));
      if (!ok)
        throw new CacheroachError(
          "ERR_UNAUTHENTICATED",
          "the session this URL was signed under has been revoked or lost access",
        );
    }
    // An OIDC principal whose login the provider no longer accepts cannot use its sessions.
    if (kind !== "bootstrap") await this.principalCheck?.check(s.principalId);
    return s;
  }

  /** The active grants a principal holds: its own sessions and its email domain's. */
  async grantsOf(principalId: string): Promise<SessionInfo[]> {
    const own = await this.sessions.activeFor(principalId);
    const domain = await this.domainPrincipal(principalId);
    return domain ? [...own, ...(await this.sessions.activeFor(domain))] : own;
  }

  /**
   * May `s` act with `need.caps` at `need.path` in `need.tenantId`? Super sessions may do
   * anything; location sessions are checked directly; a principal session with those
   * capabilities acts through the grants its principal holds.
   */
  async may(s: SessionInfo, need: Need): Promise<boolean> {
    return (await this.authorityFor(s, need)) !== undefined;
  }

  /**
   * The session whose authority lets `s` meet `need`: `s` itself (super, or a location session
   * covering it), or, for a principal session, the grant of its principal that covers it (the one
   * lasting longest, if several); undefined when none does. What `s` issues with this authority
   * is bound to it: it expires no later and is revoked with it.
   */
  async authorityFor(s: SessionInfo, need: Need): Promise<SessionInfo | undefined> {
    if (grants(s, need)) return s;
    if (s.scope.kind !== "principal" || (s.caps & need.caps) !== need.caps) return undefined;
    return longest(
      (await this.grantsOf(s.scope.principalId)).filter(
        (g) => g.scope.kind !== "principal" && grants(g, need),
      ),
    );
  }

  /** Throws ERR_PERMISSION_DENIED naming the capability and location unless `may` holds. */
  async require(s: SessionInfo, need: Need): Promise<void> {
    if (!(await this.may(s, need))) {
      throw new CacheroachError(
        "ERR_PERMISSION_DENIED",
        `this session lacks ${capNames(need.caps)} on ${need.path} in tenant ${need.tenantId}; ask someone who has it to delegate it (cacheroach session delegate)`,
      );
    }
  }

  /** May `s` read anything in the tenant (its own scope or any grant it acts through)? */
  async touchesTenant(s: SessionInfo, tenantId: string): Promise<boolean> {
    if (s.scope.kind === "super") return true;
    if (s.scope.kind === "location") return s.scope.tenantId === tenantId && (s.caps & CAP.read) !== 0;
    if (!(s.caps & CAP.read)) return false;
    return (await this.grantsOf(s.scope.principalId)).some(
      (g) => g.scope.kind === "location" && g.scope.tenantId === tenantId && (g.caps & CAP.read) !== 0,
    );
  }

  /**
   * Does `s` have authority over principal `p` with `caps`: super, or a principal session on
   * `p` itself, or one whose principal holds an on_principal(p) grant with those capabilities.
   */
  async overPrincipal(s: SessionInfo, p: string, caps: number): Promise<boolean> {
    return (await this.principalAuthority(s, p, caps)) !== undefined;
  }

  /** Like {@link authorityFor}, for authority over principal `p` (see {@link overPrincipal}). */
  async principalAuthority(s: SessionInfo, p: string, caps: number): Promise<SessionInfo | undefined> {
    if (s.scope.kind === "super") return s;
    if (s.scope.kind !== "principal" || (s.caps & caps) !== caps) return undefined;
    if (s.scope.principalId === p) return s;
    return longest(
      (await this.grantsOf(s.scope.principalId)).filter(
        (g) => g.scope.kind === "principal" && g.scope.principalId === p && (g.caps & caps) === caps,
      ),
    );
  }

  /** Forgets cached domain memberships (after principals change). */
  forgetPrincipal(principalId: string): void {
    this.domainOf.delete(principalId);
  }

  private async domainPrincipal(principalId: string): Promise<string | null> {
    const hit = this.domainOf.get(principalId);
    if (hit) return hit.domainPrincipal;
    // The domain of the principal's verified email; its domain principal is registered for it.
    const email = (await this.principals.get(principalId))?.email ?? "";
    const at = email.lastIndexOf("@");
    const domain = at > 0 ? await this.principals.byEmailDomain(email.slice(at + 1)) : undefined;
    const found = domain && domain.id !== principalId ? domain.id : null;
    this.domainOf.set(principalId, { domainPrincipal: found });
    return found;
  }
}

/** The session that expires last, of several granting the same thing. */
function longest(candidates: SessionInfo[]): SessionInfo | undefined {
  let best: SessionInfo | undefined;
  for (const c of candidates) if (!best || c.expiresAt > best.expiresAt) best = c;
  return best;
}
