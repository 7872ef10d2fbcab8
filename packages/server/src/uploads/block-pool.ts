/**
 * Blocks of one size kept for reuse. Touching freshly mapped memory costs this VM about 3 ms per
 * MiB (a new 4 MiB block per batch was a third of the server's CPU per ingested MiB), and a block
 * used before costs next to nothing; up to `keep` blocks stay around while blocks are in use, and
 * the spare ones go once none has been taken for {@link IDLE_MS}.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];
  private lastTake = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly blockBytes: number,
    private readonly keep: number,
  ) {}

  /** A block of {@link blockBytes}: a spare one, or a new one. Its bytes are not zeroed. */
  take(): Buffer {
    this.lastTake = Date.now();
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockBytes);
  }

  /** Takes back a block nothing refers to any more (kept if there is room). */
  give(block: Buffer): void {
    if (block.length !== this.blockBytes || this.free.length >= this.keep) return;
    this.free.push(block);
    this.timer ??= setTimeout(() => this.trim(), IDLE_MS).unref();
  }

  /** Blocks kept for reuse now. */
  get spare(): number {
    return this.free.length;
  }

  /** Drops the spare blocks if none was taken lately, else looks again later. */
  private trim(): void {
    this.timer = undefined;
    const idle = Date.now() - this.lastTake;
    if (idle >= IDLE_MS) this.free.length = 0;
    else if (this.free.length > 0) this.timer = setTimeout(() => this.trim(), IDLE_MS - idle).unref();
  }
}

/** How long spare blocks outlive the last use of the pool. */
const IDLE_MS = 10_000;
