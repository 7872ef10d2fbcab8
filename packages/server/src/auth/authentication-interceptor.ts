import type { Interceptor } from "@connectrpc/connect";
import { CacheroachError } from "../errors.js";
import type { Authorizer } from "./authorizer.js";
import { kSession, kToken } from "./call-context.js";
import { tokenKind } from "./session.js";

/**
 * Who is calling: verifies the bearer token (only the Authorization header: RPCs never read
 * cookies) and puts the session and token in the call's context. Whether that session may make
 * the call is the authorization interceptor's job.
 */
export function createAuthenticationInterceptor(authz: Authorizer): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization") ?? "";
    const m = /^bearer\s+(\S+)$/i.exec(header.trim());
    if (header && !m)
      throw new CacheroachError("ERR_UNAUTHENTICATED", 'authorization header must be "Bearer <token>"');
    const token = m?.[1];
    const session = token ? await authz.authenticate(token) : undefined;
    if (session && tokenKind(session) === "signed-url") {
      // Good for reading its one file over HTTP and nothing else: not for minting more URLs
      // (Files.Retrieve), nor for loading the session it was minted under.
      throw new CacheroachError(
        "ERR_PERMISSION_DENIED",
        "a signed-URL token only reads its one file over HTTP; it cannot call the API",
      );
    }
    req.contextValues.set(kSession, session);
    req.contextValues.set(kToken, token);
    return next(req);
  };
}
