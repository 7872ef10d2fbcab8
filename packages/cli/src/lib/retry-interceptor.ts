/**
 * Retrying calls the server reports as temporarily unavailable (its database restarting,
 * read-only or full), for every method the API declares safe to repeat.
 */
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Environment variable: how many seconds a call keeps being retried (default 15; 0 = never). */
export const RETRY_SECONDS_ENV = "CACHEROACH_RETRY_SECONDS";

/** Metadata key marking an error this interceptor already retried, so callers do not retry it again. */
export const GAVE_UP_HEADER = "cacheroach-retries-exhausted";

/** The retry budget from the environment (seconds → ms); a bad value is a usage error. */
export function retryBudgetFromEnv(): number {
  const v = process.env[RETRY_SECONDS_ENV];
  if (v === undefined || v === "") return 15_000;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 3600) {
    throw new Error(`${RETRY_SECONDS_ENV}=${v} must be a number of seconds from 0 to 3600`);
  }
  return n * 1000;
}

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
 * before their first message. Waits what Retry-After says (at least the exponential backoff,
 * 0.5 s doubling up to 4 s), within the budget. A server that cannot be reached at all fails at
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
    const deadline = Date.now() + opts.budgetMs;
    for (let attempt = 1; ; attempt++) {
      const tryReq = input ? { ...req, message: iterate(input) } : req;
      try {
        const res = await next(tryReq as typeof req);
        if (!res.stream) return res;
        const it = res.message[Symbol.asyncIterator]();
        const first = await it.next();
        return { ...res, message: replay(first, it) };
      } catch (err) {
        const ce = ConnectError.from(err);
        const delay = retryDelay(ce, attempt);
        if (delay === undefined || req.signal.aborted) throw err;
        if (Date.now() + delay > deadline) throw gaveUp(ce, attempt);
        opts.onRetry?.(name, attempt, delay, ce);
        await sleep(delay, req.signal);
      }
    }
  };
}

/** The wait before the next attempt, or undefined when the error is not one to retry. */
function retryDelay(err: ConnectError, attempt: number): number | undefined {
  if (err.code !== Code.Unavailable) return undefined;
  const header = err.metadata.get("retry-after");
  if (header === null) return undefined;
  const seconds = Number(header);
  const backoff = Math.min(4000, 500 * 2 ** (attempt - 1));
  const asked = Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 60) * 1000 : 0;
  return Math.max(asked, backoff) * (0.9 + Math.random() * 0.2);
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
