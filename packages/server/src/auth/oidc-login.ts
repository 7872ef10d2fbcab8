import * as client from "openid-client";
import { CacheroachError } from "../errors.js";
import { newId } from "../ids.js";
import type { PrincipalLoginStore } from "../store/principal-login-store.js";
import type { SessionRecord, SessionStore } from "../store/session-store.js";
import type { OidcClient } from "./oidc-client.js";
import type { SecretBox } from "./secret-box.js";
import { ALL_CAPS } from "./session.js";
import type { TokenSigner } from "./token-signer.js";

/** The cookie that binds one login attempt to the browser that started it. */
export const LOGIN_COOKIE = "cacheroach-oidc";
/** How long a login attempt may take at the provider (the login cookie's Max-Age). */
export const LOGIN_COOKIE_SECONDS = 600;
/** How long a session issued by an OIDC login lasts (the principal is re-validated meanwhile). */
export const LOGIN_SESSION_DAYS = 30;
/** Claims of the ID token that describe the login, not the person: not stored. */
const PROTOCOL_CLAIMS = [
  "aud",
  "azp",
  "exp",
  "iat",
  "nbf",
  "auth_time",
  "nonce",
  "at_hash",
  "c_hash",
  "sid",
  "acr",
  "amr",
  "jti",
];

/** A CLI waiting on a loopback port for the result of the login (`cacheroach auth login`). */
export interface CliHandoff {
  readonly port: number;
  /** The CLI's own random value, posted back to it so it knows the answer is to its request. */
  readonly state: string;
}

/** What the login cookie carries (signed, so it cannot be altered; not secret). */
interface Attempt {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** Where the browser goes afterwards: a path on this server. */
  readonly destination: string;
  readonly cli?: CliHandoff;
  /** When the attempt started (ms). */
  readonly at: number;
}

/** A finished login. */
export interface LoginResult {
  readonly principalId: string;
  readonly email: string;
  /** True when this login created the principal. */
  readonly created: boolean;
  /** The browser session: its JWT goes into the session cookie. */
  readonly session: SessionRecord;
  readonly token: string;
  readonly destination: string;
  readonly cli: CliHandoff | undefined;
}

/** What {@link OidcLogin} works with. */
export interface OidcLoginDeps {
  readonly oidc: OidcClient;
  readonly domains: ReadonlySet<string>;
  readonly principals: PrincipalLoginStore;
  readonly sessions: SessionStore;
  readonly signer: TokenSigner;
  /** Signs the login cookie. */
  readonly cookieBox: SecretBox;
  /** Encrypts refresh tokens at rest. */
  readonly tokenBox: SecretBox;
  /** Called after a login changed a principal's refresh state (the validator forgets its cache). */
  readonly onLogin?: (principalId: string) => void;
}

/**
 * The OIDC login, apart from HTTP: starting an attempt (the provider URL and the cookie binding it
 * to this browser), finishing it (every check, then the principal and its session), and issuing
 * further sessions of a principal (the CLI's).
 */
export class OidcLogin {
  constructor(private readonly deps: OidcLoginDeps) {}

