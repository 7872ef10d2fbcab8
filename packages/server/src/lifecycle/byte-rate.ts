import { setTimeout as sleep } from "node:timers/promises";

/** The clock a ByteRate reads and waits on (tests pass their own). */
export interface RateClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Waits `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const REAL_CLOCK: RateClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined),
};

/** Unused rate banked at most (ms of it): after a pause, one second's worth may go unpaced. */
const CREDIT_MS = 1000;

/**
 * Paces a reader to an average of `bytesPerSecond` (0: no limit). After each read of `bytes`,
 * {@link pace} waits until the reads so far fit the rate (the time the reads themselves took
 * counts), so the database sees short bursts, never a sustained full-speed scan.
 */
export class ByteRate {
  /** When (clock ms) the bytes read so far are paid for. */
  private paidUntil = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: RateClock = REAL_CLOCK,
  ) {}

  /** Accounts for `bytes` just read and waits as long as the rate asks; aborts with `signal`. */
  async pace(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond <= 0 || bytes <= 0) return;
    const now = this.clock.now();
    this.paidUntil = Math.max(this.paidUntil, now - CREDIT_MS) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.paidUntil - now;
    if (wait >= 1) await this.clock.sleep(wait, signal);
  }
}
