/** Retrying idempotent RPCs with exponential backoff. */
import { ConnectError } from "@connectrpc/connect";
import { codeName, isRetryable } from "./errors.js";

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
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!retryable(err)) throw err;
      if (attempt >= attempts) {
        const ce = ConnectError.from(err);
        throw new ConnectError(
          `${ce.rawMessage || codeName(ce.code)} (gave up after ${attempts} attempts)`,
          ce.code,
          ce.metadata,
          undefined,
          ce.cause ?? err,
        );
      }
      const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      opts.onRetry?.(attempt, err, delay);
      await sleep(delay);
    }
  }
}
