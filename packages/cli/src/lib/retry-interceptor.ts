/**
 * Retrying calls the server reports as temporarily unavailable (its database restarting,
 * read-only or full), for every method the API declares safe to repeat.
 */
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { GAVE_UP_HEADER } from "./errors.js";
import { withRetry } from "./retry.js";

/** How to retry; the defaults suit an interactive command. */
export interface RetryInterceptorOptions {
  /** How long after the first attempt a retry may still start, in ms. */
  budgetMs: number;
  /** Called before each retry (for --verbose). */
  onRetry?: (method: string, attempt: number, delayMs: number, err: ConnectError) => void;
}

/**
 * Repeats a call while the server answers `unavailable` with a Retry-After (the server's own
 * statement that the condition is temporary and nothing was done), for methods declared
 * NO_SIDE_EFFECTS or IDEMPOTENT in the proto: unary calls, and server-streaming calls that fail
 * before their first message. Waits what Retry-After says or the exponential backoff (0.5 s
 * doubling up to 4 s), whichever is longer, spread by a tenth but never shorter than Retry-After
 * (see backoffDelay in retry.ts), within the budget. A server that cannot be reached at all fails at
 * once: retrying a wrong URL only hides the mistake. An error it gave up on carries
 * {@link GAVE_UP_HEADER}, so outer retry loops do not multiply the attempts.
 */
export function retryUnavailable(opts: RetryInterceptorOptions): Interceptor {
  return (next) => async (req) => {
    const idempotent =
      req.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
      req.method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT;
    const replayable = !req.stream || req.method.methodKind === "server_streaming";
    if (!idempotent || !replayable || opts.budgetMs <= 0) return next(req);
    const name = `${req.service.typeName}/${req.method.name}`;
    // A server-streaming request is one message in an iterable: keep it to send it again.
    const input = req.stream ? await collect(req.message) : undefined;
    return withRetry(
      async () => {
        const tryReq = input ? { ...req, message: iterate(input) } : req;
        const res = await next(tryReq as typeof req);
        if (!res.stream) return res;
        const it = res.message[Symbol.asyncIterator]();
        const first = await it.next();
        return { ...res, message: replay(first, it) };
      },
      {
        attempts: Number.POSITIVE_INFINITY,
        budgetMs: opts.budgetMs,
        baseDelayMs: 500,
        maxDelayMs: 4000,
        jitter: 0.1,
        signal: req.signal,
        retryable: saysTemporary,
        onRetry: (attempt, err, delay) => opts.onRetry?.(name, attempt, delay, ConnectError.from(err)),
        giveUp: (err, attempts) => gaveUp(ConnectError.from(err), attempts),
      },
    );
  };
}

/** Unavailable with a Retry-After: the server's statement that the condition will pass. */
function saysTemporary(err: unknown): boolean {
  const ce = ConnectError.from(err);
  return ce.code === Code.Unavailable && ce.metadata.get("retry-after") !== null;
}

function gaveUp(err: ConnectError, attempts: number): ConnectError {
  const metadata = new Headers(err.metadata);
  metadata.set(GAVE_UP_HEADER, String(attempts));
  return new ConnectError(
    `${err.rawMessage} (still unavailable after ${attempts} attempts)`,
    err.code,
    metadata,
    undefined, // the server sends no details with unavailable
    err.cause ?? err,
  );
}

async function collect<T>(src: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const m of src) out.push(m);
  return out;
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

async function* replay<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncGenerator<T> {
  if (first.done) return;
  yield first.value;
  for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
}
