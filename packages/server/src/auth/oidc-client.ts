import * as client from "openid-client";
import type { OidcSettings } from "../config.js";
import { CacheroachError } from "../errors.js";

/** What the ID token of a login says, once openid-client has validated it. */
export interface LoginTokens {
  /** The ID token's claims (issuer, audience, expiry, nonce and signature checked). */
  readonly claims: Record<string, unknown>;
  /** The provider's refresh token, if it issued one. */
  readonly refreshToken: string | undefined;
  /** When the access token expires: the principal is re-validated after that. */
  readonly expiresAt: Date;
}

/** What one refresh at the provider gave. */
export type RefreshOutcome =
  | { readonly ok: true; readonly expiresAt: Date; readonly refreshToken: string | undefined }
  /** The provider refused the refresh token (HTTP 400): the user must log in again. */
  | { readonly ok: false; readonly permanent: true; readonly reason: string }
  /** The provider could not be reached or failed otherwise: try again later. */
  | { readonly ok: false; readonly permanent: false; readonly reason: string };

/** Validity assumed when the provider's token response has no expires_in. */
const DEFAULT_VALIDITY_MS = 3600_000;

/**
 * The relying party: this server as an OAuth client of one OpenID provider, through
 * `openid-client`. Builds authorization URLs (code flow, PKCE S256, state, nonce), exchanges
 * codes (openid-client checks state, PKCE, and the ID token's issuer, audience, expiry and
 * nonce) and refreshes tokens.
 */
export class OidcClient {
  private constructor(
    private readonly config: client.Configuration,
    readonly issuer: string,
    private readonly scope: string,
  ) {}

