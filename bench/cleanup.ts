/**
 * Clean-up of everything a benchmark run creates: child processes, temp directories, the database.
 *
 * Every resource registers an undo step as soon as it exists; {@link Cleanup.run} executes them in
 * reverse order (each at most once, each bounded by a timeout, errors reported but not fatal), at the
 * end of a run, on an error, and on SIGINT/SIGTERM/SIGHUP. A second signal during clean-up exits at once.
 */

/** A registry of undo steps, run last-in first-out. */
export class Cleanup {
  private readonly steps: { name: string; undo: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;
  private readonly first: (() => void)[] = [];

  /** Registers a synchronous step that runs before all others (whenever it was registered). */
  addFirst(f: () => void): void {
    this.first.push(f);
  }

  /** Registers an undo step; returns a function that runs it now (and removes it from the registry). */
  add(name: string, undo: () => Promise<void> | void): () => Promise<void> {
    const step = { name, undo };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await runStep(step);
    };
  }

  /** Runs `first` (e.g. killing short-lived children), then every registered step, newest first. Idempotent. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const f of this.first) f();
      for (let step = this.steps.pop(); step; step = this.steps.pop()) await runStep(step);
    })();
    return this.running;
  }

  /**
   * On SIGINT/SIGTERM/SIGHUP: runs the clean-up, then exits with 128 + signal number. A second signal
   * while cleaning up exits immediately.
   */
  installSignalHandlers(): void {
    const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
    for (const sig of Object.keys(codes) as NodeJS.Signals[]) {
      process.once(sig, () => {
        process.stderr.write(`\n${sig}: cleaning up…\n`);
        for (const s of Object.keys(codes) as NodeJS.Signals[]) process.once(s, () => process.exit(codes[s]));
        void this.run().finally(() => process.exit(codes[sig]));
      });
    }
  }
}

/** Longest a single undo step may take before the next one runs. */
const STEP_TIMEOUT_MS = 60_000;

async function runStep(step: { name: string; undo: () => Promise<void> | void }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(step.undo),
      new Promise<void>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${STEP_TIMEOUT_MS / 1000} s`)),
          STEP_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (err) {
    process.stderr.write(
      `clean-up of ${step.name} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  } finally {
    clearTimeout(timer);
  }
}
