import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { isClientDisconnect, toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Authorizer } from "./authorizer.js";
import { POLICY, type PolicyContext } from "./policy.js";
import { type Need, type SessionInfo, tokenKind } from "./session.js";

/** The caller's session, set by the auth interceptor for every handler (undefined: anonymous). */
export const kSession = createContextKey<SessionInfo | undefined>(undefined, {
  description: "cacheroach session",
});
/** The caller's raw bearer token (handlers that mint URLs under it need it). */
export const kToken = createContextKey<string | undefined>(undefined, { description: "cacheroach token" });

/**
 * The one interceptor that enforces {@link POLICY}: authenticates the bearer token, applies the
 * method's rule (deny when a method has none), puts the session in the context, and converts
 * every error — also those raised while streaming — into a ConnectError with a safe message.
 */
export function createAuthInterceptor(authz: Authorizer, ctx: PolicyContext, log: Logger): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    try {
      const rule = POLICY[method];
      if (!rule) throw new ConnectError(`no access policy for ${method}`, Code.PermissionDenied);
      const header = req.header.get("authorization") ?? "";
      const m = /^bearer\s+(\S+)$/i.exec(header.trim());
      if (header && !m)
        throw new ConnectError('authorization header must be "Bearer <token>"', Code.Unauthenticated);
      const token = m?.[1];
      const session = token ? await authz.authenticate(token) : undefined;
      if (session && tokenKind(session) === "signed-url") {
        // Good for reading its one file over HTTP and nothing else: not for minting more URLs
        // (Files.Retrieve), nor for loading the session it was minted under.
        throw new ConnectError(
          "a signed-URL token only reads its one file over HTTP; it cannot call the API",
          Code.PermissionDenied,
        );
      }
      if (rule.access !== "public" && !session) {
        throw new ConnectError(
          "not logged in: send a bearer token (cacheroach bootstrap or auth set)",
          Code.Unauthenticated,
        );
      }
      if (rule.access === "super" && session?.scope.kind !== "super") {
        throw new ConnectError(`${method} needs a super session`, Code.PermissionDenied);
      }
      req.contextValues.set(kSession, session);
      req.contextValues.set(kToken, token);

      if (!req.stream) {
        if (rule.need && session) await requireAll(authz, session, rule.need(req.message, ctx));
        return await next(req);
      }
      // Server-streaming: the single request message arrives as an iterable; check it first.
      const it = req.message[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) throw new ConnectError("missing request message", Code.InvalidArgument);
      if (rule.need && session) await requireAll(authz, session, rule.need(first.value, ctx));
      const res = await next({ ...req, message: replay(first.value, it) });
      if (!res.stream) return res;
      return { ...res, message: convertErrors(res.message, method, log, req.signal) };
    } catch (err) {
      throw report(err, method, log, req.signal);
    }
  };
}

async function requireAll(authz: Authorizer, s: SessionInfo, need: Need | readonly Need[]): Promise<void> {
  if (!Array.isArray(need)) return authz.require(s, need as Need);
  // A batch usually names many paths under the same grant; check each distinct need once.
  const seen = new Set<string>();
  for (const n of need as readonly Need[]) {
    const key = `${n.caps}|${n.tenantId}|${n.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    await authz.require(s, n);
  }
}

async function* replay<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  yield first;
  for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
}

async function* convertErrors<T>(
  src: AsyncIterable<T>,
  method: string,
  log: Logger,
  signal: AbortSignal,
): AsyncGenerator<T> {
  try {
    yield* src;
  } catch (err) {
    throw report(err, method, log, signal);
  }
}

function report(err: unknown, method: string, log: Logger, signal: AbortSignal): ConnectError {
  const ce = toConnectError(err);
  // A client that hung up (its call's signal aborted) is routine, not a server error.
  if (signal.aborted && isClientDisconnect(err)) {
    log.info({ method, err: err instanceof Error ? err.message : String(err) }, "rpc client went away");
  } else if (ce.code === Code.Internal || ce.code === Code.Unknown) {
    log.error(
      { method, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) },
      "rpc failed",
    );
  } else if (ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated) {
    log.info({ method, code: Code[ce.code], reason: ce.rawMessage }, "rpc denied");
  }
  return ce;
}
