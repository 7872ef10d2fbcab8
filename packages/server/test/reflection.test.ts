/**
 * gRPC server reflection (v1 and v1alpha), public: `buf curl` lists the services and methods and
 * calls a method with no schema of its own, over gRPC on h2c, as grpcurl would.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Files, grpcReflectionV1, Tenants } from "@cacheroach/proto";
import { Reflector } from "../src/rpc/reflection-service.js";
import { startTestServer, type TestServer } from "../src/testing.js";

const run = promisify(execFile);
const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
let ts: TestServer;
/** buf runs outside the repository, so it cannot find the .proto files: only reflection helps it. */
let cwd: string;

before(async () => {
  ts = await startTestServer();
  cwd = await mkdtemp(join(tmpdir(), "reflection-"));
});
after(async () => {
  await ts?.close();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

const grpc = ["--protocol", "grpc", "--http2-prior-knowledge"];

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", ...grpc, ...args], { cwd });
  return stdout;
}

for (const version of ["grpc-v1", "grpc-v1alpha"]) {
  test(`buf curl lists services and methods through reflection (${version}), without a token`, async () => {
    const services = (await bufCurl("--reflect-protocol", version, "--list-services", ts.url)).split("\n");
    for (const s of ["cacheroach.v1.Files", "cacheroach.v1.Tenants", "grpc.reflection.v1.ServerReflection"]) {
      assert.ok(services.includes(s), `${s} in ${services.join(", ")}`);
    }
    const methods = (await bufCurl("--reflect-protocol", version, "--list-methods", ts.url)).split("\n");
    for (const m of [
      "cacheroach.v1.Files/List",
      "cacheroach.v1.Uploads/Begin",
      "cacheroach.v1.Tokens/Current",
    ]) {
      assert.ok(methods.includes(m), `${m} in the list`);
    }
  });
}

test("buf curl calls a method with the schema it got by reflection", async () => {
  const out = await bufCurl(
    "-H",
    `authorization: Bearer ${ts.superToken}`,
    "-d",
    "{}",
    `${ts.url}/cacheroach.v1.Tenants/List`,
  );
  // A server stream prints one JSON object per message; the scratchpad is always there.
  assert.match(out, /"id": "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a"/);
  assert.match(out, /"label":/);
  // A message with nested types, enums and timestamps resolves too (its imports come along).
  const me = JSON.parse(
    await bufCurl(
      "-H",
      `authorization: Bearer ${ts.superToken}`,
      "-d",
      "{}",
      `${ts.url}/cacheroach.v1.Tokens/Current`,
    ),
  ) as { scope?: { superToken?: boolean } };
  assert.equal(me.scope?.superToken, true);
});

test("the reflector answers symbols, files and unknown names", () => {
  const r = new Reflector([Files, Tenants]);
  const ask = (messageRequest: grpcReflectionV1.ServerReflectionRequest["messageRequest"]) => {
    const a = r.answer(create(grpcReflectionV1.ServerReflectionRequestSchema, { messageRequest }));
    return { kind: a?.case ?? "none", value: (a?.value ?? {}) as Record<string, unknown> };
  };
  const file = ask({ case: "fileContainingSymbol", value: "cacheroach.v1.Files.List" });
  assert.equal(file.kind, "fileDescriptorResponse");
  // The file itself, then what it imports (transitively), each once.
  assert.ok((file.value.fileDescriptorProto as Uint8Array[]).length >= 2, "the file and its imports");
  for (const symbol of ["cacheroach.v1.Tenant", "cacheroach.v1.Tenant.label", "cacheroach.v1.Tenants"]) {
    assert.equal(ask({ case: "fileContainingSymbol", value: symbol }).kind, "fileDescriptorResponse", symbol);
  }
  assert.equal(
    ask({ case: "fileByFilename", value: "cacheroach/v1/files.proto" }).kind,
    "fileDescriptorResponse",
  );
  const missing = ask({ case: "fileContainingSymbol", value: "cacheroach.v1.Nope" });
  assert.equal(missing.kind, "errorResponse");
  assert.equal(missing.value.errorCode, 5);
  assert.equal(ask({ case: "fileByFilename", value: "nope.proto" }).kind, "errorResponse");
  const ext = ask({ case: "allExtensionNumbersOfType", value: "cacheroach.v1.Tenant" });
  assert.deepEqual(ext.value.extensionNumber, []);
});
