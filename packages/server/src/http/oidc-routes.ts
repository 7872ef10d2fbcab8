import { toJson } from "@bufbuild/protobuf";
import { SessionSchema } from "@cacheroach/proto";
import type { Authorizer } from "../auth/authorizer.js";
import {
  LOGIN_COOKIE,
  LOGIN_COOKIE_SECONDS,
  LOGIN_SESSION_DAYS,
  type OidcLogin,
} from "../auth/oidc-login.js";
import type { SessionInfo } from "../auth/session.js";
import { toSession } from "../auth/session-message.js";
import { CacheroachError } from "../errors.js";
import type { HttpRequest } from "../net/node-http.js";
import type { PrincipalStore } from "../store/principal-store.js";
import type { SessionStore } from "../store/session-store.js";
import { readCookie, SESSION_COOKIE, setCookie } from "./cookies.js";
import { MethodNotAllowed } from "./error-answer.js";
import { type PageUser, sendCliHandoffPage, sendLandingPage, sendLoggedOutPage } from "./login-pages.js";
import type { Incoming } from "./request-context.js";
import { findToken, sessionOf } from "./request-session.js";
import type { Site } from "./site.js";

/** Paths of the login routes. */
export const OIDC_PATHS = {
  login: "/_/oidc/login",
  receive: "/_/oidc/receive",
  logout: "/_/oidc/logout",
  provision: "/_/v0/provision",
} as const;

/** What the login routes need. */
export interface OidcRouteDeps {
  /** The login flow; undefined when OIDC is off. */
  readonly login?: OidcLogin | undefined;
  readonly authz: Authorizer;
  readonly sessions: SessionStore;
  /** Who a landing page greets (none: only the principal's id). */
  readonly principals?: PrincipalStore;
  readonly site: Site;
}

/** The largest form a login route reads (a port and a state). */
const MAX_FORM_BYTES = 4096;

/**
 * The browser side of OIDC: `/_/oidc/login` (start), `/_/oidc/receive` (the provider's redirect),
 * `/_/oidc/logout` (POST: revoke the cookie's session), `/_/v0/provision` (landing page; logged
 * out: the login; `?port=`: a `cacheroach auth login` waiting on this computer). Returns false
 * when the path is none of them.
 */
export async function handleOidcRoute(incoming: Incoming, deps: OidcRouteDeps): Promise<boolean> {
  switch (incoming.path) {
    case OIDC_PATHS.login:
      onlyMethods(incoming.req, ["GET"]);
      await startLogin(
        incoming,
        deps,
        incoming.url.searchParams.get("next") ?? OIDC_PATHS.provision,
        undefined,
      );
      return true;
    case OIDC_PATHS.receive:
      onlyMethods(incoming.req, ["GET"]);
      await receive(incoming, deps);
      return true;
    case OIDC_PATHS.logout:
      onlyMethods(incoming.req, ["POST"]);
      await logout(incoming, deps);
      return true;
    case OIDC_PATHS.provision:
      onlyMethods(incoming.req, ["GET", "POST"]);
      await provision(incoming, deps);
      return true;
    default:
      return false;
  }
}

function onlyMethods(req: HttpRequest, methods: string[]): void {
  if (!methods.includes(req.method ?? "GET"))
    throw new MethodNotAllowed(`this login route answers ${methods.join(" and ")} only`, methods.join(", "));
}

function requireLogin(deps: OidcRouteDeps, what: string): OidcLogin {
  if (!deps.login)
    throw new CacheroachError(
      "ERR_OIDC_OFF",
      `${what}: OIDC is off on this server (its operator starts it with --oidc-issuer to turn it on); log in with a token instead: cacheroach auth set`,
    );
  return deps.login;
}

/** The redirect URL registered at the provider: this server's URL + /_/oidc/receive. */
async function redirectUri(req: HttpRequest, site: Site): Promise<string> {
  return `${await site.baseUrl(req)}${OIDC_PATHS.receive}`;
}

async function startLogin(
  incoming: Incoming,
  deps: OidcRouteDeps,
  destination: string,
  cli: { port: number; state: string } | undefined,
): Promise<void> {
  const login = requireLogin(deps, "cannot log in");
  const { req, res } = incoming;
  const { url, cookie } = await login.start({
    redirectUri: await redirectUri(req, deps.site),
    destination,
    cli,
  });
  setCookie(res, LOGIN_COOKIE, cookie, {
    secure: deps.site.secureCookies(req),
    maxAgeSeconds: LOGIN_COOKIE_SECONDS,
  });
  res.writeHead(302, { location: url.href, "cache-control": "no-store" });
  res.end();
}

