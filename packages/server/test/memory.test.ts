import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chunkHash, RopeHasher } from "@cacheroach/core";
import { Files, Tenants, Uploads } from "@cacheroach/proto";
import { createClient } from "@connectrpc/connect";
import { mintBootstrapToken } from "../src/signing-keys.js";
import { createTestDatabase, type TestDatabase, testTransport } from "../src/testing.js";

// The server must stream: uploading and downloading 1 GiB may not grow its memory by more than
// its chunk cache plus a fixed allowance, whatever the file size.
const SIZE = 1024 * 1024 * 1024;
const CACHE = 32 * 1024 * 1024;
const ALLOWANCE = 150 * 1024 * 1024;

let db: TestDatabase;
let child: ChildProcess;
let url: string;
const key = randomBytes(32);

function rssPeak(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
function rssNow(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

before(async () => {
  db = await createTestDatabase();
  const fixture = fileURLToPath(new URL("./fixtures/serve.ts", import.meta.url));
  child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fixture,
      JSON.stringify({
        bind: "127.0.0.1:0",
        databaseUrl: db.url,
        signingKey: key.toString("base64"),
        cacheBytes: CACHE,
      }),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [line] = await once(createInterface({ input: child.stdout! }), "line");
  url = JSON.parse(line as string).url;
});
after(async () => {
  child?.kill("SIGTERM");
  if (child && child.exitCode === null) await once(child, "exit");
  await db?.drop();
});

test("a 1 GiB file goes up and comes back down with bounded server memory", {
  timeout: 600_000,
}, async (t) => {
  const token = await mintBootstrapToken(key, 600);
  const transport = testTransport(url, token);
  const tenant = (await createClient(Tenants, transport).ensure({ tenant: { label: "memory" } })).tenant!.id;
  const uploads = createClient(Uploads, transport);
  const baseline = rssNow(child.pid!);

  // Deterministic pseudo-random content, generated on the fly so the test itself stays small.
  const block = randomBytes(4 * 1024 * 1024);
  const b = await uploads.begin({ tenantId: tenant, path: "/big.bin" });
  const hasher = new RopeHasher();
  let state = b.state;
  for (let off = 0, i = 0; off < SIZE; off += block.length, i++) {
    const data = Buffer.from(block);
    data.writeUInt32BE(i, 0); // make every block (and so every chunk) distinct
    for (let c = 0; c < data.length; c += b.chunkSize) {
      const piece = data.subarray(c, c + b.chunkSize);
      hasher.add(chunkHash(piece), piece.length);
    }
    state = (await uploads.transfer({ state, data })).state;
  }
  const committed = await uploads.commit({ state, expectedContentHash: hasher.digest() });
  assert.equal(committed.file!.size, BigInt(SIZE));
  const afterUpload = rssPeak(child.pid!);

  const check = new RopeHasher();
  let got = 0;
  let pending = Buffer.alloc(0);
  for await (const m of createClient(Files, transport).read({ tenantId: tenant, path: "/big.bin" })) {
    got += m.data.length;
    pending = Buffer.concat([pending, m.data]);
    while (pending.length >= b.chunkSize) {
      check.add(chunkHash(pending.subarray(0, b.chunkSize)), b.chunkSize);
      pending = pending.subarray(b.chunkSize);
    }
  }
  if (pending.length) check.add(chunkHash(pending), pending.length);
  assert.equal(got, SIZE);
  assert.deepEqual(
    check.digest(),
    Buffer.from(committed.file!.contentHash),
    "downloaded bytes are the uploaded bytes",
  );
  const peak = rssPeak(child.pid!);
  const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
  t.diagnostic(
    `server RSS: baseline ${mib(baseline)}, peak after upload ${mib(afterUpload)}, peak after download ${mib(peak)}`,
  );
  assert.ok(
    peak - baseline <= CACHE + ALLOWANCE,
    `server RSS grew from ${mib(baseline)} to ${mib(peak)} (after upload ${mib(afterUpload)}); limit is cache ${mib(CACHE)} + ${mib(ALLOWANCE)}`,
  );
});
