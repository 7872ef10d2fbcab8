import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type DualListener, listenDual, type RequestHandler } from "../src/net/dual-listener.js";

const execFileP = promisify(execFile);

/** Echoes method, url and HTTP version in headers and streams the request body back. */
const echo: RequestHandler = (req, res) => {
  if (req.url === "/throw") throw new Error("handler blew up (expected by the test)");
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "x-method": req.method ?? "",
    "x-url": req.url ?? "",
    "x-http-version": req.httpVersion,
  });
  pipeline(req, res as unknown as Writable).catch(() => {
    // aborted uploads are part of the tests
  });
};

/** Runs curl without blocking the event loop (the server lives in this process). */
async function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP("curl", ["-sS", "--max-time", "30", ...args], { encoding: "utf8", maxBuffer: 4 << 20 });
}

/** Splits `curl -i` output into the final response's status line, headers and body. */
function parseCurlI(out: string): { status: string; headers: Record<string, string>; body: string } {
  const blocks = out.split("\r\n\r\n");
  let i = 0;
  while (blocks[i]?.match(/^HTTP\/\S+ 100/)) i++; // skip interim 100 Continue
  const [statusLine = "", ...lines] = (blocks[i] ?? "").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: statusLine, headers, body: blocks.slice(i + 1).join("\r\n\r\n") };
}

/** One request over an existing HTTP/2 session, body buffered. */
function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    const parts: Buffer[] = [];
    let resHeaders: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      resHeaders = h;
    });
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => resolve({ headers: resHeaders, body: Buffer.concat(parts) }));
    stream.on("error", reject);
    stream.end(body);
  });
}

/**
 * Opens an HTTP/2 session with a 16 MiB stream window and, unless told otherwise, a 64 MiB connection
 * window, like the project's own clients.
 */
function h2Connect(port: number, bigConnectionWindow = true): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 16 << 20 } });
    session.once("error", reject);
    session.once("connect", () => {
      if (bigConnectionWindow) session.setLocalWindowSize(64 << 20);
      resolve(session);
    });
  });
}

/** Digest and length of everything a stream yields. */
async function digestOf(stream: AsyncIterable<Buffer>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** Yields `data` in 1 MiB pieces. */
function* slices(data: Buffer): Generator<Buffer> {
  for (let at = 0; at < data.length; at += 1 << 20) yield data.subarray(at, at + (1 << 20));
}

/** Resolves when the socket has closed (the server hung up); consumes what the server sends. */
function closedOf(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) resolve();
    sock.on("error", () => {});
    sock.once("close", () => resolve());
    sock.resume(); // a paused socket never sees the server's FIN
  });
}

