/**
 * Every error answer carries the server's stable code (errors.ts): the `cacheroach-error-code`
 * metadata of an RPC error, the `Cacheroach-Error-Code` header of an HTTP error, and the
 * `error_code` of a batch item. Clients switch on it, never on message text.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Files, Principals, Tenants, Tokens } from "@cacheroach/proto";
import { ConnectError } from "@connectrpc/connect";
import { ERROR_CODE_HEADER, ERROR_TABLE, type ErrorCode } from "../src/errors.js";
import { startTestServer, type TestServer } from "../src/testing.js";

let ts: TestServer;
const scratch = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

before(async () => {
  ts = await startTestServer();
});
after(async () => ts?.close());

/** The code an RPC failed with, with its Connect code checked against the table. */
async function rpcCode(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConnectError, String(err));
    const code = err.metadata.get(ERROR_CODE_HEADER);
    if (code) assert.equal(err.code, ERROR_TABLE[code as ErrorCode].connect, code);
    return code;
  }
  throw new Error("expected the call to fail");
}

test("RPC errors carry their stable code in the metadata", async () => {
  const files = ts.client(Files, ts.superToken);
  assert.equal(await rpcCode(files.stat({ tenantId: scratch, path: "/no/such" })), "ERR_NOT_FOUND");
  assert.equal(await rpcCode(files.stat({ tenantId: scratch, path: "/a/../b" })), "ERR_BAD_PATH");
  assert.equal(await rpcCode(files.stat({ tenantId: "nope", path: "/x" })), "ERR_BAD_ID");
  assert.equal(
    await rpcCode(ts.client(Files).stat({ tenantId: scratch, path: "/x" })),
    "ERR_UNAUTHENTICATED",
  );
  assert.equal(
    await rpcCode(ts.client(Files, "not.a.token").stat({ tenantId: scratch, path: "/x" })),
    "ERR_UNAUTHENTICATED",
  );
  // A login that is not super: super-only methods say so with their own code.
  const p = await ts.client(Principals, ts.superToken).ensure({
    principal: { claimsJson: JSON.stringify({ name: "codes" }) },
  });
  const login = await ts.client(Tokens, ts.superToken).issue({
    template: {
      principalId: p.principal!.id,
      capabilities: { read: true, delegate: true },
      scope: { kind: { case: "onPrincipal", value: p.principal!.id } },
    },
  });
  const jwt = login.token!.jwt;
  assert.equal(
    await rpcCode(ts.client(Tenants, jwt).ensure({ tenant: { label: "x" } })),
    "ERR_SUPER_REQUIRED",
  );
  assert.equal(
    await rpcCode(ts.client(Files, jwt).stat({ tenantId: scratch, path: "/private/x" })),
    "ERR_PERMISSION_DENIED",
  );
});

test("batch items carry the code the single call would have", async () => {
  const r = await ts
    .client(Files, ts.superToken)
    .readMany({ tenantId: scratch, paths: ["/no/such", "/a/b"], maxSize: 1024n });
  assert.equal(r.results[0]?.error?.errorCode, "ERR_NOT_FOUND");
  assert.equal(r.results[0]?.error?.code, "not_found");
});

test("HTTP errors carry their stable code in a header", async () => {
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${ts.url}${path}`, { headers: { authorization: `Bearer ${ts.superToken}`, ...headers } });
  const missing = await get("/no/such/file");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get(ERROR_CODE_HEADER), "ERR_NOT_FOUND");
  const bad = await get("/x?version=abc");
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get(ERROR_CODE_HEADER), "ERR_BAD_REQUEST");
  const anon = await fetch(`${ts.url}/x`, { headers: { authorization: "Bearer nope" } });
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get(ERROR_CODE_HEADER), "ERR_UNAUTHENTICATED");
  // Success carries none.
  assert.equal((await fetch(`${ts.url}/healthz`)).headers.get(ERROR_CODE_HEADER), null);
});

test("every HTTP error path carries its code: handlers, file reads, special routes", async () => {
  const send = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(`${ts.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ts.superToken}`, ...(init.headers ?? {}) },
    });
  assert.equal((await send("/ec/a.txt", { method: "PUT", body: "hello" })).status, 201);
  const cases: [string, Response, ErrorCode][] = [
    [
      "GET with a failing If-Match",
      await send("/ec/a.txt", { headers: { "if-match": '"nope"' } }),
      "ERR_PRECONDITION_FAILED",
    ],
    [
      "a range past the end",
      await send("/ec/a.txt", { headers: { range: "bytes=100-" } }),
      "ERR_RANGE_NOT_SATISFIABLE",
    ],
    [
      "PUT with If-None-Match *",
      await send("/ec/a.txt", { method: "PUT", body: "x", headers: { "if-none-match": "*" } }),
      "ERR_PRECONDITION_FAILED",
    ],
    [
      "an unknown method on a file",
      await send("/ec/a.txt", { method: "PATCH", body: "x" }),
      "ERR_METHOD_NOT_ALLOWED",
    ],
    [
      "a POST to a signed URL",
      await send("/_/v0/retrieve/a.txt", { method: "POST", body: "x" }),
      "ERR_METHOD_NOT_ALLOWED",
    ],
    ["a signed URL without its token", await fetch(`${ts.url}/_/v0/retrieve/a.txt`), "ERR_UNAUTHENTICATED"],
    ["an unknown special endpoint", await send("/_/v0/nope"), "ERR_NOT_FOUND"],
    ["a directory write", await send("/ec/", { method: "PUT", body: "x" }), "ERR_BAD_PATH"],
  ];
  for (const [what, r, code] of cases) {
    assert.deepEqual([r.status, r.headers.get(ERROR_CODE_HEADER)], [ERROR_TABLE[code].http, code], what);
    await r.arrayBuffer();
  }
  assert.equal(cases[3]![1].headers.get("allow"), "GET, HEAD, PUT, POST, DELETE, OPTIONS");
  assert.equal(cases[4]![1].headers.get("allow"), "GET, HEAD");
});

test("an RPC-typed request to no method says ERR_UNKNOWN_METHOD", async () => {
  const r = await fetch(`${ts.url}/cacheroach.v1.Files/Nope`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1" },
    body: "{}",
  });
  assert.equal(r.status, 404);
  assert.equal(r.headers.get(ERROR_CODE_HEADER), "ERR_UNKNOWN_METHOD");
});
