/** The per-item bookkeeping of many-item commands (lib/item-results.ts). */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ExitCode, UserError } from "../src/lib/errors.js";
import { ItemResults } from "../src/lib/item-results.js";

type Ok = { path: string; status: "ok" };
type Bad = { path: string; status: "error" | "refused" };

function output(json: boolean) {
  const printed = { json: [] as unknown[], stderr: [] as string[] };
  return {
    printed,
    out: {
      jsonEnabled: () => json,
      logJson: (j: unknown) => printed.json.push(j),
      logToStderr: (m: string) => printed.stderr.push(m),
    },
  };
}

const failure = (exit: number) => ({
  error: new Error("raw"),
  described: new UserError(`described ${exit}`, exit),
});

afterEach(() => {
  process.exitCode = undefined;
});

test("all items succeeded: the results, in item order", () => {
  const { out, printed } = output(false);
  const items = new ItemResults<Ok, Bad>(out, 2);
  items.ok(1, { path: "/b", status: "ok" });
  items.ok(0, { path: "/a", status: "ok" });
  assert.deepEqual(
    items.finish(() => assert.fail("no summary without failures")),
    [
      { path: "/a", status: "ok" },
      { path: "/b", status: "ok" },
    ],
  );
  assert.deepEqual(printed, { json: [], stderr: [] });
});

test("failures: counted, reported as they happen, and the first error decides the exit code", () => {
  const { out, printed } = output(false);
  const items = new ItemResults<Ok, Bad>(out, 4);
  items.fail(2, { path: "/c", status: "refused" }); // no error: the result says what went wrong
  items.ok(0, { path: "/a", status: "ok" });
  items.fail(3, { path: "/d", status: "error" }, failure(ExitCode.notFound), "failed: /d");
  items.fail(1, { path: "/b", status: "error" }, failure(ExitCode.auth), "failed: /b");
  assert.equal(items.failed, 3);
  assert.deepEqual(items.succeeded, [{ path: "/a", status: "ok" }]);
  assert.deepEqual(printed.stderr, ["failed: /d", "failed: /b"]);
  assert.throws(
    () =>
      items.finish((failed, first, exit) => {
        assert.equal(first.result.path, "/c");
        assert.equal(first.failure, undefined);
        return new UserError(`${failed} failed`, exit);
      }),
    (e: unknown) => e instanceof UserError && e.message === "3 failed" && e.exit === ExitCode.notFound,
  );
});

test("with --json, failures print every result and set the exit code instead of throwing", () => {
  const { out, printed } = output(true);
  const items = new ItemResults<Ok, Bad>(out, 2);
  items.ok(0, { path: "/a", status: "ok" });
  items.fail(1, { path: "/b", status: "error" }, failure(ExitCode.conflict));
  assert.equal(
    items.finish(() => assert.fail("no summary with --json")),
    undefined,
  );
  assert.deepEqual(printed.json, [
    [
      { path: "/a", status: "ok" },
      { path: "/b", status: "error" },
    ],
  ]);
  assert.equal(process.exitCode, ExitCode.conflict);
});

test("failures that carry no error end with exit code 1", () => {
  const { out } = output(false);
  const items = new ItemResults<Ok, Bad>(out, 1);
  items.fail(0, { path: "/a", status: "refused" });
  assert.throws(
    () => items.finish((n, _f, exit) => new UserError(`${n}`, exit)),
    (e: unknown) => e instanceof UserError && e.exit === ExitCode.failure,
  );
});