describe("listenDual", () => {
  let listener: DualListener;
  let base: string;
  const handlerErrors: unknown[] = [];
  const scratch = join(tmpdir(), `cacheroach-dual-listener-test-${process.pid}`);

  before(async () => {
    mkdirSync(scratch, { recursive: true });
    listener = await listenDual(echo, "127.0.0.1", 0, {
      headersTimeoutMs: 400,
      onError: (err, source) => {
        if (source === "handler") handlerErrors.push(err);
      },
    });
    base = `http://127.0.0.1:${listener.port}`;
  });

  after(async () => {
    await listener.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("binds a random port for port 0 and reports the address", () => {
    assert.ok(listener.port > 0 && listener.port < 65536);
    assert.equal(listener.host, "127.0.0.1");
  });

  it("serves curl over HTTP/1.1", async () => {
    const { stdout } = await curl(["-i", `${base}/hello?x=1`]);
    const res = parseCurlI(stdout);
    assert.match(res.status, /^HTTP\/1\.1 200/);
    assert.equal(res.headers["x-method"], "GET");
    assert.equal(res.headers["x-url"], "/hello?x=1");
    assert.equal(res.headers["x-http-version"], "1.1");
  });

  it("serves curl --http2-prior-knowledge (h2c) with a request body", async () => {
    const { stdout } = await curl([
      "-i",
      "--http2-prior-knowledge",
      "-X",
      "PUT",
      "--data-binary",
      "hello over h2c",
      `${base}/files/a`,
    ]);
    const res = parseCurlI(stdout);
    assert.match(res.status, /^HTTP\/2 200/);
    assert.equal(res.headers["x-method"], "PUT");
    assert.equal(res.headers["x-url"], "/files/a");
    assert.equal(res.headers["x-http-version"], "2.0");
    assert.equal(res.body, "hello over h2c");
  });

  it("answers Expect: 100-continue for curl -T over HTTP/1.1", async () => {
    const file = join(scratch, "upload.bin");
    const data = randomBytes(2 << 20);
    writeFileSync(file, data);
    const out = join(scratch, "echoed.bin");
    const { stderr } = await curl(["-v", "-H", "Expect: 100-continue", "-T", file, "-o", out, `${base}/up`]);
    assert.match(stderr, /> Expect: 100-continue/);
    assert.match(stderr, /< HTTP\/1\.1 100 Continue/);
    assert.match(stderr, /< HTTP\/1\.1 200 OK/);
    assert.ok((await readFile(out)).equals(data));
  });

  it("serves Node's fetch (HTTP/1.1), including a streamed request body", async () => {
    const get = await fetch(`${base}/get?q=%20`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("x-http-version"), "1.1");
    assert.equal(get.headers.get("x-url"), "/get?q=%20");
    assert.equal((await get.arrayBuffer()).byteLength, 0);

    const body = Readable.toWeb(Readable.from([Buffer.from("streamed "), Buffer.from("body")]));
    const put = await fetch(`${base}/put`, { method: "PUT", body, duplex: "half" } as RequestInit);
    assert.equal(put.headers.get("x-method"), "PUT");
    assert.equal(await put.text(), "streamed body");
  });

  it("advertises a 16 MiB stream window and a 64 MiB connection window over HTTP/2", async () => {
    const session = await h2Connect(listener.port);
    try {
      await h2Request(session, { ":method": "GET", ":path": "/" });
      assert.equal(session.remoteSettings.initialWindowSize, 16 << 20);
      assert.ok((session.state.remoteWindowSize ?? 0) >= 60 << 20, String(session.state.remoteWindowSize));
    } finally {
      session.close();
    }
  });

  it("serves a node:http2 client", async () => {
    const session = await h2Connect(listener.port);
    try {
      const get = await h2Request(session, { ":method": "GET", ":path": "/h2?y=2" });
      assert.equal(get.headers[":status"], 200);
      assert.equal(get.headers["x-http-version"], "2.0");
      assert.equal(get.headers["x-url"], "/h2?y=2");
      const post = await h2Request(session, { ":method": "POST", ":path": "/p" }, Buffer.from("h2 body"));
      assert.equal(post.headers["x-method"], "POST");
      assert.equal(post.body.toString(), "h2 body");
    } finally {
      session.close();
    }
  });

  describe("64 MiB PUT round-trips byte-identical", () => {
    const big = randomBytes(64 << 20);
    const want = { sha256: createHash("sha256").update(big).digest("hex"), bytes: big.length };

    it("over HTTP/1.1 (node:http)", async () => {
      const req = http.request(`${base}/big`, { method: "PUT", headers: { "content-length": big.length } });
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        req.once("response", resolve);
        req.once("error", reject);
      });
      // Read the echo while still uploading: the server only reads as fast as we drain its response.
      const echoed = response.then(async (res) => ({
        version: res.headers["x-http-version"],
        got: await digestOf(res),
      }));
      const [{ version, got }] = await Promise.all([echoed, pipeline(Readable.from(slices(big)), req)]);
      assert.equal(version, "1.1");
      assert.deepEqual(got, want);
    });

    it("over h2c (node:http2)", async () => {
      // Not a 64 MiB client connection window: full-duplex bulk on one session with large windows on
      // *both* ends deadlocks in Node (each Http2Session stops reading its socket while a write is
      // pending, so both ends wait for the other to read). The server's windows are the large ones here.
      const session = await h2Connect(listener.port, false);
      try {
        const stream = session.request({ ":method": "PUT", ":path": "/big" });
        const [got] = await Promise.all([digestOf(stream), pipeline(Readable.from(slices(big)), stream)]);
        assert.deepEqual(got, want);
      } finally {
        session.close();
      }
    });
  });

  describe("bad clients do not crash the process", () => {
    it("garbage bytes get the connection closed", async () => {
      const sock = net.connect(listener.port, "127.0.0.1");
      sock.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
      sock.write(randomBytes(4096));
      await closedOf(sock);
      assert.equal((await fetch(`${base}/still-up`)).status, 200);
    });

    it("the h2 preface followed by garbage frames ends the session", async () => {
      const sock = net.connect(listener.port, "127.0.0.1");
      sock.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"));
      sock.write(randomBytes(4096));
      await closedOf(sock);
      assert.equal((await fetch(`${base}/still-up`)).status, 200);
    });

    it("a connection reset mid-preface, mid-head and mid-upload is survived", async () => {
      for (const bytes of [
        "PRI * HTTP/2",
        "PUT /x HTTP/1.1\r\nHost: a\r\n",
        "PUT /x HTTP/1.1\r\ncontent-length: 99999\r\n\r\nab",
      ]) {
        const sock = net.connect(listener.port, "127.0.0.1");
        await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
        sock.write(bytes);
        await new Promise((resolve) => setTimeout(resolve, 30));
        sock.resetAndDestroy();
      }
      const session = await h2Connect(listener.port);
      const stream = session.request({ ":method": "PUT", ":path": "/abort" });
      stream.on("error", () => {});
      stream.write(randomBytes(1 << 20));
      await new Promise((resolve) => setTimeout(resolve, 30));
      session.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal((await fetch(`${base}/still-up`)).status, 200);
      const s2 = await h2Connect(listener.port);
      assert.equal((await h2Request(s2, { ":method": "GET", ":path": "/" })).headers[":status"], 200);
      s2.close();
    });

    it("a stalled request head gets 408 after headersTimeoutMs", async () => {
      const sock = net.connect(listener.port, "127.0.0.1");
      const chunks: Buffer[] = [];
      sock.on("data", (d: Buffer) => chunks.push(d));
      sock.write("GET /slow HTTP/1.1\r\nHost: a\r\n");
      const t0 = Date.now();
      await closedOf(sock);
      assert.ok(Date.now() - t0 < 3000);
      assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 408/);
    });

    it("a silent connection is dropped after headersTimeoutMs", async () => {
      const sock = net.connect(listener.port, "127.0.0.1");
      const t0 = Date.now();
      await closedOf(sock);
      assert.ok(Date.now() - t0 < 3000);
    });

    it("a throwing handler yields 500 and is reported", async () => {
      const before = handlerErrors.length;
      assert.equal((await fetch(`${base}/throw`)).status, 500);
      const session = await h2Connect(listener.port);
      assert.equal(
        (await h2Request(session, { ":method": "GET", ":path": "/throw" })).headers[":status"],
        500,
      );
      session.close();
      assert.equal(handlerErrors.length, before + 2);
    });
  });

  describe("close()", () => {
    it("resolves within 1 s with idle keep-alive HTTP/1.1 and HTTP/2 connections open", async () => {
      const own = await listenDual(echo, "127.0.0.1", 0);
      const agent = new http.Agent({ keepAlive: true });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`http://127.0.0.1:${own.port}/idle`, { agent }, resolve).once("error", reject);
      });
      res.resume();
      await new Promise((resolve) => res.once("end", resolve));
      const session = await h2Connect(own.port);
      session.on("error", () => {});
      await h2Request(session, { ":method": "GET", ":path": "/idle" });
      const sniffing = net.connect(own.port, "127.0.0.1"); // connected, never sends a byte
      sniffing.on("error", () => {});

      const t0 = Date.now();
      await own.close();
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 1000, `close() took ${elapsed} ms`);
      await new Promise((resolve) => session.once("close", resolve));
      await closedOf(sniffing);
      await assert.rejects(fetch(`http://127.0.0.1:${own.port}/`));
      agent.destroy();
      await own.close(); // idempotent
    });

    it("lets in-flight requests finish within shutdownGraceMs", async () => {
      const slow: RequestHandler = (_req, res) => {
        res.writeHead(200);
        (res as unknown as Writable).write("first ");
        setTimeout(() => res.end("last"), 300);
      };
      const own = await listenDual(slow, "127.0.0.1", 0, { shutdownGraceMs: 2000 });
      const h1Body = fetch(`http://127.0.0.1:${own.port}/`).then((r) => r.text());
      const session = await h2Connect(own.port);
      const h2Body = h2Request(session, { ":method": "GET", ":path": "/" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const t0 = Date.now();
      await own.close();
      assert.ok(Date.now() - t0 < 1500);
      assert.equal(await h1Body, "first last");
      assert.equal((await h2Body).body.toString(), "first last");
      session.destroy();
    });

    it("drains: idle connections close at once, the port answers until the last request is done", async () => {
      let release: () => void = () => {};
      const released = new Promise<void>((r) => {
        release = r;
      });
      const gated: RequestHandler = (req, res) => {
        if (req.url !== "/slow") return echo(req, res);
        res.writeHead(200);
        (res as unknown as Writable).write("first ");
        released.then(() => res.end("last"));
      };
      const own = await listenDual(gated, "127.0.0.1", 0, { shutdownGraceMs: 10_000 });
      const agent = new http.Agent({ keepAlive: true });
      let idleSocket: net.Socket | undefined;
      const idle = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(`http://127.0.0.1:${own.port}/idle`, { agent }, resolve).once("error", reject);
        req.once("socket", (sock) => {
          idleSocket = sock;
        });
      });
      idle.resume();
      await new Promise((resolve) => idle.once("end", resolve));
      const idleSession = await h2Connect(own.port);
      idleSession.on("error", () => {});
      await h2Request(idleSession, { ":method": "GET", ":path": "/idle" });
      const busySession = await h2Connect(own.port);
      busySession.on("error", () => {});
      const h2Slow = h2Request(busySession, { ":method": "GET", ":path": "/slow" });
      const h1Slow = fetch(`http://127.0.0.1:${own.port}/slow`).then((r) => r.text());
      await new Promise((resolve) => setTimeout(resolve, 100));

      const goaway = new Promise((r) => busySession.once("goaway", r));
      const idleSessionClosed = new Promise((r) => idleSession.once("close", r));
      const closing = own.close();
      await within(closedOf(idleSocket!), 1000, "idle HTTP/1.1 connection closed");
      await within(idleSessionClosed, 1000, "idle HTTP/2 session closed");
      await within(goaway, 1000, "GOAWAY on the busy session");

      // The port still answers while requests are in flight, each on a connection of its own.
      const during = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`http://127.0.0.1:${own.port}/during`, { agent }, resolve).once("error", reject);
      });
      during.resume();
      assert.equal(during.statusCode, 200);
      assert.equal(during.headers["connection"], "close");

      release();
      assert.equal(await h1Slow, "first last");
      assert.equal((await h2Slow).body.toString(), "first last");
      await within(closing, 2000, "close() once the last request is done");
      await assert.rejects(fetch(`http://127.0.0.1:${own.port}/`), "the port is released");
      agent.destroy();
      busySession.destroy();
    });

    it("answers a request sent, after close(), on a connection accepted before it", async () => {
      let release: () => void = () => {};
      const released = new Promise<void>((r) => {
        release = r;
      });
      const gated: RequestHandler = (req, res) => {
        if (req.url === "/slow") released.then(() => res.end("slow"));
        else res.end("fast");
      };
      const own = await listenDual(gated, "127.0.0.1", 0, { shutdownGraceMs: 5000 });
      const slow = fetch(`http://127.0.0.1:${own.port}/slow`).then((r) => r.text());
      const early = net.connect(own.port, "127.0.0.1");
      await new Promise((resolve) => early.once("connect", resolve));
      await new Promise((resolve) => setTimeout(resolve, 100)); // accepted, sniffing
      const closing = own.close();
      early.write("GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
      const answer = await within(untilClosed(early), 2000, "answer on the early connection");
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(answer, /\r\nConnection: close\r\n/i);
      assert.match(answer, /fast$/);
      release();
      assert.equal(await slow, "slow");
      await within(closing, 3000, "close()");
    });

    it("answers Connection: close to an HTTP/1.1 request in flight whose answer had not begun", async () => {
      let answer: () => void = () => {};
      const waiting = new Promise<void>((r) => {
        answer = r;
      });
      const late: RequestHandler = (_req, res) => {
        waiting.then(() => res.end("done"));
      };
      const own = await listenDual(late, "127.0.0.1", 0, { shutdownGraceMs: 5000 });
      const res = new Promise<http.IncomingMessage>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${own.port}/`, { agent: new http.Agent({ keepAlive: true }) }, resolve)
          .once("error", reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const closing = own.close();
      answer();
      const r = await res;
      r.resume();
      assert.equal(r.headers["connection"], "close");
      await within(closing, 2000, "close()");
    });

    it("cuts in-flight requests at once with the default shutdownGraceMs of 0", async () => {
      const never: RequestHandler = (_req, res) => {
        res.writeHead(200);
        (res as unknown as Writable).write("started");
      };
      const own = await listenDual(never, "127.0.0.1", 0);
      const res = await fetch(`http://127.0.0.1:${own.port}/`);
      const text = res.text();
      const t0 = Date.now();
      await own.close();
      assert.ok(Date.now() - t0 < 500);
      await assert.rejects(text);
    });
  });
});

