/**
 * The CLI's plain-socket HTTP/1.1 GET (lib/raw-http.ts, through HttpClient for http: URLs):
 * bodies read straight into a caller's memory with back-pressure, the head's status and headers,
 * other framings by iteration, and each way a connection can fail, classified as node's own
 * client would (lib/http.ts, isConnectionError).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { HttpClient, isConnectionError } from "@cacheroach/cli";
import type { BodyTarget, HttpAnswer } from "../src/lib/http.js";
import { readSmallBody } from "../src/lib/http.js";
import { type LocalHttp, listenHttp } from "./helpers.js";

/** A target taking at most `piece` bytes per space, busy after every `busyEvery` bytes. */
function memoryTarget(piece: number, busyEvery = Number.POSITIVE_INFINITY) {
  const parts: Buffer[] = [];
  let current = Buffer.alloc(0);
  let sinceReady = 0;
  let pauses = 0;
  const target: BodyTarget & { bytes(): Buffer; pauses(): number } = {
    space: () => {
      current = Buffer.alloc(piece);
      return current;
    },
    filled: (n) => {
      parts.push(Buffer.from(current.subarray(0, n)));
      sinceReady += n;
    },
    busy: () => sinceReady >= busyEvery,
    ready: async () => {
      pauses++;
      await new Promise((r) => setTimeout(r, 5));
      sinceReady = 0;
    },
    bytes: () => Buffer.concat(parts),
    pauses: () => pauses,
  };
  return target;
}

