/**
 * A client that goes away (an upload cut off mid-body, a download or RPC stream abandoned) is
 * routine: the server logs it at info, never as an error or a warning. The server runs in a
 * child process so its real JSON log (stderr) can be read.
 */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Files, Tenants, VHosts } from "@cacheroach/proto";
import { createClient } from "@connectrpc/connect";
import { createTestDatabase, type TestDatabase, testTransport } from "../src/testing.js";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
const CHILD = `
import { randomBytes } from "node:crypto";
import { startServer } from ${JSON.stringify(join(SRC, "server.ts"))};
import { issueSuperToken } from ${JSON.stringify(join(SRC, "testing.ts"))};
const key = new Uint8Array(randomBytes(32));
const s = await startServer({ bind: "127.0.0.1:0", databaseUrl: process.env.TEST_DB_URL, signingKeys: [key], logLevel: "info", maxConnections: 4 });
const { token } = await issueSuperToken(s.url, key);
process.stdout.write(JSON.stringify({ url: s.url, token }) + "\\n");
process.stdin.on("end", async () => { await s.close(); process.exit(0); });
process.stdin.resume();
`;

interface LogLine {
  level: number;
  msg: string;
  err?: string;
  source?: string;
}

let db: TestDatabase;
let child: ChildProcessWithoutNullStreams;
let url: string;
let token: string;
let stderr = "";
const lines = (): LogLine[] =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);

/** Waits (a liveness bound, not a speed claim) until the log has a line matching `pred`. */
async function logged(pred: (l: LogLine) => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (lines().some(pred)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no log line for ${what}:\n${stderr}`);
}

before(async () => {
  db = await createTestDatabase();
  child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], {
    env: { ...process.env, TEST_DB_URL: db.url },
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const first = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  ({ url, token } = JSON.parse(first) as { url: string; token: string });
});
after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.stdin.end();
    await exited;
  }
  await db?.drop();
});

test("aborted uploads, downloads and RPC streams log at info, never warn or error", async () => {
  const tenant = (await createClient(Tenants, testTransport(url, token)).ensure({ tenant: { label: "d" } }))
    .tenant!.id;
  await createClient(VHosts, testTransport(url, token)).ensure({
    vhost: { vhost: "127.0.0.1", tenantId: tenant },
  });
  const u = new URL(url);
  const auth = { authorization: `Bearer ${token}` };

  // An HTTP/1.1 upload cut off mid-body.
  const up = http.request({
    host: u.hostname,
    port: u.port,
    path: "/d/cut",
    method: "PUT",
    headers: { ...auth, "content-length": 8 << 20 },
  });
  up.on("error", () => {});
  up.write(randomBytes(1 << 20));
  await new Promise((resolve) => setTimeout(resolve, 200));
  up.destroy();
  await logged((l) => /client went away/.test(l.msg), "the cut HTTP/1.1 upload");

  // An HTTP/2 upload whose connection is torn down mid-body.
  const session = http2.connect(url);
  session.on("error", () => {});
  const s = session.request({ ":method": "PUT", ":path": "/d/cut2", ...auth });
  s.on("error", () => {});
  s.write(randomBytes(1 << 20));
  await new Promise((resolve) => setTimeout(resolve, 200));
  session.destroy();

  // A download and an RPC read stream abandoned after their first bytes.
  const big = randomBytes(16 << 20);
  const put = await fetch(`${url}/d/big`, { method: "PUT", headers: auth, body: big });
  assert.equal(put.status, 201);
  await new Promise<void>((resolve, reject) => {
    const g = http.get({ host: u.hostname, port: u.port, path: "/d/big", headers: auth }, (res) => {
      res.once("data", () => {
        g.destroy();
        resolve();
      });
    });
    g.on("error", () => {});
    g.on("close", () => resolve());
    setTimeout(() => reject(new Error("no download bytes")), 10_000);
  });
  const abort = new AbortController();
  const read = createClient(Files, testTransport(url, token)).read(
    { tenantId: tenant, path: "/d/big" },
    { signal: abort.signal },
  );
  await assert.rejects(async () => {
    for await (const _ of read) abort.abort();
  });

  // Everything settles; then the whole log is checked.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const loud = lines().filter((l) => l.level >= 40);
  assert.deepEqual(loud, [], `client disconnects logged loudly:\n${stderr}`);
  assert.ok(lines().some((l) => l.level === 30 && /client went away/.test(l.msg)));
});