/** Resolves with `p`, or rejects naming `what` if it has not settled after `ms` (a liveness bound, not a speed claim). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing happened within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Everything a stream yields, concatenated. */
async function bodyOf(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Everything a raw socket receives until the server closes it. */
async function untilClosed(sock: net.Socket): Promise<string> {
  const chunks: Buffer[] = [];
  sock.on("data", (d: Buffer) => chunks.push(d));
  await closedOf(sock);
  return Buffer.concat(chunks).toString("latin1");
}

/** One HTTP/2 frame. */
function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK "literal without indexing, new name" field (names and values under 127 bytes). */
function hpackField(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

describe("listenDual limits", () => {
  const TIMEOUT = 800;
  /** A trickle's pause between bytes: well under TIMEOUT even on a loaded machine. */
  const TRICKLE_MS = 150;
  let listener: DualListener;
  let handled = 0;

  before(async () => {
    // Like the server's router: reads the whole body, then answers with what it got. /slow is
    // slow to answer and /slow-read slow to start reading.
    const handler: RequestHandler = (req, res) => {
      handled++;
      const delay = req.url === "/slow" || req.url === "/slow-read" ? 2.5 * TIMEOUT : 0;
      setTimeout(async () => {
        try {
          const got = await digestOf(req);
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(got));
        } catch {
          // a cut request
        }
      }, delay);
    };
    listener = await listenDual(handler, "127.0.0.1", 0, {
      bodyIdleTimeoutMs: TIMEOUT,
      idleTimeoutMs: TIMEOUT,
      initialWindowSize: 256 << 10,
      connectionWindowSize: 1 << 20,
    });
  });
  after(async () => listener.close());

  it("advertises 100 concurrent streams and a 16 KiB header list over HTTP/2", async () => {
    const session = await h2Connect(listener.port, false);
    try {
      await h2Request(session, { ":method": "GET", ":path": "/" });
      assert.equal(session.remoteSettings.maxConcurrentStreams, 100);
      assert.equal(session.remoteSettings.maxHeaderListSize, 16 << 10);
    } finally {
      session.close();
    }
  });

  it("refuses HTTP/2 headers over 16 KiB (431), like HTTP/1.1, before the handler", async () => {
    const session = await h2Connect(listener.port, false);
    try {
      const before = handled;
      const big = { ":method": "GET", ":path": "/", "x-big": "a".repeat(20_000) };
      assert.equal((await h2Request(session, big)).headers[":status"], 431);
      const ok = await h2Request(session, { ":method": "GET", ":path": "/", "x-big": "a".repeat(15_000) });
      assert.equal(ok.headers[":status"], 200);
      // Once the client has acknowledged the settings, Node itself resets such a stream.
      const again = await h2Request(session, big).then(
        (r) => String(r.headers[":status"]),
        (err: Error) => err.message,
      );
      assert.match(again, /^431$|ENHANCE_YOUR_CALM/);
      assert.equal(handled, before + 1, "the handler saw only the request within the limit");
    } finally {
      session.close();
    }
    const sock = net.connect(listener.port, "127.0.0.1");
    sock.write(`GET / HTTP/1.1\r\nHost: a\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`);
    assert.match(await untilClosed(sock), /^HTTP\/1\.1 431/);
  });

  it("refuses two Host headers (HTTP/1.1: 400; HTTP/2: stream reset) before the handler", async () => {
    const before = handled;
    const sock = net.connect(listener.port, "127.0.0.1");
    sock.write("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n");
    const answer = await untilClosed(sock);
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /more than one Host header/);

    const raw = net.connect(listener.port, "127.0.0.1");
    const block = Buffer.concat([
      hpackField(":method", "GET"),
      hpackField(":path", "/"),
      hpackField(":scheme", "http"),
      hpackField("host", "a.example"),
      hpackField("host", "b.example"),
    ]);
    raw.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
        h2Frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
        h2Frame(1, 0x5, 1, block), // HEADERS, END_STREAM | END_HEADERS
      ]),
    );
    const frames: number[] = [];
    let got = Buffer.alloc(0);
    await within(
      new Promise<void>((resolve) => {
        raw.on("data", (d: Buffer) => {
          got = Buffer.concat([got, d]);
          for (let at = 0; at + 9 <= got.length; ) {
            const len = got.readUIntBE(at, 3);
            if (at + 9 + len > got.length) break;
            if (got.readUInt32BE(at + 5) === 1) frames.push(got[at + 3]!);
            at += 9 + len;
          }
          if (frames.length > 0) resolve();
        });
      }),
      10_000,
      "an answer on stream 1",
    );
    raw.destroy();
    assert.deepEqual(frames, [3], "RST_STREAM, no response headers");
    assert.equal(handled, before, "the handler never saw either request");
  });

  it("answers 400 over HTTP/2 when Host differs from :authority", async () => {
    const session = await h2Connect(listener.port, false);
    try {
      const before = handled;
      const bad = await h2Request(session, {
        ":method": "GET",
        ":path": "/",
        ":authority": "a.example",
        host: "b.example",
      });
      assert.equal(bad.headers[":status"], 400);
      assert.match(bad.body.toString(), /Host header differs from its :authority/);
      assert.equal(handled, before);
      const same = await h2Request(session, {
        ":method": "GET",
        ":path": "/",
        ":authority": "a.example",
        host: "A.example",
      });
      assert.equal(same.headers[":status"], 200);
    } finally {
      session.close();
    }
  });

  it("closes an idle HTTP/2 session, but not one whose stream waits for a slow handler", async () => {
    const idle = await h2Connect(listener.port, false);
    await h2Request(idle, { ":method": "GET", ":path": "/" });
    await within(new Promise((resolve) => idle.once("close", resolve)), 10_000, "idle session closed");

    const busy = await h2Connect(listener.port, false);
    let closedEarly = false;
    busy.once("goaway", () => {
      closedEarly = true;
    });
    const slow = await h2Request(busy, { ":method": "GET", ":path": "/slow" });
    assert.equal(slow.headers[":status"], 200);
    assert.equal(closedEarly, false, "a stream was open: the session must stay");
    busy.close();
  });

  it("answers 408 to a stalled HTTP/1.1 body and closes the connection; a trickling one completes", async () => {
    const sock = net.connect(listener.port, "127.0.0.1");
    sock.write("PUT /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    const answer = await within(untilClosed(sock), 10_000, "stalled body cut");
    assert.match(answer, /HTTP\/1\.1 408/);
    assert.match(answer, /request body stalled/);

    // One byte every TRICKLE_MS for over twice TIMEOUT: slow, but always progressing.
    const body = Buffer.from("abcdefghijkl");
    const req = http.request(`http://127.0.0.1:${listener.port}/trickle`, {
      method: "PUT",
      headers: { "content-length": body.length },
    });
    const res = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.once("error", reject);
    });
    for (const byte of body) {
      req.write(Buffer.from([byte]));
      await new Promise((resolve) => setTimeout(resolve, TRICKLE_MS));
    }
    req.end();
    const r = await res;
    assert.equal(r.statusCode, 200);
    assert.equal(JSON.parse((await bodyOf(r)).toString()).bytes, body.length);
  });

  it("answers 408 to a stalled HTTP/2 body and resets its stream; a trickling one completes", async () => {
    const session = await h2Connect(listener.port, false);
    try {
      const stalled = session.request({ ":method": "PUT", ":path": "/stall" });
      stalled.write(Buffer.from("0123456789"));
      const status = await within(
        new Promise<number | undefined>((resolve, reject) => {
          stalled.once("response", (h) => resolve(h[":status"]));
          stalled.once("error", reject);
        }),
        10_000,
        "stalled body answered",
      );
      assert.equal(status, 408);
      stalled.resume();
      await within(new Promise((resolve) => stalled.once("close", resolve)), 10_000, "stalled stream closed");

      const trickle = session.request({ ":method": "PUT", ":path": "/trickle" });
      const echoed = bodyOf(trickle);
      for (let i = 0; i < 12; i++) {
        trickle.write(Buffer.from([i]));
        await new Promise((resolve) => setTimeout(resolve, TRICKLE_MS));
      }
      trickle.end();
      assert.equal(JSON.parse((await echoed).toString()).bytes, 12);
    } finally {
      session.close();
    }
  });

  it("does not cut a client whose body waits on a handler slow to read it", async () => {
    const big = randomBytes(4 << 20);
    const want = { sha256: createHash("sha256").update(big).digest("hex"), bytes: big.length };
    const req = http.request(`http://127.0.0.1:${listener.port}/slow-read`, {
      method: "PUT",
      headers: { "content-length": big.length },
    });
    const res = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.once("error", reject);
    });
    const [r] = await Promise.all([res, pipeline(Readable.from(slices(big)), req)]);
    assert.equal(r.statusCode, 200);
    assert.deepEqual(JSON.parse((await bodyOf(r)).toString()), want);

    const session = await h2Connect(listener.port, false);
    try {
      const stream = session.request({ ":method": "PUT", ":path": "/slow-read" });
      const [got] = await Promise.all([bodyOf(stream), pipeline(Readable.from(slices(big)), stream)]);
      assert.deepEqual(JSON.parse(got.toString()), want);
    } finally {
      session.close();
    }
  });
});
