import { setTimeout as sleep } from "node:timers/promises";

/**
 * Paces a reader to an average of `bytesPerSecond` (0: no limit). After each read of `bytes`,
 * {@link pace} waits until the reads so far fit the rate: one read may go at full speed, then
 * the reader rests, so the database sees short bursts, never a sustained full-speed scan.
 */
export class ByteRate {
  /** When (performance.now() ms) the bytes read so far are paid for. */
  private paidUntil = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Accounts for `bytes` just read and waits as long as the rate asks; aborts with `signal`. */
  async pace(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond <= 0 || bytes <= 0) return;
    const now = performance.now();
    this.paidUntil = Math.max(this.paidUntil, now) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.paidUntil - now;
    if (wait >= 1) await sleep(wait, undefined, signal ? { signal } : undefined);
  }
}
