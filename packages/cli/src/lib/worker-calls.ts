/**
 * Calls answered by a worker thread, matched by id: the one mechanism under the hash pool
 * (hash-pool.ts) and the file writer of batch downloads (batch-download.ts).
 */
import type { Transferable, Worker } from "node:worker_threads";

/** An answer of the thread: the id of the call it answers, and what it says. */
export interface WorkerReply {
  id: number;
}

/**
 * Sends calls to `worker` and resolves each with the answer carrying its id. The thread keeps the
 * process alive only while it owes answers; once it fails or exits, every call waiting on it and
 * every later one fails. Messages that are not answers go to `onOther` (e.g. a ready signal).
 */
export class WorkerCalls<Reply extends WorkerReply> {
  private readonly waiting = new Map<number, { resolve(r: Reply): void; reject(err: Error): void }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(
    private readonly worker: Worker,
    opts: { name: string; onOther?: (message: unknown) => void },
  ) {
    worker.on("message", (message: unknown) => {
      if (!isReply(message)) {
        opts.onOther?.(message);
        return;
      }
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      this.idle();
      waiter?.resolve(message as Reply);
    });
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => this.fail(new Error(`${opts.name} exited (code ${code})`)));
  }

  /** Why the thread can answer no more, once it cannot. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Posts `message` with a fresh id (moving `transfer` to the thread) and waits for its answer. */
  call(message: object, transfer: readonly Transferable[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Lets the process exit while nothing is owed. */
  idle(): void {
    if (this.waiting.size === 0) this.worker.unref();
  }

  /** Fails every waiting and later call with `err` (the first reason given stays). */
  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.worker.unref();
  }
}

function isReply(message: unknown): message is WorkerReply {
  return typeof message === "object" && message !== null && typeof (message as WorkerReply).id === "number";
}