  /** A new attempt: where to send the browser, and the login cookie's value. */
  async start(p: {
    redirectUri: string;
    destination: string;
    cli?: CliHandoff | undefined;
  }): Promise<{ url: URL; cookie: string }> {
    const attempt: Attempt = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
      destination: safeDestination(p.destination),
      ...(p.cli ? { cli: p.cli } : {}),
      at: Date.now(),
    };
    const url = await this.deps.oidc.authorizationUrl({
      redirectUri: p.redirectUri,
      state: attempt.state,
      nonce: attempt.nonce,
      codeVerifier: attempt.verifier,
    });
    return { url, cookie: this.deps.cookieBox.sign(JSON.stringify(attempt)) };
  }

  /**
   * Finishes the attempt the login cookie names with the provider's redirect to `currentUrl`:
   * the state must match the cookie's, the code is exchanged with its PKCE verifier, the ID token
   * must be valid (issuer, audience, expiry, signature, nonce), its email verified and in an
   * allowed domain. Only then is the principal created or updated and a session issued. Every
   * refusal is ERR_BAD_REQUEST with a short reason, and changes nothing.
   */
  async finish(currentUrl: URL, cookie: string | undefined): Promise<LoginResult> {
    const refuse = (why: string) => new CacheroachError("ERR_BAD_REQUEST", `login refused: ${why}`);
    const providerError = currentUrl.searchParams.get("error");
    if (providerError) throw refuse(`the identity provider answered ${providerError.slice(0, 100)}`);
    if (!cookie)
      throw refuse(
        "this browser has no login in progress (its login cookie is missing or expired); start again",
      );
    const attempt = this.readAttempt(cookie);
    if (!attempt) throw refuse("the login cookie is invalid or expired; start again");
    const state = currentUrl.searchParams.get("state");
    if (!state) throw refuse("the provider's answer has no state");
    if (state !== attempt.state) throw refuse("the state does not match this browser's login");
    if (!currentUrl.searchParams.get("code")) throw refuse("the provider's answer has no code");
    const tokens = await this.deps.oidc.exchange(currentUrl, {
      state: attempt.state,
      nonce: attempt.nonce,
      codeVerifier: attempt.verifier,
    });
    const email = this.allowedEmail(tokens.claims);
    const claims = Object.fromEntries(
      Object.entries(tokens.claims).filter(([k]) => !PROTOCOL_CLAIMS.includes(k)),
    );
    const { id, created } = await this.deps.principals.upsertByEmail({
      newId: newId(),
      claims,
      email,
      sealedRefreshToken: tokens.refreshToken ? this.deps.tokenBox.seal(tokens.refreshToken) : "",
      refreshAfter: tokens.expiresAt,
    });
    this.deps.onLogin?.(id);
    const { session, token } = await this.issueSession(id, "created by an OIDC login in a browser");
    return {
      principalId: id,
      email,
      created,
      session,
      token,
      destination: attempt.destination,
      cli: attempt.cli,
    };
  }

  /** A new login session of a principal: every capability, acting through its grants. */
  async issueSession(principalId: string, note: string): Promise<{ session: SessionRecord; token: string }> {
    const now = Math.floor(Date.now() / 1000) * 1000;
    const session: SessionRecord = {
      id: newId(),
      principalId,
      caps: ALL_CAPS,
      scope: { kind: "principal", principalId },
      issuedAt: new Date(now),
      expiresAt: new Date(now + LOGIN_SESSION_DAYS * 86_400_000),
      name: "",
      note,
      issuedBy: undefined,
    };
    await this.deps.sessions.insert(session);
    return { session, token: await this.deps.signer.sign(session) };
  }

  /** The verified, lower-cased email of the claims, if its domain may log in; else refused. */
  private allowedEmail(claims: Record<string, unknown>): string {
    const email = typeof claims["email"] === "string" ? claims["email"].trim().toLowerCase() : "";
    if (email === "")
      throw new CacheroachError("ERR_BAD_REQUEST", "login refused: the provider sent no email");
    if (claims["email_verified"] !== true)
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `login refused: the provider has not verified the email ${email}`,
      );
    const at = email.lastIndexOf("@");
    const domain = at > 0 ? email.slice(at + 1) : "";
    if (!this.deps.domains.has(domain))
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `login refused: ${email} is not in a domain allowed to log in here`,
      );
    return email;
  }

  private readAttempt(cookie: string): Attempt | undefined {
    const text = this.deps.cookieBox.verify(cookie);
    if (text === undefined) return undefined;
    let a: Attempt;
    try {
      a = JSON.parse(text) as Attempt;
    } catch {
      return undefined;
    }
    if (typeof a.at !== "number" || Date.now() - a.at > LOGIN_COOKIE_SECONDS * 1000) return undefined;
    return a;
  }
}

/** A destination must be a path on this server ("/…", not "//host"); anything else is "/". */
export function safeDestination(d: string): string {
  return d.startsWith("/") && !d.startsWith("//") && !d.startsWith("/\\") && !/[\r\n]/.test(d) ? d : "/";
}
