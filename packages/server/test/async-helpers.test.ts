import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { mapLimit } from "../src/util/concurrency.js";
import { errnoOf } from "../src/util/errno.js";
import { backoffDelay, withRetry } from "../src/util/retry.js";

test("withRetry repeats retryable failures up to the attempts, then throws the last error", async () => {
  let calls = 0;
  const retried: number[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw new Error(`try ${calls}`);
      },
      { attempts: 3, retryable: () => true, baseDelayMs: 1, onRetry: (n) => retried.push(n) },
    ),
    /try 3/,
  );
  assert.equal(calls, 3);
  assert.deepEqual(retried, [1, 2]);
});

test("withRetry stops at a failure it may not retry, and returns a later success", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw new Error(calls === 1 ? "transient" : "fatal");
      },
      { attempts: 10, retryable: (e) => (e as Error).message === "transient", baseDelayMs: 1 },
    ),
    /fatal/,
  );
  assert.equal(calls, 2);
  let n = 0;
  const v = await withRetry(
    async (attempt) => {
      n = attempt;
      if (attempt < 3) throw new Error("again");
      return "done";
    },
    { attempts: 5, retryable: () => true, baseDelayMs: 1 },
  );
  assert.equal(v, "done");
  assert.equal(n, 3);
});

test("backoffDelay doubles up to its cap, shortened by at most half", () => {
  for (let i = 0; i < 200; i++) {
    const d1 = backoffDelay(1, 40, 2000);
    const d3 = backoffDelay(3, 40, 2000);
    const d20 = backoffDelay(20, 40, 2000);
    assert.ok(d1 >= 20 && d1 <= 40, String(d1));
    assert.ok(d3 >= 80 && d3 <= 160, String(d3));
    assert.ok(d20 >= 1000 && d20 <= 2000, String(d20));
  }
});

test("mapLimit keeps to its limit and the input order", async () => {
  let running = 0;
  let peak = 0;
  const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (ms, i) => {
    running++;
    peak = Math.max(peak, running);
    await sleep(ms);
    running--;
    return i * 10;
  });
  assert.deepEqual(out, [0, 10, 20, 30, 40, 50, 60]);
  assert.equal(peak, 3);
  assert.deepEqual(await mapLimit([], 4, async () => 1), []);
});

test("mapLimit stops starting calls after a failure and throws it", async () => {
  const started: number[] = [];
  await assert.rejects(
    mapLimit([0, 1, 2, 3, 4, 5], 2, async (x) => {
      started.push(x);
      await sleep(1);
      if (x === 1) throw new Error("boom");
      return x;
    }),
    /boom/,
  );
  await sleep(10);
  assert.ok(started.length < 6, `started ${started.join(",")}`);
});

test("errnoOf reads a Node system error's code and nothing else", () => {
  const e = Object.assign(new Error("x"), { code: "ENOENT" });
  assert.equal(errnoOf(e), "ENOENT");
  assert.equal(errnoOf(new Error("x")), undefined);
  assert.equal(errnoOf({ code: "ENOENT" }), undefined); // not an Error
  assert.equal(errnoOf(Object.assign(new Error("x"), { code: 42 })), undefined);
});