/** A raw TCP server answering each connection with `answer(socket, request head)`. */
async function rawServer(answer: (socket: Socket, head: string) => void) {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let head = "";
    s.on("data", (d) => {
      if (head.includes("\r\n\r\n")) return;
      head += d.toString("latin1");
      if (head.includes("\r\n\r\n")) answer(s, head);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

describe("HttpClient over a plain socket", () => {
  const content = randomBytes(3 * 1024 * 1024 + 17);
  let srv: LocalHttp;
  const seen: Record<string, string | string[] | undefined>[] = [];
  const client = new HttpClient();
  before(async () => {
    srv = await listenHttp((req, res) => {
      seen.push(req.headers);
      if (req.url === "/missing") {
        res.writeHead(404, { "content-type": "text/plain", "cacheroach-error-code": "ERR_NOT_FOUND" });
        res.end("no such file");
        return;
      }
      if (req.url === "/chunked") {
        res.writeHead(200); // no length: chunked
        res.write("hello, ");
        setTimeout(() => res.end("chunked world"), 10);
        return;
      }
      if (req.url === "/cut") {
        res.writeHead(200, { "content-length": String(content.length) });
        res.write(content.subarray(0, 100_000), () => res.destroy());
        return;
      }
      res.writeHead(200, { "content-length": String(content.length), etag: '"e"' });
      res.end(content);
    });
  });
  after(async () => {
    client.close();
    await srv.close();
  });

  test("reads a Content-Length body into the caller's memory, in order, pausing while it is busy", async () => {
    const res = await client.get(`${srv.url}/f?access_token=x`, { range: "bytes=0-" });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.etag, '"e"');
    assert.equal(res.headers["content-length"], String(content.length));
    assert.ok(res.readBody, "a body of known length can be read without copies");
    const target = memoryTarget(100_000, 512 * 1024);
    await res.readBody(target);
    assert.ok(res.complete);
    assert.deepEqual(target.bytes(), content);
    assert.ok(target.pauses() >= 5, `paused ${target.pauses()} times`);
    const h = seen.at(-1)!;
    assert.equal(h["range"], "bytes=0-");
    assert.equal(h["user-agent"], "cacheroach-cli");
    assert.equal(h["connection"], "close");
    assert.equal(h["host"], new URL(srv.url).host);
  });

  test("async iteration gives the body too", async () => {
    const res = await client.get(`${srv.url}/f`);
    const parts: Buffer[] = [];
    for await (const p of res) parts.push(p);
    assert.deepEqual(Buffer.concat(parts), content);
  });

  test("an error answer: status, headers and the start of its body", async () => {
    const res = await client.get(`${srv.url}/missing`);
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers["cacheroach-error-code"], "ERR_NOT_FOUND");
    assert.equal(await readSmallBody(res), "no such file");
  });

  test("a chunked body is decoded by iteration (and cannot be read into memory directly)", async () => {
    const res = await client.get(`${srv.url}/chunked`);
    assert.equal(res.readBody, undefined);
    const parts: Buffer[] = [];
    for await (const p of res) parts.push(p);
    assert.equal(Buffer.concat(parts).toString(), "hello, chunked world");
  });

  test("a body cut short is a premature close, a connection error", async () => {
    const res = await client.get(`${srv.url}/cut`);
    const target = memoryTarget(64 * 1024);
    const err = await res.readBody!(target).then(
      () => assert.fail("no error"),
      (e: unknown) => e,
    );
    assert.ok(isConnectionError(err), String(err));
    assert.equal((err as NodeJS.ErrnoException).code, "ERR_STREAM_PREMATURE_CLOSE");
    assert.equal(res.complete, false);
    assert.deepEqual(target.bytes(), content.subarray(0, target.bytes().length));
  });

  test("a failing target ends the read with its own error", async () => {
    const res = await client.get(`${srv.url}/f`);
    const target = memoryTarget(64 * 1024, 256 * 1024);
    target.ready = () => Promise.reject(new Error("disk full"));
    await assert.rejects(res.readBody!(target), /disk full/);
    const other = await client.get(`${srv.url}/f`);
    const throwing = memoryTarget(64 * 1024);
    throwing.filled = () => {
      throw new Error("too much");
    };
    await assert.rejects(other.readBody!(throwing), /too much/);
  });

  test("a refused connection fails the GET as a connection error", async () => {
    const s = createServer();
    s.listen(0, "127.0.0.1");
    await once(s, "listening");
    const port = (s.address() as AddressInfo).port;
    s.close();
    await once(s, "close");
    const err = await client.get(`http://127.0.0.1:${port}/f`).then(
      () => assert.fail("no error"),
      (e: unknown) => e,
    );
    assert.equal((err as NodeJS.ErrnoException).code, "ECONNREFUSED");
    assert.ok(isConnectionError(err));
  });
});

describe("raw answers: framing and failures", () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers) await c();
  });
  const serve = async (answer: (socket: Socket, head: string) => void) => {
    const s = await rawServer(answer);
    closers.push(s.close);
    return s.url;
  };

  test("a whole small answer in one packet, after an interim 100 Continue", async () => {
    const url = await serve((s) =>
      s.end(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
      ),
    );
    const res: HttpAnswer = await new HttpClient().get(`${url}/f`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["x-a"], "1, 2");
    const target = memoryTarget(3);
    await res.readBody!(target);
    assert.equal(target.bytes().toString(), "hello");
  });

  test("a body until the connection closes, by iteration", async () => {
    const url = await serve((s) => s.end("HTTP/1.1 200 OK\r\n\r\nuntil the end"));
    const res = await new HttpClient().get(`${url}/f`);
    const parts: Buffer[] = [];
    for await (const p of res) parts.push(p);
    assert.equal(Buffer.concat(parts).toString(), "until the end");
  });

  test("a connection closed before the head is a hang-up; garbage is not HTTP", async () => {
    const hangUp = await serve((s) => s.destroy());
    const err = await new HttpClient().get(`${hangUp}/f`).then(
      () => assert.fail("no error"),
      (e: unknown) => e,
    );
    assert.equal((err as NodeJS.ErrnoException).code, "ECONNRESET");
    const garbage = await serve((s) => s.end("SSH-2.0-OpenSSH\r\n\r\n"));
    await assert.rejects(new HttpClient().get(`${garbage}/f`), /not an HTTP\/1.1 response/);
  });

  test("a connection that goes quiet times out", async () => {
    const url = await serve((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    const res = await new HttpClient(200).get(`${url}/f`);
    const err = await res.readBody!(memoryTarget(16)).then(
      () => assert.fail("no error"),
      (e: unknown) => e,
    );
    assert.equal((err as NodeJS.ErrnoException).code, "ETIMEDOUT");
    assert.ok(isConnectionError(err));
  });
});
