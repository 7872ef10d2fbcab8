/** Bounded concurrency (lib/concurrency.ts): limits are kept, order is kept, failures stop the work. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as wait } from "node:timers/promises";
import { mapLimit, mapOrdered, TaskWindow } from "../src/lib/concurrency.js";

/** Counts how many calls run at once. */
function gauge() {
  let now = 0;
  let peak = 0;
  return {
    async run<T>(fn: () => Promise<T>): Promise<T> {
      now++;
      peak = Math.max(peak, now);
      try {
        return await fn();
      } finally {
        now--;
      }
    },
    get peak() {
      return peak;
    },
  };
}

test("mapLimit keeps to the limit and the input order", async () => {
  const g = gauge();
  const items = Array.from({ length: 20 }, (_, i) => i);
  const out = await mapLimit(items, 3, (n) => g.run(() => wait((20 - n) % 7).then(() => n * 2)));
  assert.deepEqual(
    out,
    items.map((n) => n * 2),
  );
  assert.equal(g.peak, 3);
  assert.deepEqual(await mapLimit([], 4, async () => 1), []);
});

test("mapLimit stops starting calls after the first failure and throws it", async () => {
  const started: number[] = [];
  await assert.rejects(
    mapLimit(
      Array.from({ length: 50 }, (_, i) => i),
      2,
      async (n) => {
        started.push(n);
        await wait(1);
        if (n === 3) throw new Error("boom at 3");
        return n;
      },
    ),
    /boom at 3/,
  );
  assert.ok(started.length <= 6, `started ${started.length} calls`);
});

test("TaskWindow: room() waits for a free slot under a changing limit and reports a failed task", async () => {
  const w = new TaskWindow();
  let finished = 0;
  for (let i = 0; i < 4; i++) {
    await w.room(i < 2 ? 2 : 1);
    assert.ok(w.size < (i < 2 ? 2 : 1));
    w.start(async () => {
      await wait(5);
      finished++;
    });
  }
  await w.drain();
  assert.equal(finished, 4);

  const failing = new TaskWindow();
  failing.start(async () => {
    throw new Error("round failed");
  });
  await assert.rejects(failing.room(1), /round failed/);
  await assert.rejects(failing.drain(), /round failed/);
});

test("mapOrdered yields in source order and reads no further ahead than its depth", async () => {
  let read = 0;
  async function* source() {
    for (let i = 0; i < 10; i++) {
      read++;
      yield i;
    }
  }
  const g = gauge();
  const out: number[] = [];
  for await (const v of mapOrdered(source(), 3, (n) => g.run(() => wait(10 - n).then(() => n)))) {
    assert.ok(read - out.length <= 4, `read ${read} with ${out.length} consumed`);
    out.push(v);
  }
  assert.deepEqual(
    out,
    Array.from({ length: 10 }, (_, i) => i),
  );
  assert.equal(g.peak, 3);
});

test("mapOrdered: a consumer that stops early closes the source", async () => {
  let closed = false;
  async function* source() {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  }
  for await (const v of mapOrdered(source(), 2, async (n) => n)) if (v === 1) break;
  assert.equal(closed, true);
});
