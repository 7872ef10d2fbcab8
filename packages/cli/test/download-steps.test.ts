/**
 * The steps of a download (lib/download.ts), each alone against scripted HTTP answers: the
 * receiver of the bytes, one attempt, the attempt loop, and the verification.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Readable, Writable } from "node:stream";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  type FileMeta,
  FileMetaSchema,
  type RetrieveResponse,
  RetrieveResponseSchema,
} from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type AttemptContext,
  attemptOnce,
  checkReceived,
  type DownloadContext,
  type HttpGetter,
  Receiver,
  receiveAll,
  TransientFailure,
} from "../src/lib/download.js";
import { BlockPipeline } from "../src/lib/download-blocks.js";
import { IntegrityError } from "../src/lib/errors.js";
import { contentHash, hex } from "../src/lib/rope-hash.js";
import { type Sink, streamSink } from "../src/lib/sinks.js";

const CHUNK = 16;
const DATA = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz!?");
const META: FileMeta = create(FileMetaSchema, {
  path: "/f",
  version: 7n,
  size: BigInt(DATA.length),
  chunkSize: CHUNK,
  contentHash: contentHash(DATA, CHUNK),
});
const ETAG = `"${hex(META.contentHash)}"`;

/** A sink keeping what it is given. */
function memorySink(): Sink & { bytes(): Buffer } {
  const parts: Buffer[] = [];
  return {
    async write(d) {
      parts.push(Buffer.from(d));
    },
    async commit() {},
    async abort() {},
    bytes: () => Buffer.concat(parts),
  };
}

/** A response with `status` and `headers` whose body is `pieces`, then (with `cut`) a reset. */
function answer(
  status: number,
  headers: Record<string, string>,
  pieces: Buffer[] = [],
  cut = false,
): IncomingMessage {
  async function* body() {
    for (const p of pieces) yield p;
    if (cut) throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  }
  return Object.assign(Readable.from(body()), { statusCode: status, headers, complete: false }) as never;
}

/** A getter answering with `script` in turn (an Error is a failed connection); logs what was asked. */
function scripted(script: (IncomingMessage | Error)[]) {
  const asked: { url: string; headers: Record<string, string> }[] = [];
  const http: HttpGetter = {
    async get(url, headers = {}) {
      asked.push({ url, headers });
      const next = script.shift();
      if (!next) throw new Error("no more answers scripted");
      if (next instanceof Error) throw next;
      return next;
    },
  };
  return { http, asked };
}

const step = (http: HttpGetter, pinned = false): AttemptContext => ({
  remotePath: "/f",
  etag: ETAG,
  pinned,
  http,
  log: () => {},
});

describe("Receiver", () => {
  test("hashes, writes and counts the bytes, and refuses more than the size", async () => {
    const sink = memorySink();
    const r = new Receiver("/f", META, sink, {});
    await r.write(DATA.subarray(0, 10));
    await r.write(DATA.subarray(10));
    assert.equal(r.received, DATA.length);
    assert.equal(await checkReceived("/f", META, r, "file"), undefined);
    assert.deepEqual(sink.bytes(), DATA, "in the sink once verified");
    await assert.rejects(r.write(Buffer.from("x")), /sent more than 38 bytes/);
  });

  test("continues from the bytes a killed get left in the temp file", async () => {
    const r = new Receiver("/f", META, memorySink(), {});
    await r.resumeFrom({
      ...memorySink(),
      resumedBytes: 20,
      readResumed: async (onPiece) => onPiece(DATA.subarray(0, 20)),
    });
    assert.equal(r.received, 20);
    assert.equal(r.resumed, true);
    await r.write(DATA.subarray(20));
    assert.equal(await checkReceived("/f", META, r, "file"), undefined);
  });
});

