/** Calls to a worker thread matched by id (lib/worker-calls.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { WorkerCalls } from "../src/lib/worker-calls.js";

/** A thread that says "ready", then answers each call after `delay` ms with its `n` doubled; n < 0 kills it. */
const SOURCE = `
const { parentPort } = require("node:worker_threads");
parentPort.postMessage("ready");
parentPort.on("message", ({ id, n, delay }) => {
  if (n < 0) throw new Error("asked to fail");
  setTimeout(() => parentPort.postMessage({ id, doubled: n * 2 }), delay);
});
`;

test("answers are matched to their calls by id, whatever order they come in", async () => {
  const worker = new Worker(SOURCE, { eval: true });
  const others: unknown[] = [];
  const calls = new WorkerCalls<{ id: number; doubled: number }>(worker, {
    name: "test thread",
    onOther: (m) => others.push(m),
  });
  try {
    const answers = await Promise.all([
      calls.call({ n: 1, delay: 40 }),
      calls.call({ n: 2, delay: 0 }),
      calls.call({ n: 3, delay: 20 }),
    ]);
    assert.deepEqual(
      answers.map((a) => a.doubled),
      [2, 4, 6],
    );
    assert.deepEqual(others, ["ready"]);
  } finally {
    await worker.terminate();
  }
});

test("a thread that fails fails the calls it owes and every later one", async () => {
  const worker = new Worker(SOURCE, { eval: true });
  const calls = new WorkerCalls<{ id: number; doubled: number }>(worker, { name: "test thread" });
  const slow = calls.call({ n: 1, delay: 5000 });
  await assert.rejects(calls.call({ n: -1, delay: 0 }), /asked to fail/);
  await assert.rejects(slow, /asked to fail/);
  await assert.rejects(calls.call({ n: 2, delay: 0 }), /asked to fail/);
  assert.match(String(calls.failed), /asked to fail/);
});

test("a thread that exits fails what it owes, naming itself", async () => {
  const worker = new Worker(SOURCE, { eval: true });
  const calls = new WorkerCalls<{ id: number; doubled: number }>(worker, { name: "test thread" });
  const owed = calls.call({ n: 1, delay: 5000 });
  await worker.terminate();
  await assert.rejects(owed, /test thread exited \(code \d+\)/);
});
