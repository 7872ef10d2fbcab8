import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startTestServer, type TestServer } from "../src/testing.js";

// Standard tooling must work against the one port: buf curl speaks gRPC over h2c, gRPC-Web and
// Connect (HTTP/1.1 and h2c) from the .proto sources, as any gRPC client would.
const run = promisify(execFile);
const protoDir = fileURLToPath(new URL("../../../proto", import.meta.url));
const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
let ts: TestServer;

before(async () => {
  ts = await startTestServer();
});
after(async () => ts?.close());

const variants: [string, string[]][] = [
  ["grpc over h2c", ["--protocol", "grpc", "--http2-prior-knowledge"]],
  ["grpc-web over HTTP/1.1", ["--protocol", "grpcweb"]],
  ["connect over HTTP/1.1", ["--protocol", "connect"]],
  ["connect over h2c", ["--protocol", "connect", "--http2-prior-knowledge"]],
];

for (const [name, flags] of variants) {
  test(`buf curl: ${name}`, async () => {
    const { stdout } = await run(
      buf,
      [
        "curl",
        "--schema",
        protoDir,
        ...flags,
        "-H",
        `authorization: Bearer ${ts.superToken}`,
        "-d",
        JSON.stringify({ tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a", path: "/", pageSize: 5 }),
        `${ts.url}/cacheroach.v1.Files/List`,
      ],
      { cwd: protoDir },
    );
    assert.deepEqual(JSON.parse(stdout === "" ? "{}" : stdout), {});
  });
}

test("buf curl: errors carry their code and message", async () => {
  await assert.rejects(
    run(
      buf,
      [
        "curl",
        "--schema",
        protoDir,
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-d",
        "{}",
        `${ts.url}/cacheroach.v1.Tenants/List`,
      ],
      { cwd: protoDir },
    ),
    (err: { stderr?: string }) => {
      const e = JSON.parse(err.stderr ?? "{}");
      assert.equal(e.code, "unauthenticated");
      assert.match(e.message, /not logged in/);
      return true;
    },
  );
});