async function receive(incoming: Incoming, deps: OidcRouteDeps): Promise<void> {
  const login = requireLogin(deps, "cannot finish a login");
  const { req, res, url } = incoming;
  const secure = deps.site.secureCookies(req);
  const cookie = readCookie(headerText(req.headers["cookie"]), LOGIN_COOKIE);
  // The attempt is over, whatever its outcome: its cookie goes (an error answer keeps this header).
  setCookie(res, LOGIN_COOKIE, "", { secure, maxAgeSeconds: 0 });
  const current = new URL(await redirectUri(req, deps.site));
  current.search = url.search;
  const done = await login.finish(current, cookie);
  setCookie(res, SESSION_COOKIE, done.token, { secure, maxAgeSeconds: LOGIN_SESSION_DAYS * 86_400 });
  const user = await pageUser(deps, done.principalId);
  if (done.cli) {
    // The user just logged in for this CLI: hand it a session of its own.
    return handoff(incoming, deps, user, done.cli);
  }
  res.writeHead(302, { location: done.destination, "cache-control": "no-store" });
  res.end();
}

async function logout(incoming: Incoming, deps: OidcRouteDeps): Promise<void> {
  const { req, res, url } = incoming;
  // sessionOf refuses a cookie-authenticated POST that is not same-origin.
  const found = findToken(req, url);
  let revoked = false;
  if (found) {
    const { session } = await sessionOf(req, url, deps);
    if (session?.id !== undefined) revoked = (await deps.sessions.revoke(session.id)) > 0;
  }
  setCookie(res, SESSION_COOKIE, "", { secure: deps.site.secureCookies(req), maxAgeSeconds: 0 });
  sendLoggedOutPage(res, revoked);
}

async function provision(incoming: Incoming, deps: OidcRouteDeps): Promise<void> {
  const { req, url } = incoming;
  const post = req.method === "POST";
  const params = post ? await readForm(req) : url.searchParams;
  const cli = cliParams(params);
  if (post && !cli)
    throw new CacheroachError("ERR_BAD_REQUEST", "a POST to /_/v0/provision needs port and state");
  const session = await loggedInSession(incoming, deps);
  if (session?.scope.kind !== "principal") {
    if (session)
      throw new CacheroachError(
        "ERR_PERMISSION_DENIED",
        "the landing page is for login sessions (of a principal)",
      );
    if (post) throw new CacheroachError("ERR_UNAUTHENTICATED", "log in first: GET /_/v0/provision");
    return startLogin(incoming, deps, OIDC_PATHS.provision, cli);
  }
  const user = await pageUser(deps, session.principalId);
  if (post && cli) return handoff(incoming, deps, user, cli);
  sendLandingPage(incoming.res, user, cli);
}

/** Issues the CLI its own session and posts it to the CLI's loopback listener. */
async function handoff(
  incoming: Incoming,
  deps: OidcRouteDeps,
  user: PageUser,
  cli: { port: number; state: string },
): Promise<void> {
  const login = requireLogin(deps, "cannot log in the CLI");
  const { session, token } = await login.issueSession(user.principalId, "created by cacheroach auth login");
  const info: SessionInfo = session;
  const config = {
    server: await deps.site.baseUrl(incoming.req),
    token,
    session: toJson(SessionSchema, toSession(info)),
  };
  sendCliHandoffPage(incoming.res, user, cli, config);
}

/**
 * The session of a request to the landing page, or undefined when it presents none. A browser
 * whose cookie no longer works (expired, revoked, or its login must be renewed) counts as logged
 * out, so it is led through the login again. A cookie-authenticated POST must be same-origin
 * (sessionOf refuses it otherwise).
 */
async function loggedInSession(incoming: Incoming, deps: OidcRouteDeps): Promise<SessionInfo | undefined> {
  const { req, url } = incoming;
  const found = findToken(req, url);
  if (!found) return undefined;
  try {
    return (await sessionOf(req, url, deps)).session;
  } catch (err) {
    const stale =
      err instanceof CacheroachError &&
      (err.code === "ERR_UNAUTHENTICATED" || err.code === "ERR_LOGIN_REQUIRED") &&
      found.source === "cookie" &&
      req.method === "GET";
    if (stale) return undefined;
    throw err;
  }
}

async function pageUser(deps: OidcRouteDeps, principalId: string): Promise<PageUser> {
  const p = await deps.principals?.get(principalId);
  const name = p?.claims["name"];
  return { principalId, email: p?.email ?? "", name: typeof name === "string" ? name : "" };
}

/** `port` (1024..65535) and `state` (the CLI's random value) of a CLI login, or undefined. */
function cliParams(params: URLSearchParams): { port: number; state: string } | undefined {
  const port = params.get("port");
  if (port === null) return undefined;
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1024 || Number(port) > 65535)
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `port ${JSON.stringify(port.slice(0, 20))} is not a port of 1024..65535`,
    );
  const state = params.get("state") ?? "";
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(state))
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      "state must be the CLI's random value (16..128 of A-Z a-z 0-9 _ -)",
    );
  return { port: Number(port), state };
}

async function readForm(req: HttpRequest): Promise<URLSearchParams> {
  const type = headerText(req.headers["content-type"]) ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded"))
    throw new CacheroachError("ERR_BAD_REQUEST", "expected a form (application/x-www-form-urlencoded)");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new CacheroachError("ERR_TOO_LARGE", "the form is too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join("; ") : v;
}
