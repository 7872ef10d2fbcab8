/**
 * Bounded concurrency, the one helper for everything the CLI runs several of at once: files of a
 * command, PutChunks calls and dedup rounds of an upload, blocks hashed on worker threads.
 */

/**
 * Tasks started one at a time, at most `limit` running at once; the limit may change between
 * starts (the dedup upload widens and narrows it by what the server answers).
 */
export class TaskWindow {
  private readonly running = new Set<Promise<unknown>>();

  /** How many tasks run (a failed one counts until {@link drain}). */
  get size(): number {
    return this.running.size;
  }

  /**
   * Resolves once fewer than `limit` (at least 1) tasks run. Rejects with the error of a task that
   * failed, so the caller stops starting more.
   */
  async room(limit: number): Promise<void> {
    while (this.running.size >= Math.max(1, limit)) await Promise.race(this.running);
  }

  /**
   * Starts `task` now (await {@link room} first to keep to the limit). A task that fails stays
   * counted, so the next room() or drain() reports its error.
   */
  start<T>(task: () => Promise<T>): Promise<T> {
    const p = task();
    this.running.add(p);
    p.then(
      () => this.running.delete(p),
      () => {}, // reported by room() or drain()
    );
    return p;
  }

  /** Waits for every started task; rejects with a failed one's error. */
  async drain(): Promise<void> {
    await Promise.all(this.running);
  }
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. The
 * first failure stops further calls and is thrown (calls already running finish unobserved).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const window = new TaskWindow();
  for (const [i, item] of items.entries()) {
    await window.room(limit);
    window.start(async () => {
      results[i] = await fn(item, i);
    });
  }
  await window.drain();
  return results;
}

/**
 * Maps `source` through `fn` with up to `depth` calls running ahead of the consumer, yielding the
 * results in source order. The source is read only while fewer than `depth` results wait, so
 * memory stays bounded by `depth`. A consumer that stops early abandons the calls in flight.
 */
export async function* mapOrdered<T, R>(
  source: AsyncIterable<T>,
  depth: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const it = source[Symbol.asyncIterator]();
  const ahead: Promise<R>[] = [];
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && ahead.length < Math.max(1, depth)) {
        const next = await it.next();
        if (next.done) exhausted = true;
        else {
          const p = fn(next.value);
          p.catch(() => {}); // awaited in order below
          ahead.push(p);
        }
      }
      const head = ahead.shift();
      if (!head) return;
      yield await head;
    }
  } finally {
    ahead.length = 0;
    if (!exhausted) await it.return?.();
  }
}
