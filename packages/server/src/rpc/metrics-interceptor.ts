import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { methodKey } from "../auth/policy.js";

/** Receives one finished RPC: "Service/Method", a Connect code name ("ok" on success), seconds. */
export type RpcObserver = (method: string, code: string, seconds: number) => void;

/**
 * Outermost interceptor: times every RPC to the end of its answer (a server stream ends when its
 * last message is sent or it fails) and reports its outcome with the code the client sees.
 */
export function createMetricsInterceptor(observe: RpcObserver): Interceptor {
  return (next) => async (req) => {
    const method = methodKey(req.method);
    const start = performance.now();
    const done = (err?: unknown) =>
      observe(
        method,
        err === undefined ? "ok" : codeName(ConnectError.from(err).code),
        (performance.now() - start) / 1000,
      );
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      done(err);
      throw err;
    }
    if (!res.stream) {
      done();
      return res;
    }
    return { ...res, message: observed(res.message, done) };
  };
}

async function* observed<T>(src: AsyncIterable<T>, done: (err?: unknown) => void): AsyncGenerator<T> {
  let outcome: unknown = new ConnectError("the client stopped reading", Code.Canceled);
  try {
    yield* src;
    outcome = undefined;
  } catch (err) {
    outcome = err;
    throw err;
  } finally {
    // Also reached when the consumer stops early (the client went away): counted as canceled.
    done(outcome);
  }
}

/** Connect's wire name of a code: Code.NotFound → "not_found". */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
