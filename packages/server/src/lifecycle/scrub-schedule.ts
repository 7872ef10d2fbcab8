import type { Logger } from "../logger.js";
import type { Scrubber } from "./scrub.js";

/**
 * The scheduled scrub (`--scrub-interval`): a scrub of every tenant, the first one interval after
 * start-up and each next one an interval after the previous one ended (runs never overlap). The
 * scrub logs its own summary line and problems; a run that fails is logged and the schedule goes
 * on. {@link stop} ends a run in progress and waits for it (server shutdown).
 */
export class ScrubSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly scrubber: Scrubber,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts the schedule; does nothing when the interval is 0 (off). */
  start(): void {
    if (this.intervalMs <= 0 || this.stopping.signal.aborted) return;
    this.log.info({ intervalMs: this.intervalMs }, "scheduled scrub on");
    this.next();
  }

  private next(): void {
    if (this.stopping.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.next();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** One scrub of every tenant, its events consumed here (the scrub logs what it finds). */
  private async runOnce(): Promise<void> {
    try {
      for await (const _ of this.scrubber.run({ signal: this.stopping.signal, trigger: "schedule" })) {
        // Problems and the summary are logged by the scrub itself; metrics read its counters.
      }
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "scheduled scrub failed");
    }
  }

  /** Stops the schedule and any run in progress; resolves once that run has ended. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
