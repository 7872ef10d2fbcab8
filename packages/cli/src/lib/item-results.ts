/**
 * The bookkeeping of a command over many files (file put, get, fetch, rm): every item succeeds or
 * fails on its own, and the command ends the same way whichever it is.
 */
import { ExitCode, type UserError } from "./errors.js";

/** A failed item's error: as thrown, and as described to the user. */
export interface ItemFailure {
  error: unknown;
  described: UserError;
}

/** The first item that failed: its result, and its error unless the result says what went wrong. */
export interface FirstFailure<Failed> {
  result: Failed;
  failure: ItemFailure | undefined;
}

/** The parts of a command the bookkeeping prints through (BaseCommand has them). */
export interface ResultsOutput {
  jsonEnabled(): boolean;
  logJson(json: unknown): void;
  logToStderr(message: string): void;
}

/**
 * The per-item results of a command, in item order, with which items failed. The first failed
 * item that failed with an error decides the exit code; {@link finish} ends the command.
 */
export class ItemResults<Ok, Failed> {
  /** One result per item, by index. */
  readonly results: (Ok | Failed)[];
  private readonly okIndexes = new Set<number>();
  private failedCount = 0;
  private firstFailed: FirstFailure<Failed> | undefined;
  private firstError: ItemFailure | undefined;

  constructor(
    private readonly out: ResultsOutput,
    total: number,
  ) {
    this.results = new Array<Ok | Failed>(total);
  }

  /** Records a successful item. */
  ok(index: number, result: Ok): void {
    this.results[index] = result;
    this.okIndexes.add(index);
  }

  /**
   * Records a failed item: its result, and its error unless the result itself says what went
   * wrong (a remote server's refusal). `stderrLine` is printed at once, so a long run reports
   * failures as they happen.
   */
  fail(index: number, result: Failed, failure?: ItemFailure, stderrLine?: string): void {
    this.results[index] = result;
    this.failedCount++;
    this.firstFailed ??= { result, failure };
    if (failure) this.firstError ??= failure;
    if (stderrLine !== undefined) this.out.logToStderr(stderrLine);
  }

  /** The results of the items that succeeded, in item order. */
  get succeeded(): Ok[] {
    return this.results.filter((_, i) => this.okIndexes.has(i)) as Ok[];
  }

  /** How many items failed. */
  get failed(): number {
    return this.failedCount;
  }

  /** The first item that failed (in the order they were recorded), if any. */
  get first(): FirstFailure<Failed> | undefined {
    return this.firstFailed;
  }

  /**
   * Ends the command: the results when every item succeeded. Otherwise, with --json, the results
   * are printed and the exit code set (the command returns nothing more to print); without, the
   * error `summary` builds is thrown. Either way the exit code is that of the first item that
   * failed with an error (1 when none did).
   */
  finish(
    summary: (failed: number, first: FirstFailure<Failed>, exit: number) => UserError,
  ): (Ok | Failed)[] | undefined {
    if (!this.firstFailed) return this.results;
    const exit = this.firstError?.described.exit ?? ExitCode.failure;
    if (this.out.jsonEnabled()) {
      this.out.logJson(this.results);
      process.exitCode = exit;
      return undefined;
    }
    throw summary(this.failedCount, this.firstFailed, exit);
  }
}
