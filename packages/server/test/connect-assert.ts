import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";

/** Asserts that `p` rejects with a ConnectError of `code` whose message matches `pattern`. */
export async function rejects(p: Promise<unknown>, code: Code, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ConnectError, `expected ConnectError, got ${err}`);
    assert.equal(err.code, code, `code ${Code[err.code]}: ${err.rawMessage}`);
    assert.match(err.rawMessage, pattern);
    return true;
  });
}
