/**
 * A server process's life cycle, on real `cacheroach start` processes: draining on SIGTERM
 * (`--grace-period`), and one server per data directory with its embedded PostgreSQL.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Files } from "@cacheroach/proto";
import { createTestDatabase, issueSuperToken, type TestDatabase } from "@cacheroach/server/testing";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SCRATCHPAD, ServerProcess, spawnCli, tempDir } from "./helpers.js";

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The environment of a server process: this one's, without CACHEROACH_* settings. */
function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("CACHEROACH_")) delete env[k];
  return env;
}

/** One request on a connection of its own (no keep-alive): status and body. */
function getOnce(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.once("error", reject);
      })
      .once("error", reject);
  });
}

/** A GET whose client stops reading after the first bytes, until `rest()` reads everything else. */
function pausedDownload(url: string, token: string): Promise<{ rest(): Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.once("data", (first: Buffer) => {
          res.pause();
          resolve({
            async rest() {
              const parts = [first];
              for await (const chunk of res) parts.push(chunk as Buffer);
              return Buffer.concat(parts);
            },
          });
        });
      })
      .once("error", reject);
  });
}

/** A Files.Read stream over gRPC (HTTP/2) that reads one message, then waits for `rest()`. */
async function pausedRpcRead(url: string, token: string, path: string): Promise<{ rest(): Promise<Buffer> }> {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const files = createClient(Files, createGrpcTransport({ baseUrl: url, interceptors: [auth] }));
  const it = files.read({ tenantId: SCRATCHPAD, path })[Symbol.asyncIterator]();
  const first = await it.next();
  assert.ok(!first.done);
  return {
    async rest() {
      const parts = [Buffer.from(first.value.data)];
      for (let r = await it.next(); !r.done; r = await it.next()) parts.push(Buffer.from(r.value.data));
      return Buffer.concat(parts);
    },
  };
}

/** An upload that has sent the first half of `data` (flushed to the kernel) until `rest()` sends the rest. */
interface PausedUpload {
  rest(): Promise<number>;
}