  /**
   * Discovers the provider's metadata (`<issuer>/.well-known/openid-configuration`). An issuer
   * that cannot be reached or answers nonsense is an error naming its URL.
   */
  static async discover(settings: OidcSettings, clientSecret: string): Promise<OidcClient> {
    const insecure = settings.issuer.protocol === "http:";
    let config: client.Configuration;
    try {
      config = await client.discovery(
        settings.issuer,
        settings.clientId,
        clientSecret,
        undefined,
        insecure ? { execute: [client.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
      );
    } catch (err) {
      const why = err instanceof Error ? (describeCause(err) ?? err.message) : String(err);
      throw new OidcDiscoveryError(
        `OIDC issuer ${settings.issuer.href} could not be discovered (${new URL(".well-known/openid-configuration", withSlash(settings.issuer)).href}): ${why}`,
        { cause: err },
      );
    }
    // ID token signatures are checked against the provider's keys too (by default openid-client
    // trusts the TLS connection to the token endpoint instead).
    client.enableNonRepudiationChecks(config);
    const offered = config.serverMetadata().scopes_supported;
    // offline_access asks for a refresh token (Keycloak, Dex, most providers); Google does not
    // list it and uses access_type=offline instead (sent too, see authorizationUrl).
    const scope = [
      "openid",
      "email",
      "profile",
      ...(offered?.includes("offline_access") ? ["offline_access"] : []),
    ];
    return new OidcClient(config, config.serverMetadata().issuer, scope.join(" "));
  }

  /** The provider's authorization URL for one login attempt. */
  async authorizationUrl(p: {
    redirectUri: string;
    state: string;
    nonce: string;
    codeVerifier: string;
  }): Promise<URL> {
    return client.buildAuthorizationUrl(this.config, {
      redirect_uri: p.redirectUri,
      scope: this.scope,
      response_type: "code",
      state: p.state,
      nonce: p.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(p.codeVerifier),
      code_challenge_method: "S256",
      // A refresh token on every login (Google issues one only with these two).
      access_type: "offline",
      prompt: "consent",
    });
  }

  /**
   * Exchanges the code of the provider's redirect to `currentUrl`. Every refusal is
   * ERR_BAD_REQUEST with a short reason; a provider that cannot be reached is ERR_UNAVAILABLE.
   */
  async exchange(
    currentUrl: URL,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<LoginTokens> {
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(this.config, currentUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw loginFailure(err);
    }
    const idToken = tokens.claims();
    if (!idToken)
      throw new CacheroachError("ERR_BAD_REQUEST", "login refused: the provider sent no ID token");
    const claims: Record<string, unknown> = { ...idToken };
    if (claims["email"] === undefined && tokens.access_token) {
      // Providers that follow the spec to the letter put scope claims only in UserInfo when
      // they issue an access token; the subject must be the ID token's.
      try {
        const info = await client.fetchUserInfo(this.config, tokens.access_token, idToken.sub);
        for (const k of ["email", "email_verified", "name"]) if (info[k] !== undefined) claims[k] = info[k];
      } catch (err) {
        throw loginFailure(err);
      }
    }
    return {
      claims,
      refreshToken: tokens.refresh_token,
      expiresAt: expiry(tokens.expiresIn()),
    };
  }

  /** Uses a refresh token at the provider's token endpoint. */
  async refresh(refreshToken: string): Promise<RefreshOutcome> {
    try {
      const tokens = await client.refreshTokenGrant(this.config, refreshToken);
      return { ok: true, expiresAt: expiry(tokens.expiresIn()), refreshToken: tokens.refresh_token };
    } catch (err) {
      if (err instanceof client.ResponseBodyError && err.status === 400)
        return { ok: false, permanent: true, reason: err.error };
      return {
        ok: false,
        permanent: false,
        reason: err instanceof Error ? (describeCause(err) ?? err.message) : String(err),
      };
    }
  }
}

/** The issuer could not be discovered at start-up. */
export class OidcDiscoveryError extends Error {
  override readonly name = "OidcDiscoveryError";
}

function expiry(expiresIn: number | undefined): Date {
  return new Date(
    Date.now() + (expiresIn !== undefined && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_VALIDITY_MS),
  );
}

function withSlash(u: URL): URL {
  return u.href.endsWith("/") ? u : new URL(`${u.href}/`);
}

/** The network-level cause of a failed fetch ("connect ECONNREFUSED …"), if any. */
function describeCause(err: Error): string | undefined {
  const cause = err.cause as { message?: string; code?: string } | undefined;
  if (cause && typeof cause.message === "string") return `${err.message}: ${cause.message}`;
  return undefined;
}

/** openid-client failure codes that say the provider, not the login, is the problem. */
const TEMPORARY_CODES = new Set([
  "OAUTH_TIMEOUT",
  "OAUTH_ABORT",
  "OAUTH_RESPONSE_IS_NOT_CONFORM",
  "OAUTH_RESPONSE_IS_NOT_JSON",
]);

/** True when a failed call to the provider may work when tried again. */
function isTemporary(err: unknown): boolean {
  if (err instanceof client.ResponseBodyError) return err.status >= 500;
  if (err instanceof client.ClientError) return err.code !== undefined && TEMPORARY_CODES.has(err.code);
  return err instanceof TypeError; // fetch failed: refused, reset, DNS
}

/** A failed code exchange as the answer the browser gets (400 with a short reason, or 503). */
function loginFailure(err: unknown): CacheroachError {
  if (isTemporary(err))
    return new CacheroachError(
      "ERR_UNAVAILABLE",
      "login failed: the identity provider cannot be reached or failed; try again",
      { cause: err },
    );
  let reason: string;
  if (err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError)
    reason = `the identity provider answered ${err.error}${err.error === "invalid_grant" ? " (the code was already used, has expired or was not issued to this server)" : ""}`;
  else if (err instanceof client.ClientError)
    // The library's cause names the check that failed, e.g. unexpected JWT "aud" (audience) claim value.
    reason = err.cause instanceof Error ? err.cause.message : err.message;
  else reason = err instanceof Error ? err.message : String(err);
  return new CacheroachError("ERR_BAD_REQUEST", `login refused: ${reason}`, { cause: err });
}
