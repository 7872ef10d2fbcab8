/**
 * Blocks of one size kept for reuse. Touching freshly mapped memory costs this VM about 3 ms per
 * MiB (a new 4 MiB block per batch was a third of the server's CPU per ingested MiB), and a block
 * used before costs next to nothing; a few blocks stay around, at most `keep`.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly blockBytes: number,
    private readonly keep: number,
  ) {}

  /** A block of {@link blockBytes}: a spare one, or a new one. Its bytes are not zeroed. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockBytes);
  }

  /** Takes back a block nothing refers to any more (kept if there is room). */
  give(block: Buffer): void {
    if (block.length === this.blockBytes && this.free.length < this.keep) this.free.push(block);
  }

  /** Blocks kept for reuse now. */
  get spare(): number {
    return this.free.length;
  }
}
