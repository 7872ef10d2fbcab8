/** Retrying idempotent RPCs with exponential backoff. */
import { ConnectError } from "@connectrpc/connect";
import { codeName, isRetryable } from "./errors.js";
import { retryBudgetFromEnv } from "./retry-interceptor.js";

/** Retry policy. */
export interface RetryOptions {
  /** Total attempts, including the first (default 5). */
  attempts?: number;
  /** Delay before the first retry in ms (default 250); doubles each time, with jitter. */
  baseDelayMs?: number;
  /** Upper bound of one delay (default 5000). */
  maxDelayMs?: number;
  /** Called before each retry (for verbose logging). */
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  /** Decides whether an error is worth retrying (default: transient Connect codes). */
  retryable?: (err: unknown) => boolean;
  /** No retry starts later than this many ms after the first attempt (default: CACHEROACH_RETRY_SECONDS). */
  budgetMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, or the attempts are used up. `fn`
 * must be safe to repeat with the same input. The last error is rethrown with the attempt count
 * added to its message when retries were made.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 5000;
  const retryable = opts.retryable ?? isRetryable;
  const deadline = Date.now() + (opts.budgetMs ?? retryBudgetFromEnv());
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!retryable(err)) throw err;
      const backoff = Math.min(max, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      const delay = Math.max(backoff, retryAfterMs(err));
      if (attempt >= attempts || Date.now() + delay > deadline) {
        const ce = ConnectError.from(err);
        throw new ConnectError(
          `${ce.rawMessage || codeName(ce.code)}${attempt > 1 ? ` (gave up after ${attempt} attempts)` : ""}`,
          ce.code,
          ce.metadata,
          undefined,
          ce.cause ?? err,
        );
      }
      opts.onRetry?.(attempt, err, delay);
      await sleep(delay);
    }
  }
}

/** What the server's Retry-After asked for, in ms (0 when it said nothing usable; at most 60 s). */
function retryAfterMs(err: unknown): number {
  const v = err instanceof ConnectError ? err.metadata.get("retry-after") : null;
  const seconds = v === null ? Number.NaN : Number(v);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 0;
}
