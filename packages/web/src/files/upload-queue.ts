/**
 * The uploads of this page: many files at once (a few in flight), each with its own progress,
 * result and cancel. The queue is a small observable store the upload panel renders.
 */
import type { FileMeta } from "@cacheroach/proto";
import type { Api } from "../api/client.js";
import { describe, isAbort, type Problem } from "../api/errors.js";
import { type BlockReader, type UploadJob, upload } from "./upload.js";

/** Where an item stands. */
export type ItemState =
  | { kind: "queued" }
  | { kind: "sending"; sent: number }
  | { kind: "done"; file: FileMeta }
  | { kind: "failed"; problem: Problem }
  | { kind: "cancelled" }
  | { kind: "skipped"; why: string };

/** One file of the queue. */
export interface QueueItem {
  readonly id: number;
  readonly job: UploadJob;
  state: ItemState;
  readonly abort: AbortController;
}

/** How many files travel at once. */
const IN_FLIGHT = 3;

/** The upload queue of a page. */
export class UploadQueue {
  private items: QueueItem[] = [];
  private nextId = 1;
  private running = 0;
  private listeners = new Set<() => void>();
  private notifyScheduled = false;
  private finishedListeners = new Set<(item: QueueItem) => void>();

  constructor(private readonly api: Api) {}

  /** The items, oldest first (a new array after every change). */
  snapshot(): readonly QueueItem[] {
    return this.items;
  }

  /** Calls `fn` after changes (at most once per animation frame). Returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Calls `fn` whenever an item finishes writing (to refresh a listing). */
  onFinished(fn: (item: QueueItem) => void): () => void {
    this.finishedListeners.add(fn);
    return () => this.finishedListeners.delete(fn);
  }

  /** Queues files to write. */
  add(jobs: readonly UploadJob[]): void {
    for (const job of jobs)
      this.items.push({ id: this.nextId++, job, state: { kind: "queued" }, abort: new AbortController() });
    this.changed();
    this.pump();
  }

  /** Records a file that was never queued (skipped by the user, or refused before sending). */
  addSkipped(job: UploadJob, why: string): void {
    this.items.push({
      id: this.nextId++,
      job,
      state: { kind: "skipped", why },
      abort: new AbortController(),
    });
    this.changed();
  }

  /** Cancels one item (nothing of it becomes visible). */
  cancel(id: number): void {
    const item = this.items.find((i) => i.id === id);
    if (!item || (item.state.kind !== "queued" && item.state.kind !== "sending")) return;
    item.abort.abort();
    if (item.state.kind === "queued") item.state = { kind: "cancelled" };
    this.changed();
  }

  /** Cancels everything not yet written. */
  cancelAll(): void {
    for (const item of this.items) this.cancel(item.id);
  }

  /** Forgets finished items. */
  clearFinished(): void {
    this.items = this.items.filter((i) => i.state.kind === "queued" || i.state.kind === "sending");
    this.changed();
  }

  /** True while anything is queued or sending. */
  get busy(): boolean {
    return this.items.some((i) => i.state.kind === "queued" || i.state.kind === "sending");
  }

  private pump(): void {
    while (this.running < IN_FLIGHT) {
      const item = this.items.find((i) => i.state.kind === "queued");
      if (!item) return;
      this.running++;
      void this.run(item).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async run(item: QueueItem): Promise<void> {
    item.state = { kind: "sending", sent: 0 };
    this.changed();
    try {
      const file = await upload(
        this.api,
        item.job,
        (sent) => {
          item.state = { kind: "sending", sent };
          this.changed();
        },
        item.abort.signal,
      );
      item.state = { kind: "done", file };
      for (const fn of this.finishedListeners) fn(item);
    } catch (err) {
      item.state =
        item.abort.signal.aborted || isAbort(err)
          ? { kind: "cancelled" }
          : { kind: "failed", problem: describe(`Uploading ${item.job.path}`, err) };
    }
    this.changed();
  }

  private changed(): void {
    this.items = [...this.items];
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    const flush = () => {
      this.notifyScheduled = false;
      for (const fn of this.listeners) fn();
    };
    if (typeof requestAnimationFrame === "function" && document.visibilityState === "visible")
      requestAnimationFrame(flush);
    else setTimeout(flush, 50);
  }
}

export type { BlockReader };
