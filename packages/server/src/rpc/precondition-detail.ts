import type { HandlerContext } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import { CAP } from "../auth/session.js";
import type { CacheroachError } from "../errors.js";
import { PreconditionFailed } from "../store/file-store.js";

/**
 * For RPC handlers that write with preconditions: a function that gives a failed precondition its
 * detailed message (the path's current version or content hash) when the caller may read that
 * path, and returns any other error unchanged. A caller with write alone learns only that the
 * precondition failed (docs/security.md: errors reveal only what the caller may read).
 */
export function preconditionDetail(
  authz: Authorizer,
  ctx: HandlerContext,
  tenantId: string,
): <E>(err: E) => Promise<E | CacheroachError> {
  const session = ctx.values.get(kSession);
  const mayRead = async (path: string) =>
    session !== undefined && (await authz.may(session, { caps: CAP.read, tenantId, path }));
  return (err) => PreconditionFailed.revealIf(err, mayRead);
}
