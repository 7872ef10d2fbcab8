/** The scrub's pacing (lifecycle/byte-rate.ts), on a fake clock: no real time passes. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ByteRate, type RateClock } from "../src/lifecycle/byte-rate.js";

/** A clock whose sleeps are recorded and advance it at once. */
function fakeClock(): RateClock & { t: number; sleeps: number[] } {
  const c = {
    t: 1000,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(Math.round(ms));
      c.t += ms;
    },
  };
  return c;
}

test("reads are paced to the rate: a fast reader rests for what it read", async () => {
  const clock = fakeClock();
  const rate = new ByteRate(1 << 20, clock);
  await rate.pace(1 << 20); // a first read after a pause: one second of credit covers it
  await rate.pace(1 << 20);
  await rate.pace(512 << 10);
  await rate.pace(2 << 20);
  assert.deepEqual(clock.sleeps, [1000, 500, 2000]);
});

test("time spent reading counts, and at most one second of unused rate is banked", async () => {
  const clock = fakeClock();
  const rate = new ByteRate(1 << 20, clock);
  await rate.pace(2 << 20); // 2 s worth, 1 s of credit: rests 1000 ms
  clock.t += 400; // the next read took 400 ms
  await rate.pace(1 << 20); // rests the 600 ms left
  clock.t += 5000; // a long pause banks one second only
  await rate.pace(3 << 20); // rests 2000 ms
  assert.deepEqual(clock.sleeps, [1000, 600, 2000]);
});

test("rate 0 is no limit, and nothing read costs nothing", async () => {
  const clock = fakeClock();
  await new ByteRate(0, clock).pace(1 << 30);
  await new ByteRate(1 << 20, clock).pace(0);
  assert.deepEqual(clock.sleeps, []);
});

test("an abort ends the rest", async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(new ByteRate(1).pace(1000, ac.signal), { name: "AbortError" });
});
