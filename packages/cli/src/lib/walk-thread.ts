/**
 * Worker-thread side of walkLocal (local-files.ts): finishes a walk from the state the main thread
 * hands over and sends back what it found, or the error that stopped it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { nothingFound, type WalkFound, type WalkFrame, walkStep } from "./walk-tree.js";

/** The answer: what was found, or the walk's error (its message and Node's error fields). */
export type WalkReply =
  | { found: WalkFound }
  | { error: { message: string; code?: string; errno?: number; syscall?: string; path?: string } };

const stack = (workerData as { stack: WalkFrame[] }).stack;
const found = nothingFound();
let reply: WalkReply;
try {
  while (stack.length > 0) walkStep(stack, found);
  reply = { found };
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  reply = { error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } };
}
parentPort?.postMessage(reply);