describe("BlockPipeline", () => {
  const MiB = 1 << 20;
  const big = randomBytes(9 * MiB + 5);

  test("blocks reach the sink in order once hashed; bytes already in the sink are not written again", async () => {
    const sink = memorySink();
    const p = new BlockPipeline(big.length, MiB, sink, undefined);
    p.put(big.subarray(0, 5 * MiB + 3), true); // a continued partial download
    for (let off = 5 * MiB + 3; off < big.length; ) {
      const s = p.space(big.length - off);
      const n = Math.min(s.length, 100_000);
      big.copy(s, 0, off, off + n);
      p.filled(n);
      off += n;
      await p.ready();
    }
    assert.deepEqual(await p.finish(), contentHash(big, MiB));
    assert.deepEqual(sink.bytes(), big.subarray(5 * MiB + 3));
  });

  test("a failed write fails the feeder and the result; after stop() nothing more is written", async () => {
    let writes = 0;
    const failing: Sink = {
      async write() {
        writes++;
        throw new Error("disk full");
      },
      async commit() {},
      async abort() {},
    };
    const p = new BlockPipeline(big.length, MiB, failing, undefined);
    p.put(big.subarray(0, 4 * MiB));
    await assert.rejects(p.finish(), /disk full/);
    await assert.rejects(p.ready(), /disk full/, "the feeder learns of it too");
    const sink = memorySink();
    const q = new BlockPipeline(big.length, MiB, sink, undefined);
    q.put(big.subarray(0, 4 * MiB + 1));
    await q.stop();
    await q.finish();
    assert.equal(writes, 1);
    assert.equal(sink.bytes().length, 0, "no block was written after stop()");
  });

  test("the stream sink resolves a write once the stream is done with the memory", async () => {
    let done: (() => void) | undefined;
    const slow = new Writable({
      highWaterMark: 1 << 20,
      write(_c, _e, cb) {
        done = cb;
      },
    });
    const sink = streamSink(slow);
    let resolved = false;
    const w = sink.write(Buffer.from("abc")).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(resolved, false, "the memory may not be reused yet");
    done?.();
    await w;
    assert.equal(resolved, true);
  });
});

describe("checkReceived", () => {
  test("names a short content or a hash mismatch, and what became of the output", async () => {
    const short = new Receiver("/f", META, memorySink(), {});
    await short.write(DATA.subarray(0, 5));
    assert.match(String(await checkReceived("/f", META, short, "file")), /received 5 of 38 bytes/);
    const wrong = new Receiver("/f", META, memorySink(), {});
    await wrong.write(Buffer.alloc(DATA.length, 1));
    const toFile = await checkReceived("/f", META, wrong, "file");
    assert.ok(toFile instanceof IntegrityError);
    assert.match(toFile.message, /content hash mismatch.*; nothing was written$/);
    assert.match(String(await checkReceived("/f", META, wrong, "stream")), /; the output is corrupt$/);
  });
});

describe("attemptOnce", () => {
  test("a 200 delivers the whole content", async () => {
    const { http, asked } = scripted([answer(200, { etag: ETAG }, [DATA.subarray(0, 7), DATA.subarray(7)])]);
    const r = new Receiver("/f", META, memorySink(), {});
    assert.equal(await attemptOnce("http://x/f", step(http), r), "complete");
    assert.deepEqual(asked[0]?.headers, {});
    assert.equal(r.received, DATA.length);
  });

  test("asks for the rest with Range and If-Range, and checks the Content-Range", async () => {
    const r = new Receiver("/f", META, memorySink(), {});
    await r.write(DATA.subarray(0, 10));
    const ok = scripted([
      answer(206, { etag: ETAG, "content-range": "bytes 10-37/38" }, [DATA.subarray(10)]),
    ]);
    assert.equal(await attemptOnce("http://x/f", step(ok.http), r), "complete");
    assert.deepEqual(ok.asked[0]?.headers, { range: "bytes=10-", "if-range": ETAG });

    const r2 = new Receiver("/f", META, memorySink(), {});
    await r2.write(DATA.subarray(0, 10));
    const bad = scripted([answer(206, { "content-range": "bytes 0-37/38" }, [DATA])]);
    await assert.rejects(attemptOnce("http://x/f", step(bad.http), r2), IntegrityError);
  });

  test("a 200 to a range request: the bytes already received are skipped", async () => {
    const sink = memorySink();
    const r = new Receiver("/f", META, sink, {});
    await r.write(DATA.subarray(0, 10));
    const { http } = scripted([answer(200, { etag: ETAG }, [DATA.subarray(0, 4), DATA.subarray(4)])]);
    assert.equal(await attemptOnce("http://x/f", step(http), r), "complete");
    await r.digest();
    assert.deepEqual(sink.bytes(), DATA);
  });

  test("transient failures: cannot connect, HTTP 503, a body cut short", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const { http } = scripted([
      refused,
      answer(503, {}, [Buffer.from("database unavailable")]),
      answer(200, { etag: ETAG }, [DATA.subarray(0, 12)], true),
      answer(200, { etag: ETAG }, [DATA.subarray(0, 12)]),
    ]);
    const r = new Receiver("/f", META, memorySink(), {});
    const failure = async () => {
      try {
        await attemptOnce("http://x/f", step(http), r);
      } catch (err) {
        assert.ok(err instanceof TransientFailure, String(err));
        return err;
      }
      assert.fail("no failure");
    };
    assert.equal((await failure()).what, "cannot connect");
    const http503 = await failure();
    assert.equal(http503.what, "HTTP 503");
    assert.ok(http503.cause instanceof ConnectError);
    assert.equal(http503.cause.code, Code.Unavailable);
    assert.match(http503.cause.message, /answered HTTP 503: database unavailable/);
    assert.equal((await failure()).what, "connection dropped");
    assert.equal(r.received, 12);
    // An answer that ends before the content does is a dropped connection too.
    assert.equal((await failure()).what, "connection dropped");
  });

  test("a 404 is final; another version behind an unpinned URL is stale, behind a pinned one an error", async () => {
    const { http } = scripted([
      answer(404, {}, [Buffer.from("no such file")]),
      answer(200, { etag: '"other"' }, [DATA]),
      answer(200, { etag: '"other"' }, [DATA]),
    ]);
    const r = new Receiver("/f", META, memorySink(), {});
    await assert.rejects(
      attemptOnce("http://x/f", step(http), r),
      (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound,
    );
    assert.equal(await attemptOnce("http://x/f", step(http), r), "stale");
    await assert.rejects(attemptOnce("http://x/f", step(http, true), r), /sent ETag "other"/);
    assert.equal(r.received, 0);
  });
});

