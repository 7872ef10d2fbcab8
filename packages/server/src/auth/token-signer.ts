import { webcrypto } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { LRUCache } from "lru-cache";
import { CacheroachError } from "../errors.js";
import { CAP, type Scope, type SessionInfo, tokenKind } from "./session.js";

/** JWT audience of every cacheroach token. */
export const AUDIENCE = "cacheroach";

/** Compact session claims carried in the `cr` claim. */
interface CrClaim {
  /** capability mask */
  c: number;
  /** scope: "s" super, {p} principal, {t,p,v} location */
  s: "s" | { p: string } | { t: string; p: string; v?: number };
  /** name */
  n?: string;
  /** issued by */
  b?: string;
}

/**
 * Signs and verifies session JWTs: HS256 only (the algorithm is pinned, so `alg: none` and
 * other algorithms are refused), audience "cacheroach", expiry always present. Several keys
 * may be configured for rotation: the first signs, every one verifies.
 */
export class TokenSigner {
  private readonly keys: Uint8Array[];
  /** The keys imported once for verification (jose would import a raw key on every call). */
  private verifyKeys: Promise<webcrypto.CryptoKey[]> | undefined;
  /**
   * Tokens verified recently, until their expiry (at most a minute): the signature and claims of
   * a given token string never change, so a client's repeated calls skip the HMAC. Revocation is
   * not decided here (the session store checks it on every call).
   */
  private readonly verified = new LRUCache<string, SessionInfo>({ max: 10_000, ttl: 60_000 });

  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new Error("at least one signing key is required");
    for (const k of keys) if (k.length < 32) throw new Error("signing keys must be at least 32 bytes");
    this.keys = [...keys];
  }

  private importedKeys(): Promise<webcrypto.CryptoKey[]> {
    this.verifyKeys ??= Promise.all(
      this.keys.map((k) =>
        webcrypto.subtle.importKey("raw", k, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]),
      ),
    );
    return this.verifyKeys;
  }

  /** Signs a session as a JWT. */
  async sign(s: SessionInfo): Promise<string> {
    const cr: CrClaim = { c: s.caps, s: encodeScope(s.scope) };
    if (s.name) cr.n = s.name;
    if (s.issuedBy) cr.b = s.issuedBy;
    const jwt = new SignJWT({ cr })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setAudience(AUDIENCE)
      .setSubject(s.principalId)
      .setIssuedAt(Math.floor(s.issuedAt.getTime() / 1000))
      .setExpirationTime(Math.floor(s.expiresAt.getTime() / 1000));
    if (s.id) jwt.setJti(s.id);
    return jwt.sign(this.keys[0]!);
  }

  /** Verifies a JWT and decodes its session; any failure is ERR_UNAUTHENTICATED naming why. */
  async verify(token: string): Promise<SessionInfo> {
    const hit = this.verified.get(token);
    if (hit && hit.expiresAt.getTime() > Date.now()) return hit;
    const session = await this.verifyUncached(token);
    const left = session.expiresAt.getTime() - Date.now();
    if (left > 0) this.verified.set(token, session, { ttl: Math.min(left, 60_000) });
    return session;
  }

  private async verifyUncached(token: string): Promise<SessionInfo> {
    let lastSignatureError = true;
    for (const key of await this.importedKeys()) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ["HS256"],
          audience: AUDIENCE,
          requiredClaims: ["exp", "sub", "iat"],
        });
        const cr = payload["cr"] as CrClaim | undefined;
        if (!cr || typeof cr.c !== "number" || cr.c < 0 || cr.c > 31)
          throw new CacheroachError("ERR_UNAUTHENTICATED", "token has no valid session claim");
        const session: SessionInfo = {
          id: payload.jti,
          principalId: payload.sub!,
          caps: cr.c,
          scope: decodeScope(cr.s),
          expiresAt: new Date(payload.exp! * 1000),
          issuedAt: new Date(payload.iat! * 1000),
          name: cr.n ?? "",
          note: "",
          issuedBy: cr.b,
        };
        checkKind(session);
        return session;
      } catch (err) {
        if (err instanceof CacheroachError) throw err;
        if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue; // try the next key
        lastSignatureError = false;
        throw new CacheroachError("ERR_UNAUTHENTICATED", reason(err), { cause: err });
      }
    }
    throw new CacheroachError(
      "ERR_UNAUTHENTICATED",
      lastSignatureError ? "token signature is invalid" : "token is invalid",
    );
  }
}

/**
 * Only three kinds of token exist (see tokenKind): a durable session (it has an ID), a signed URL
 * (no ID, an issuer, read of one exact path) and the bootstrap token (no ID, no issuer, super).
 * Anything else, even correctly signed, is refused: an ephemeral token that could do more, or
 * one without the issuer that ties it to a revocable session.
 */
function checkKind(s: SessionInfo): void {
  const kind = tokenKind(s);
  if (kind === "signed-url") {
    const sc = s.scope;
    if (s.caps !== CAP.read || sc.kind !== "location" || sc.path.endsWith("*"))
      throw new CacheroachError(
        "ERR_UNAUTHENTICATED",
        "token is not a valid signed URL (read of one file only)",
      );
  } else if (kind === "bootstrap" && s.scope.kind !== "super") {
    throw new CacheroachError(
      "ERR_UNAUTHENTICATED",
      "token has no session and no issuer: only a bootstrap token may",
    );
  }
}

function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `token claim "${err.claim}" is invalid`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "token algorithm is not allowed (only HS256)";
  return "token is malformed";
}

function encodeScope(s: Scope): CrClaim["s"] {
  switch (s.kind) {
    case "super":
      return "s";
    case "principal":
      return { p: s.principalId };
    case "location":
      return s.version ? { t: s.tenantId, p: s.path, v: s.version } : { t: s.tenantId, p: s.path };
  }
}

function decodeScope(s: CrClaim["s"] | undefined): Scope {
  if (s === "s") return { kind: "super" };
  if (s && typeof s === "object") {
    if ("t" in s && typeof s.t === "string" && typeof s.p === "string") {
      return { kind: "location", tenantId: s.t, path: s.p, version: typeof s.v === "number" ? s.v : 0 };
    }
    if ("p" in s && typeof s.p === "string") return { kind: "principal", principalId: s.p };
  }
  throw new CacheroachError("ERR_UNAUTHENTICATED", "token has no valid scope");
}
