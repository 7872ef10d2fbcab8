import { Code, type ConnectError, type Interceptor } from "@connectrpc/connect";
import { methodKey } from "../auth/policy.js";
import { isClientDisconnect, toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * The RPC boundary for errors, outermost: every error of a call — also those raised while a
 * response streams — becomes a ConnectError with a safe message and its stable code in the
 * metadata (errors.ts), and is logged by its class: internal errors with their stack, denials at
 * info, a client that hung up at info.
 */
export function createErrorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const method = methodKey(req.method);
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: convertErrors(res.message, method, log, req.signal) };
    } catch (err) {
      throw report(err, method, log, req.signal);
    }
  };
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