describe("receiveAll", () => {
  const signed = (uri: string): RetrieveResponse =>
    create(RetrieveResponseSchema, { file: META, getUri: uri });

  function context(http: HttpGetter, log: string[], over: Partial<DownloadContext> = {}): DownloadContext {
    return {
      files: undefined as never,
      tenantId: "t",
      server: "http://x",
      http,
      retryDelayMs: 1,
      log: (m) => log.push(m),
      ...over,
    };
  }

  test("resumes after failures on fresh URLs pinned to the version", async () => {
    const { http, asked } = scripted([
      answer(200, { etag: ETAG }, [DATA.subarray(0, 9)], true),
      answer(503, {}),
      answer(206, { etag: ETAG, "content-range": "bytes 9-37/38" }, [DATA.subarray(9)]),
    ]);
    const versions: bigint[] = [];
    const sign = async (v: bigint) => {
      versions.push(v);
      return signed(`/pinned/${versions.length}`);
    };
    const log: string[] = [];
    const sink = memorySink();
    const r = new Receiver("/f", META, sink, {});
    await receiveAll("/f", META, "http://x/latest", r, sign, context(http, log));
    assert.deepEqual(sink.bytes(), DATA);
    assert.deepEqual(versions, [7n, 7n]);
    assert.deepEqual(
      asked.map((a) => a.url),
      ["http://x/latest", "http://x/pinned/1", "http://x/pinned/2"],
    );
    assert.deepEqual(
      log.filter((l) => l.includes("retrying")),
      [
        "/f: connection dropped (socket hang up) at byte 9 of 38; retrying in 1 ms",
        "/f: HTTP 503 ([unavailable] /f: the signed URL answered HTTP 503) at byte 9 of 38; retrying in 2 ms",
      ],
    );
  });

  test("gives up after the attempts in a row, with the code of the last failure", async () => {
    const { http } = scripted([answer(503, {}), answer(503, {}), answer(503, {})]);
    const r = new Receiver("/f", META, memorySink(), {});
    await assert.rejects(
      receiveAll(
        "/f",
        META,
        "http://x/f",
        r,
        async () => signed("/again"),
        context(http, [], { attempts: 3 }),
      ),
      (e: unknown) =>
        e instanceof ConnectError &&
        e.code === Code.Unavailable &&
        /HTTP 503 .*gave up after 3 attempts at byte 0 of 38/.test(e.message),
    );
  });

  test("a connection that made progress before it dropped starts a new row", async () => {
    const pieces = [0, 8, 16, 24, 32].map((at) => DATA.subarray(at, at + 8));
    const script: IncomingMessage[] = pieces.map((p, i) =>
      answer(
        i === 0 ? 200 : 206,
        { etag: ETAG, ...(i === 0 ? {} : { "content-range": `bytes ${i * 8}-37/38` }) },
        [p],
        i < pieces.length - 1,
      ),
    );
    const { http } = scripted(script);
    const r = new Receiver("/f", META, memorySink(), {});
    // Four drops with two attempts allowed: each drop delivered 8 bytes, enough to count as progress.
    await receiveAll(
      "/f",
      META,
      "http://x/f",
      r,
      async () => signed("/again"),
      context(http, [], { attempts: 2, progressBytes: 8 }),
    );
    assert.equal(r.received, DATA.length);
  });
});
