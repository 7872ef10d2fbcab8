import type { Interceptor } from "@connectrpc/connect";
import { CacheroachError } from "../errors.js";
import type { Authorizer } from "./authorizer.js";
import { kSession } from "./call-context.js";
import { methodKey, POLICY, type PolicyContext } from "./policy.js";
import type { Need, SessionInfo } from "./session.js";

/**
 * Enforces {@link POLICY} before any handler runs: a method without a rule is refused; "super"
 * and "authenticated" methods need such a session; a rule's `need` (capabilities at locations
 * computed from the request) must be met. Runs after the authentication interceptor.
 */
export function createAuthorizationInterceptor(authz: Authorizer, ctx: PolicyContext): Interceptor {
  return (next) => async (req) => {
    const method = methodKey(req.method);
    const rule = POLICY.get(method);
    if (!rule) throw new CacheroachError("ERR_PERMISSION_DENIED", `no access policy for ${method}`);
    const session = req.contextValues.get(kSession);
    if (rule.access !== "public" && !session) {
      throw new CacheroachError(
        "ERR_UNAUTHENTICATED",
        "not logged in: send a bearer token (cacheroach bootstrap or auth set)",
      );
    }
    if (rule.access === "super" && session?.scope.kind !== "super") {
      throw new CacheroachError("ERR_SUPER_REQUIRED", `${method} needs a super session`);
    }
    if (!req.stream) {
      if (rule.need && session) await requireAll(authz, session, rule.need(req.message, ctx));
      return next(req);
    }
    // Server-streaming: the single request message arrives as an iterable; check it first.
    const it = req.message[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) throw new CacheroachError("ERR_BAD_REQUEST", "missing request message");
    if (rule.need && session) await requireAll(authz, session, rule.need(first.value, ctx));
    return next({ ...req, message: replay(first.value, it) });
  };
}

async function requireAll(authz: Authorizer, s: SessionInfo, need: Need | readonly Need[]): Promise<void> {
  const needs: readonly Need[] = Array.isArray(need) ? need : [need as Need];
  // A batch usually names many paths under the same grant; check each distinct need once.
  const seen = new Set<string>();
  for (const n of needs) {
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
