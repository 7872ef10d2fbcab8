/**
 * Retrying with exponential backoff: the one loop every retry of the server goes through (database
 * statements and transactions in db/db.ts). Waits use node:timers/promises.
 */
import { setTimeout as wait } from "node:timers/promises";

/** Retry policy of {@link withRetry}. */
export interface RetryOptions {
  /** Total attempts, including the first. */
  readonly attempts: number;
  /** Whether a failure is worth another attempt. */
  readonly retryable: (err: unknown) => boolean;
  /** Delay before the first retry in ms; it doubles with each further one. Default 40. */
  readonly baseDelayMs?: number;
  /** Upper bound of one delay in ms. Default 2000. */
  readonly maxDelayMs?: number;
  /** Called before each retry (for logging). */
  readonly onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
}

/**
 * The wait before retry number `attempt` (1 = the first retry): exponential, capped, and
 * randomly shortened by up to half, so callers that failed together do not retry in step.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
}

/**
 * Runs `fn` until it succeeds, fails with an error `retryable` refuses, or has made `attempts`
 * attempts (the last error is thrown). `fn` must be safe to repeat.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const base = opts.baseDelayMs ?? 40;
  const max = opts.maxDelayMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const delay = backoffDelay(attempt, base, max);
      opts.onRetry?.(attempt, err, delay);
      await wait(delay);
    }
  }
}