/** A streamed HTTP/1.1 PUT (chunked), paused halfway. */
function pausedPutH1(url: string, token: string, data: Buffer): Promise<PausedUpload> {
  const half = data.length >> 1;
  const req = http.request(url, {
    method: "PUT",
    agent: false,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
  });
  const status = new Promise<number>((resolve, reject) => {
    req.once("response", (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", reject);
  });
  return new Promise((resolve) => {
    req.write(data.subarray(0, half), () =>
      resolve({
        rest: () => {
          req.end(data.subarray(half));
          return status;
        },
      }),
    );
  });
}

/** A PUT over HTTP/2 with prior knowledge (h2c), paused halfway. */
function pausedPutH2(url: string, token: string, data: Buffer): Promise<PausedUpload> {
  const half = data.length >> 1;
  const u = new URL(url);
  const session = http2.connect(u.origin);
  session.on("error", () => {}); // the stream reports what matters
  const stream = session.request({
    ":method": "PUT",
    ":path": u.pathname,
    authorization: `Bearer ${token}`,
    "content-type": "application/octet-stream",
  });
  const status = new Promise<number>((resolve, reject) => {
    let code = 0;
    stream.once("response", (h) => {
      code = Number(h[":status"]);
    });
    stream.resume();
    stream.once("end", () => {
      session.close();
      resolve(code);
    });
    stream.once("error", reject);
  });
  return new Promise((resolve) => {
    stream.write(data.subarray(0, half), () =>
      resolve({
        rest: () => {
          stream.end(data.subarray(half));
          return status;
        },
      }),
    );
  });
}

describe("draining on SIGTERM", () => {
  const key = randomBytes(32);
  const big = randomBytes(32 << 20);
  const upH1 = randomBytes(24 << 20);
  const upH2 = randomBytes(24 << 20);
  let db: TestDatabase;
  let dir: string;
  let cleanup: () => Promise<void>;
  const servers: ServerProcess[] = [];

  const startServer = async (...extra: string[]): Promise<ServerProcess> => {
    const s = await ServerProcess.start(
      [
        "--connect",
        db.url,
        "--data-dir",
        join(dir, "data"),
        "--signing-key",
        key.toString("base64"),
        "--log-level",
        "info",
        ...extra,
      ],
      serverEnv(),
    );
    servers.push(s);
    return s;
  };

  before(async () => {
    db = await createTestDatabase();
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
    await cleanup?.();
  });

  test("downloads, RPC streams and uploads in flight complete; new requests get 503", async () => {
    const server = await startServer("--grace-period", "20s");
    const { token } = await issueSuperToken(server.url, key);
    const put = await fetch(`${server.url}/drain/big.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body: big,
    });
    assert.equal(put.status, 201);

    const download = await pausedDownload(`${server.url}/drain/big.bin`, token);
    const rpcRead = await pausedRpcRead(server.url, token, "/drain/big.bin");
    const h1Upload = await pausedPutH1(`${server.url}/drain/up-h1.bin`, token, upH1);
    const h2Upload = await pausedPutH2(`${server.url}/drain/up-h2.bin`, token, upH2);
    await sleep(300); // the upload heads have reached the server's handler

    const t0 = Date.now();
    server.kill("SIGTERM");
    let ready = await getOnce(`${server.url}/readyz`);
    for (const until = Date.now() + 5000; ready.status === 200 && Date.now() < until; ) {
      await sleep(20);
      ready = await getOnce(`${server.url}/readyz`);
    }
    assert.deepEqual(ready, { status: 503, body: "not ready: server is shutting down\n" });
    assert.equal((await getOnce(`${server.url}/drain/big.bin`, token)).status, 503, "a new request");
    assert.deepEqual(await getOnce(`${server.url}/healthz`), { status: 200, body: "ok\n" });
    assert.ok(server.alive, "still draining");

    const [down, rpc, s1, s2] = await Promise.all([
      download.rest(),
      rpcRead.rest(),
      h1Upload.rest(),
      h2Upload.rest(),
    ]);
    assert.equal(down.length, big.length);
    assert.equal(sha256(down), sha256(big), "the HTTP/1.1 download is intact");
    assert.equal(sha256(rpc), sha256(big), "the gRPC Read stream is intact");
    assert.equal(s1, 201, "the HTTP/1.1 upload is stored");
    assert.equal(s2, 201, "the HTTP/2 upload is stored");
    assert.equal(await server.exit, 0);
    assert.ok(Date.now() - t0 < 20_000, "drained before the grace period ended");
    assert.match(server.stderr, /SIGTERM: draining/);
    assert.match(server.stderr, /"msg":"drained"/);
    assert.match(server.stderr, /stopped\./);

    const again = await startServer();
    for (const [path, data] of [
      ["/drain/up-h1.bin", upH1],
      ["/drain/up-h2.bin", upH2],
    ] as const) {
      const r = await fetch(`${again.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, path);
      assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(data), `${path} was stored intact`);
    }
    await again.stop();
  });

  test("--grace-period takes a duration", async () => {
    const r = await spawnCli(
      ["start", "--bind", "127.0.0.1:0", "--data-dir", join(dir, "bad"), "--grace-period", "soon"],
      {
        env: { ...(serverEnv() as Record<string, string>), CACHEROACH_CONNECT: db.url },
      },
    );
    assert.equal(r.code, 2, r.stderr);
    const said = r.stderr.replace(/\s*›\s*/g, " ").replace(/\s+/g, " "); // oclif wraps it
    assert.match(said, /--grace-period: must be a duration .*\(got "soon"\)/);
  });

  test("a request that outlives --grace-period is cut and the process exits", async () => {
    const server = await startServer("--grace-period", "2s");
    const { token } = await issueSuperToken(server.url, key);
    const download = await pausedDownload(`${server.url}/drain/big.bin`, token);
    const t0 = Date.now();
    server.kill("SIGTERM");
    assert.equal(await server.exit, 0);
    const took = Date.now() - t0;
    assert.ok(took >= 2000, `exited after ${took} ms, before the grace period ended`);
    assert.ok(took < 2000 + 5000, `exited ${took} ms after SIGTERM`);
    await assert.rejects(download.rest(), "the download was cut");
    assert.match(server.stderr, /grace period over/);
  });
});

/** True if a process with this PID exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

describe("embedded PostgreSQL: one server per data directory, none left behind", () => {
  const key = randomBytes(32).toString("base64");
  // Not mkdtemp (0700: the postgres OS user could not reach it as root); with-pg.ts sweeps the
  // prefix when this process dies.
  const base = join(tmpdir(), `cacheroach-test-pg-${process.pid}-life`);
  const dataDir = join(base, "data");
  const postmasterPid = (): number =>
    Number.parseInt(readFileSync(join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10);
  const servers: ServerProcess[] = [];
  const start = async (detached = false): Promise<ServerProcess> => {
    const s = await ServerProcess.start(
      ["--data-dir", dataDir, "--signing-key", key, "--log-level", "warn"],
      serverEnv(),
      undefined,
      detached,
    );
    servers.push(s);
    return s;
  };

  before(() => {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
  });
  after(async () => {
    for (const s of servers) await s.stop();
    rmSync(base, { recursive: true, force: true });
  });

  test("a second start is refused at once and changes nothing; a killed server's lock and database are cleaned up; Ctrl-C drains", async () => {
    const first = await start();
    const { token } = await issueSuperToken(first.url, Buffer.from(key, "base64"));
    const auth = { authorization: `Bearer ${token}` };
    assert.equal(
      (await fetch(`${first.url}/lock/a.txt`, { method: "PUT", headers: auth, body: "kept" })).status,
      201,
    );
    const big = randomBytes(32 << 20);
    assert.equal(
      (await fetch(`${first.url}/lock/big.bin`, { method: "PUT", headers: auth, body: big })).status,
      201,
    );
    const postmaster = postmasterPid();

    const t0 = Date.now();
    const second = await spawnCli(
      ["start", "--bind", "127.0.0.1:0", "--data-dir", dataDir, "--signing-key", key],
      {
        env: serverEnv() as Record<string, string>,
      },
    );
    assert.ok(Date.now() - t0 < 10_000, "refused at once");
    assert.equal(second.code, 5, second.stderr);
    const said = second.stderr.replace(/\s*›\s*/g, " ").replace(/\s+/g, " "); // oclif wraps it
    assert.match(
      said,
      new RegExp(`data directory ${dataDir} is in use by another cacheroach server \\(PID ${first.pid}\\)`),
    );
    assert.equal(postmasterPid(), postmaster, "the first server's database is untouched");
    assert.ok(isAlive(postmaster));
    assert.deepEqual(await getOnce(`${first.url}/readyz`), { status: 200, body: "ready\n" });
    assert.equal(await (await fetch(`${first.url}/lock/a.txt`, { headers: auth })).text(), "kept");

    const t1 = Date.now();
    first.kill("SIGKILL");
    await first.exit;
    while (isAlive(postmaster) && Date.now() - t1 < 10_000) await sleep(50);
    assert.ok(!isAlive(postmaster), "the embedded PostgreSQL outlived its killed server by 10 s");
    const third = await start(true);
    assert.equal(await (await fetch(`${third.url}/lock/a.txt`, { headers: auth })).text(), "kept");
    assert.notEqual(postmasterPid(), postmaster);
    assert.equal(JSON.parse(readFileSync(join(dataDir, "cacheroach.lock"), "utf8")).pid, third.pid);

    // Ctrl-C in a terminal signals the whole process group: the download in flight (its chunks
    // not cached by this fresh server) still needs the database while the server drains.
    const download = await pausedDownload(`${third.url}/lock/big.bin`, token);
    process.kill(-third.pid, "SIGINT");
    let ready = await getOnce(`${third.url}/readyz`);
    for (const until = Date.now() + 5000; ready.status === 200 && Date.now() < until; ) {
      await sleep(20);
      ready = await getOnce(`${third.url}/readyz`);
    }
    assert.equal(ready.status, 503);
    assert.equal(sha256(await download.rest()), sha256(big), "the download in flight completes intact");
    assert.equal(await third.exit, 0);
    assert.match(third.stderr, /SIGINT: draining/);
    assert.ok(!existsSync(join(dataDir, "cacheroach.lock")), "released on stop");
  });
});
