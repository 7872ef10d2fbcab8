/**
 * The CLI's retry of calls the server reports unavailable (lib/retry-interceptor.ts), against a
 * scripted `next`: which calls are repeated, how long it waits, and when it gives up.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Files, ListResponseSchema, ReadResponseSchema, Uploads } from "@cacheroach/proto";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { GAVE_UP_HEADER } from "../src/lib/errors.js";
import { retryUnavailable } from "../src/lib/retry-interceptor.js";

type AnyNext = (req: unknown) => Promise<unknown>;

/** A `next` answering with the given outcomes in turn; counts its calls. */
function scripted(outcomes: (Error | "ok" | "stream")[]) {
  let calls = 0;
  const next: AnyNext = async (req) => {
    const o = outcomes[Math.min(calls, outcomes.length - 1)]!;
    calls++;
    if (o instanceof Error) throw o;
    if (o === "stream") {
      // The request's one message must arrive again on every attempt.
      const got: unknown[] = [];
      for await (const m of (req as { message: AsyncIterable<unknown> }).message) got.push(m);
      assert.equal(got.length, 1);
      return {
        stream: true,
        message: (async function* () {
          yield create(ReadResponseSchema, {});
        })(),
      };
    }
    return { stream: false, message: create(ListResponseSchema, {}) };
  };
  return { next, calls: () => calls };
}

const unavailable = (retryAfter?: string) =>
  new ConnectError(
    "database unavailable: cannot connect",
    Code.Unavailable,
    retryAfter === undefined ? undefined : { "retry-after": retryAfter },
  );

function unary(method: (typeof Files.methods)[number] | (typeof Uploads.methods)[number]) {
  return {
    stream: false,
    service: method.parent,
    method,
    requestMethod: "POST",
    url: "http://x/",
    signal: new AbortController().signal,
    header: new Headers(),
    contextValues: createContextValues(),
    message: {},
  };
}

const call = (budgetMs: number, next: AnyNext, req: unknown, retries: string[] = []) =>
  (
    retryUnavailable({ budgetMs, onRetry: (m, a, d) => retries.push(`${m}#${a}@${Math.round(d)}`) }) as (
      n: AnyNext,
    ) => AnyNext
  )(next)(req);

test("an idempotent call is repeated while the server says unavailable with a Retry-After", async () => {
  const s = scripted([unavailable("0"), unavailable("0"), "ok"]);
  const retries: string[] = [];
  const t0 = Date.now();
  await call(15_000, s.next, unary(Files.method.list), retries);
  assert.equal(s.calls(), 3);
  assert.equal(retries.length, 2);
  assert.match(retries[0]!, /^cacheroach\.v1\.Files\/List#1@/);
  // Backoff 0.5 s then 1 s (±10 %), even when Retry-After asks for less.
  assert.ok(Date.now() - t0 >= 1300, `${Date.now() - t0} ms`);
});

test("Retry-After longer than the backoff is honoured", async () => {
  const s = scripted([unavailable("1"), "ok"]);
  const t0 = Date.now();
  await call(15_000, s.next, unary(Files.method.delete));
  assert.equal(s.calls(), 2);
  assert.ok(Date.now() - t0 >= 900, `${Date.now() - t0} ms`);
});

test("not repeated: calls with side effects, errors without Retry-After, other codes", async () => {
  for (const [method, err] of [
    [Uploads.method.putFiles, unavailable("0")], // not declared idempotent
    [Files.method.list, unavailable()], // unavailable without Retry-After (e.g. cannot connect)
    [Files.method.list, new ConnectError("no", Code.PermissionDenied)],
    [Files.method.list, new ConnectError("boom", Code.Internal, { "retry-after": "0" })],
  ] as const) {
    const s = scripted([err, "ok"]);
    await assert.rejects(call(15_000, s.next, unary(method)), (e: unknown) => e === err);
    assert.equal(s.calls(), 1, `${method.name}: ${err.rawMessage}`);
  }
});

test("a budget it would pass gives up with the last error, marked so outer loops do not retry it", async () => {
  const s = scripted([unavailable("30")]);
  await assert.rejects(call(15_000, s.next, unary(Files.method.list)), (e: unknown) => {
    assert.ok(e instanceof ConnectError);
    assert.equal(e.code, Code.Unavailable);
    assert.match(e.rawMessage, /database unavailable.*still unavailable after 1 attempts/);
    assert.equal(e.metadata.get(GAVE_UP_HEADER), "1");
    return true;
  });
  // A budget of 0 turns retries off.
  const off = scripted([unavailable("0"), "ok"]);
  await assert.rejects(call(0, off.next, unary(Files.method.list)));
  assert.equal(off.calls(), 1);
});

test("a server-streaming call is repeated, with its request, when it fails before its first message", async () => {
  const s = scripted([unavailable("0"), "stream"]);
  const req = {
    ...unary(Files.method.read),
    stream: true,
    message: (async function* () {
      yield { tenantId: "t", path: "/a" };
    })(),
  };
  const res = (await call(15_000, s.next, req)) as { stream: true; message: AsyncIterable<unknown> };
  const got: unknown[] = [];
  for await (const m of res.message) got.push(m);
  assert.equal(got.length, 1);
  assert.equal(s.calls(), 2);
});
