/** The one retry loop of the CLI (lib/retry.ts): backoff, give-up, progress rows, cancellation. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { GAVE_UP_HEADER } from "../src/lib/errors.js";
import { backoffDelay, retryAfterMs, withRetry } from "../src/lib/retry.js";

const unavailable = (metadata?: Record<string, string>) =>
  new ConnectError("try later", Code.Unavailable, metadata);

test("backoffDelay doubles up to the bound, spreads by the jitter, and never undercuts Retry-After", () => {
  const plain = { baseMs: 100, maxMs: 1000, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, plain)),
    [100, 200, 400, 800, 1000, 1000],
  );
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(2, { baseMs: 100, maxMs: 1000, jitter: 0.25 });
    assert.ok(d >= 150 && d <= 250, String(d));
    const asked = backoffDelay(1, { baseMs: 100, maxMs: 1000, jitter: 0.1 }, 2000);
    assert.ok(asked >= 2000 && asked <= 2200, String(asked));
  }
});

test("retryAfterMs reads seconds from the metadata, capped at a minute", () => {
  assert.equal(retryAfterMs(unavailable({ "retry-after": "2" })), 2000);
  assert.equal(retryAfterMs(unavailable({ "retry-after": "3600" })), 60_000);
  assert.equal(retryAfterMs(unavailable({ "retry-after": "soon" })), 0);
  assert.equal(retryAfterMs(unavailable()), 0);
  assert.equal(retryAfterMs(new Error("plain")), 0);
});

test("retries retryable failures and returns the first success", async () => {
  let calls = 0;
  const seen: number[] = [];
  const got = await withRetry(
    async (attempt) => {
      seen.push(attempt.number);
      if (++calls < 3) throw unavailable();
      return "ok";
    },
    { baseDelayMs: 1, budgetMs: 10_000 },
  );
  assert.equal(got, "ok");
  assert.deepEqual(seen, [1, 2, 3]);
});

test("a non-retryable error is thrown as it is, at once", async () => {
  const denied = new ConnectError("no", Code.PermissionDenied);
  let calls = 0;
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw denied;
      },
      { baseDelayMs: 1, budgetMs: 10_000 },
    ),
    (e: unknown) => e === denied,
  );
  assert.equal(calls, 1);
  // Nor is an error the transport already retried until its budget ran out.
  calls = 0;
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw unavailable({ [GAVE_UP_HEADER]: "3" });
      },
      { baseDelayMs: 1, budgetMs: 10_000 },
    ),
  );
  assert.equal(calls, 1);
});

test("gives up after the attempts, saying how many; giveUp phrases the error instead", async () => {
  const retries: string[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        throw unavailable();
      },
      {
        attempts: 3,
        baseDelayMs: 1,
        jitter: 0,
        budgetMs: 10_000,
        onRetry: (a, _e, d) => retries.push(`${a}@${d}`),
      },
    ),
    (e: unknown) => e instanceof ConnectError && /try later \(gave up after 3 attempts\)/.test(e.message),
  );
  assert.deepEqual(retries, ["1@1", "2@2"]);
  await assert.rejects(
    withRetry(
      async () => {
        throw unavailable();
      },
      { attempts: 2, baseDelayMs: 1, budgetMs: 10_000, giveUp: (_e, n) => new Error(`stopped at ${n}`) },
    ),
    /stopped at 2/,
  );
});

test("a delay past the budget gives up without waiting", async () => {
  const t0 = Date.now();
  let calls = 0;
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw unavailable({ "retry-after": "30" });
      },
      { budgetMs: 5_000 },
    ),
  );
  assert.equal(calls, 1);
  assert.ok(Date.now() - t0 < 1000);
});

test("an attempt that made progress starts a new row of attempts", async () => {
  let calls = 0;
  const numbers: number[] = [];
  const got = await withRetry(
    async (attempt) => {
      numbers.push(attempt.number);
      calls++;
      if (calls === 7) return "done";
      if (calls > 1) attempt.progressed(); // all but the first get somewhere before failing
      throw unavailable();
    },
    { attempts: 2, baseDelayMs: 1, budgetMs: 10_000 },
  );
  assert.equal(got, "done");
  // Two failures in a row would end it (attempts: 2); a failure after progress counts as a first.
  assert.deepEqual(numbers, [1, 2, 2, 2, 2, 2, 2]);
});

test("an aborted signal ends the wait and throws the last error", async () => {
  const ac = new AbortController();
  const err = unavailable({ "retry-after": "20" });
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(
    withRetry(
      async () => {
        throw err;
      },
      { attempts: Number.POSITIVE_INFINITY, budgetMs: 60_000, signal: ac.signal },
    ),
    (e: unknown) => e === err,
  );
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
});
