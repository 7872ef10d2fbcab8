import type { Logger } from "../logger.js";

/**
 * A background job run every `intervalMs` (never two runs at once), and soon after `kick()`. A
 * failed run is logged and the schedule goes on: the database may be down for a while and the
 * next run simply tries again. `stop()` ends the schedule and waits for a run in progress (which
 * sees its abort signal and returns early).
 */
export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private kicked = false;
  readonly abort = new AbortController();

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly job: (signal: AbortSignal) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Starts the schedule (the first run after one interval); an interval of 0 runs only when kicked. */
  start(): void {
    if (this.intervalMs <= 0 || this.stopped) return;
    this.log.info({ job: this.name, intervalMs: this.intervalMs }, "scheduled job on");
    this.schedule(this.intervalMs);
  }

  /** Runs the job soon (after a run in progress), whatever the interval. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.kicked = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops the schedule; resolves once a run in progress has returned. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.kicked) {
          this.kicked = false;
          this.schedule(0);
        } else if (this.intervalMs > 0) this.schedule(this.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    try {
      await this.job(this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.log.warn(
        { job: this.name, err: err instanceof Error ? err.message : String(err) },
        "background job failed",
      );
    }
  }
}
