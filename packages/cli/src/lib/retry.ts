/**
 * Retrying with exponential backoff: the one loop every retry of the CLI goes through (idempotent
 * RPCs, the transport's retry of unavailable calls in retry-interceptor.ts, and the connection
 * attempts of a download). Waits use node:timers/promises and end early on the caller's
 * AbortSignal where there is one.
 */
import { setTimeout as wait } from "node:timers/promises";
import { ConnectError } from "@connectrpc/connect";
import { codeName, isRetryable, RETRY_SECONDS_ENV } from "./errors.js";

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

/** How long to wait between attempts. */
export interface Backoff {
  /** The wait before the first retry, in ms; it doubles with each further one. */
  baseMs: number;
  /** Upper bound of the doubling, in ms. */
  maxMs: number;
  /** Random spread as a fraction (0.25: up to a quarter longer or shorter), so clients do not retry in step. */
  jitter: number;
}

/**
 * The wait before retry number `attempt` (1 = the first retry): the exponential backoff, or what
 * the server asked for (`askedMs`, from Retry-After) when that is longer, spread by the jitter but
 * never shorter than the server asked.
 */
export function backoffDelay(attempt: number, backoff: Backoff, askedMs = 0): number {
  const exponential = Math.min(backoff.maxMs, backoff.baseMs * 2 ** (attempt - 1));
  const spread = 1 - backoff.jitter + 2 * backoff.jitter * Math.random();
  return Math.max(askedMs, Math.max(exponential, askedMs) * spread);
}

/** What the server's Retry-After asked for, in ms (0 when it said nothing usable; at most 60 s). */
export function retryAfterMs(err: unknown): number {
  const v = err instanceof ConnectError ? err.metadata.get("retry-after") : null;
  const seconds = v === null ? Number.NaN : Number(v);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 0;
}

/** Retry policy. */
export interface RetryOptions {
  /** Total attempts, including the first (default 5; Infinity leaves it to the budget). */
  attempts?: number;
  /** Delay before the first retry in ms (default 250); doubles each time, with jitter. */
  baseDelayMs?: number;
  /** Upper bound of one delay (default 5000). */
  maxDelayMs?: number;
  /** Random spread of each delay (default 0.25, see {@link Backoff}). */
  jitter?: number;
  /** Called before each retry (for verbose logging). */
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  /** Decides whether an error is worth retrying (default: transient Connect codes). */
  retryable?: (err: unknown) => boolean;
  /** No retry starts later than this many ms after the first attempt (default: CACHEROACH_RETRY_SECONDS). */
  budgetMs?: number;
  /** Stops retrying: once it is aborted, the last error is thrown instead of waiting. */
  signal?: AbortSignal;
  /**
   * The error to throw when the attempts or the budget are used up (default: the last error as a
   * ConnectError, its message saying how many attempts were made).
   */
  giveUp?: (err: unknown, attempts: number) => Error;
}

/** What `fn` of {@link withRetry} is told about the attempt it makes. */
export interface Attempt {
  /** 1 for the first attempt, counting up (and from 1 again after {@link progressed}). */
  readonly number: number;
  /**
   * Says this attempt made real progress before it failed (a download that received data): its
   * failure then counts as the first of a new row, with all attempts and the budget ahead of it.
   */
  progressed(): void;
}

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, or the attempts or the budget are used
 * up. `fn` must be safe to repeat. Retryable failures wait {@link backoffDelay} (honouring a
 * Retry-After in the error's metadata) before the next attempt.
 */
export async function withRetry<T>(
  fn: (attempt: Attempt) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const backoff: Backoff = {
    baseMs: opts.baseDelayMs ?? 250,
    maxMs: opts.maxDelayMs ?? 5000,
    jitter: opts.jitter ?? 0.25,
  };
  const retryable = opts.retryable ?? isRetryable;
  const giveUp = opts.giveUp ?? gaveUpAfter;
  const budget = opts.budgetMs ?? retryBudgetFromEnv();
  let deadline = Date.now() + budget;
  for (let number = 1; ; number++) {
    let progressed = false;
    try {
      return await fn({
        number,
        progressed: () => {
          progressed = true;
        },
      });
    } catch (err) {
      if (!retryable(err) || opts.signal?.aborted) throw err;
      if (progressed) {
        number = 1;
        deadline = Date.now() + budget;
      }
      const delay = backoffDelay(number, backoff, retryAfterMs(err));
      if (number >= attempts || Date.now() + delay > deadline) throw giveUp(err, number);
      opts.onRetry?.(number, err, delay);
      try {
        await wait(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
      } catch {
        throw err; // aborted while waiting
      }
    }
  }
}

/** The default of {@link RetryOptions.giveUp}. */
function gaveUpAfter(err: unknown, attempts: number): Error {
  const ce = ConnectError.from(err);
  return new ConnectError(
    `${ce.rawMessage || codeName(ce.code)}${attempts > 1 ? ` (gave up after ${attempts} attempts)` : ""}`,
    ce.code,
    ce.metadata,
    undefined,
    ce.cause ?? err,
  );
}
