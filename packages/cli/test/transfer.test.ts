/**
 * The upload and download logic against in-memory fake services (Connect router transport):
 * transfer sizes, retries with the same state, end-to-end hash checks and clean-up on mismatch;
 * downloads against a fake Retrieve and a real local HTTP server that drops connections on demand.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  chunkHash,
  contentHash,
  DEDUP_BATCH_CHUNKS,
  downloadBatch,
  downloadFile,
  HttpClient,
  IntegrityError,
  uploadFile,
} from "@cacheroach/cli";
import { FileMetaSchema, Files, Uploads } from "@cacheroach/proto";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { listenHttp, tempDir } from "./helpers.js";

const CHUNK = 1024;
const MAX_TRANSFER = 4 * CHUNK + 100; // not a multiple: the client must round down

function fakeUploads() {
  const log = {
    transfers: [] as { state: string; size: number }[],
    commits: [] as string[],
    data: [] as Buffer[],
    failNextTransfer: 0,
    failNextCommit: 0,
  };
  const transport = createRouterTransport((router) => {
    router.service(Uploads, {
      begin(req) {
        if (req.committed.case === "contents" || req.committed.case === "empty") {
          const data = req.committed.case === "contents" ? Buffer.from(req.committed.value) : Buffer.alloc(0);
          return {
            file: create(FileMetaSchema, {
              path: req.path,
              version: 1n,
              size: BigInt(data.length),
              chunkSize: CHUNK,
              contentHash: contentHash(data, CHUNK),
            }),
          };
        }
        return { state: Buffer.from("s0"), chunkSize: CHUNK, maxTransferSize: MAX_TRANSFER };
      },
      transfer(req) {
        const state = Buffer.from(req.state).toString();
        log.transfers.push({ state, size: req.data.length });
        if (log.failNextTransfer > 0) {
          log.failNextTransfer--;
          throw new ConnectError("connection reset", Code.Unavailable);
        }
        const n = Number(state.slice(1));
        // Idempotent: the same state and data give the same answer.
        log.data[n] = Buffer.from(req.data);
        const offset = log.data.slice(0, n + 1).reduce((s, b) => s + b.length, 0);
        return { state: Buffer.from(`s${n + 1}`), offset: BigInt(offset) };
      },
      commit(req) {
        const state = Buffer.from(req.state).toString();
        log.commits.push(state);
        if (log.failNextCommit > 0) {
          log.failNextCommit--;
          throw new ConnectError("deadline", Code.DeadlineExceeded);
        }
        const content = Buffer.concat(log.data);
        const hash = contentHash(content, CHUNK);
        if (!hash.equals(Buffer.from(req.expectedContentHash))) {
          throw new ConnectError("content hash mismatch", Code.DataLoss);
        }
        return {
          file: create(FileMetaSchema, {
            path: "/x",
            version: 1n,
            size: BigInt(content.length),
            chunkSize: CHUNK,
            contentHash: hash,
          }),
        };
      },
    });
  });
  return { log, uploads: createClient(Uploads, transport) };
}

/** What the fake signed-URL server should do with the n-th GET (0-based). */
interface HttpPlan {
  /** Send only this many body bytes, then drop the connection. */
  cutAfter?: (n: number) => number | undefined;
  /** Answer a ranged request with the whole content (200). */
  ignoreRange?: boolean;
  /** Answer with this status and a short body instead. */
  status?: (n: number) => number | undefined;
  /** Send this ETag instead of the content's. */
  etag?: (n: number) => string | undefined;
}

/**
 * A fake Files.Retrieve (router transport) plus a real HTTP server serving the content at the
 * signed URL, with Range/If-Range, and failures on demand.
 */
async function fakeSignedUrls(content: Buffer, hash: Uint8Array, plan: HttpPlan = {}) {
  const log = {
    retrieves: [] as bigint[],
    gets: [] as { token: string; range: string | undefined; ifRange: string | undefined }[],
  };
  const etag = `"${Buffer.from(hash).toString("hex")}"`;
  const server = await listenHttp((req, res) => {
    const n = log.gets.length;
    const token = new URL(req.url ?? "/", "http://x").searchParams.get("access_token") ?? "";
    log.gets.push({
      token,
      range: req.headers.range,
      ifRange: req.headers["if-range"] as string | undefined,
    });
    const status = plan.status?.(n);
    if (status !== undefined) {
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(`status ${status} on purpose`);
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m && !plan.ignoreRange && req.headers["if-range"] === etag) start = Number(m[1]);
    const headers: Record<string, string> = { etag: plan.etag?.(n) ?? etag, "accept-ranges": "bytes" };
    headers["content-length"] = String(content.length - start);
    if (start > 0) {
      headers["content-range"] = `bytes ${start}-${content.length - 1}/${content.length}`;
      res.writeHead(206, headers);
    } else res.writeHead(200, headers);
    const body = content.subarray(start);
    const cut = plan.cutAfter?.(n);
    if (cut === undefined) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, cut), () => res.socket?.destroy());
  });
  const base = server.url;
  const transport = createRouterTransport((router) => {
    router.service(Files, {
      retrieve(req) {
        log.retrieves.push(req.version);
        return {
          getUri: `/_/v0/retrieve/f.bin?access_token=t${log.retrieves.length}-v${req.version}`,
          file: create(FileMetaSchema, {
            path: req.path,
            version: 3n,
            size: BigInt(content.length),
            chunkSize: CHUNK,
            contentHash: hash,
          }),
        };
      },
    });
  });
  const http = new HttpClient();
  return {
    log,
    etag,
    ctx: { files: createClient(Files, transport), tenantId: "t", server: base, http, retryDelayMs: 1 },
    close: async () => {
      http.close();
      await server.close();
    },
  };
}

describe("upload", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("streams chunk-aligned transfers and retries Transfer and Commit with the same state", async () => {
    const content = randomBytes(10 * CHUNK + 7);
    const path = join(dir, "big.bin");
    await writeFile(path, content);
    const { log, uploads } = fakeUploads();
    log.failNextTransfer = 1;
    log.failNextCommit = 2;
    let progressed = 0;
    const file = await uploadFile(
      { localPath: path, remotePath: "/x", size: content.length },
      {
        uploads,
        tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
        oneShotLimit: 100,
        retry: { baseDelayMs: 1 },
        progress: { add: (n) => (progressed += n), addTotal() {}, label() {}, stop() {} },
      },
    );
    assert.equal(file.size, BigInt(content.length));
    assert.deepEqual(Buffer.concat(log.data), content);
    // 4 chunks per transfer (MAX_TRANSFER rounded down), the last one short.
    assert.deepEqual(
      log.transfers.map((t) => `${t.state}:${t.size}`),
      ["s0:4096", "s0:4096", "s1:4096", "s2:2055"],
    );
    assert.deepEqual(log.commits, ["s3", "s3", "s3"]);
    assert.equal(progressed, content.length);
  });

  test("gives up after the retry budget with a clear error", async () => {
    const content = randomBytes(3 * CHUNK);
    const path = join(dir, "fail.bin");
    await writeFile(path, content);
    const { log, uploads } = fakeUploads();
    log.failNextTransfer = 100;
    await assert.rejects(
      uploadFile(
        { localPath: path, remotePath: "/x", size: content.length },
        { uploads, tenantId: "t", oneShotLimit: 100, retry: { baseDelayMs: 1, attempts: 3 } },
      ),
      (err: ConnectError) => {
        assert.equal(err.code, Code.Unavailable);
        assert.match(err.message, /gave up after 3 attempts/);
        return true;
      },
    );
    assert.equal(log.transfers.length, 3);
    assert.equal(log.commits.length, 0);
  });

  test("small and empty files are one call", async () => {
    const { log, uploads } = fakeUploads();
    for (const size of [0, 50]) {
      const path = join(dir, `small-${size}`);
      await writeFile(path, randomBytes(size));
      const file = await uploadFile(
        { localPath: path, remotePath: `/s${size}`, size },
        { uploads, tenantId: "t", oneShotLimit: 100 },
      );
      assert.equal(file.size, BigInt(size));
    }
    assert.equal(log.transfers.length, 0);
  });

  test("a file that changes size during the upload is not committed", async () => {
    const path = join(dir, "shrunk.bin");
    await writeFile(path, randomBytes(2 * CHUNK));
    const { log, uploads } = fakeUploads();
    await assert.rejects(
      uploadFile(
        { localPath: path, remotePath: "/x", size: 5 * CHUNK },
        { uploads, tenantId: "t", oneShotLimit: 100 },
      ),
      /changed while it was being uploaded/,
    );
    assert.equal(log.commits.length, 0);
  });
});

/** A fake of the dedup-aware path: FindMissing, PutChunks, Append, Commit over a chunk store. */
function fakeDedupUploads() {
  const store = new Map<string, Buffer>();
  const uploads = new Map<string, { hash: Buffer; length: number }[]>();
  const log = { put: 0, appended: 0 };
  let next = 0;
  const refsOf = (state: Uint8Array) => {
    const [id] = Buffer.from(state).toString().split(":");
    const refs = uploads.get(id ?? "");
    if (!refs) throw new ConnectError("bad state", Code.InvalidArgument);
    return { id: id ?? "", refs };
  };
  const stateOf = (id: string, n: number) => Buffer.from(`${id}:${n}`);
  const transport = createRouterTransport((router) => {
    router.service(Uploads, {
      begin() {
        const id = `u${next++}`;
        uploads.set(id, []);
        return { state: stateOf(id, 0), chunkSize: CHUNK, maxTransferSize: 3 * CHUNK };
      },
      findMissing(req) {
        return { missing: req.hashes.filter((h) => !store.has(Buffer.from(h).toString("hex"))) };
      },
      putChunks(req) {
        let bytes = 0;
        for (const c of req.chunks) {
          bytes += c.data.length;
          if (!chunkHash(c.data).equals(Buffer.from(c.hash)))
            throw new ConnectError("hash", Code.InvalidArgument);
          store.set(Buffer.from(c.hash).toString("hex"), Buffer.from(c.data));
          log.put++;
        }
        if (bytes > 3 * CHUNK) throw new ConnectError("too big", Code.InvalidArgument);
        return { stored: req.chunks.length };
      },
      append(req) {
        const { id, refs } = refsOf(req.state);
        const n = Number(Buffer.from(req.state).toString().split(":")[1]);
        refs.length = n; // idempotent: replaying a state replaces what followed it
        for (const c of req.chunks) {
          if (!store.has(Buffer.from(c.hash).toString("hex")))
            throw new ConnectError("missing", Code.FailedPrecondition);
          refs.push({ hash: Buffer.from(c.hash), length: c.length });
          log.appended++;
        }
        return { state: stateOf(id, refs.length), offset: BigInt(refs.reduce((s, r) => s + r.length, 0)) };
      },
      commit(req) {
        const { refs } = refsOf(req.state);
        const content = Buffer.concat(refs.map((r) => store.get(r.hash.toString("hex"))!));
        const hash = contentHash(content, CHUNK);
        if (!hash.equals(Buffer.from(req.expectedContentHash)))
          throw new ConnectError("mismatch", Code.DataLoss);
        return {
          file: create(FileMetaSchema, { path: "/d", size: BigInt(content.length), contentHash: hash }),
        };
      },
    });
  });
  return { log, store, uploads: createClient(Uploads, transport) };
}

describe("dedup upload", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("sends only the chunks the tenant lacks", async () => {
    const { log, store, uploads } = fakeDedupUploads();
    const content = randomBytes(70 * CHUNK + 5); // more than one batch of DEDUP_BATCH_CHUNKS
    const path = join(dir, "d.bin");
    await writeFile(path, content);
    const up = () =>
      uploadFile(
        { localPath: path, remotePath: "/d", size: content.length },
        { uploads, tenantId: "t", oneShotLimit: 100, dedup: true },
      );
    const f1 = await up();
    assert.equal(log.put, 71);
    assert.equal(log.appended, 71);
    assert.deepEqual(Buffer.from(f1.contentHash), contentHash(content, CHUNK));

    const f2 = await up();
    assert.equal(log.put, 71, "nothing new sent the second time");
    assert.deepEqual(f2.contentHash, f1.contentHash);

    content.writeUInt8(content.readUInt8(40 * CHUNK + 1) ^ 0xff, 40 * CHUNK + 1); // change one chunk
    await writeFile(path, content);
    await up();
    assert.equal(log.put, 72, "one changed chunk sent");

    // A chunk that vanishes between FindMissing and Append is re-sent.
    store.delete(chunkHash(content.subarray(0, CHUNK)).toString("hex"));
    const realFind = store.has.bind(store);
    let lie = true;
    const first = chunkHash(content.subarray(0, CHUNK)).toString("hex");
    store.has = (k: string) => {
      if (lie && k === first) {
        lie = false;
        return true;
      }
      return realFind(k);
    };
    await up();
    assert.equal(log.put, 72 + DEDUP_BATCH_CHUNKS, "the first batch re-sent after FailedPrecondition");
  });
});

describe("download through signed URLs", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("verified content is renamed into place", async () => {
    const content = randomBytes(5 * CHUNK + 3);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK));
    try {
      const dest = join(dir, "ok.bin");
      const meta = await downloadFile("/ok.bin", { kind: "file", path: dest }, f.ctx);
      assert.equal(meta.version, 3n);
      assert.deepEqual(await readFile(dest), content);
      assert.deepEqual(await readdir(dir), ["ok.bin"]);
      assert.deepEqual(f.log.retrieves, [0n], "one Retrieve of the latest version");
      assert.deepEqual(
        f.log.gets.map((g) => g.range),
        [undefined],
      );
    } finally {
      await f.close();
    }
  });

  test("a hash mismatch fails and leaves nothing behind", async () => {
    const content = randomBytes(5 * CHUNK + 3);
    const wrong = contentHash(Buffer.concat([content, Buffer.from("x")]), CHUNK);
    const f = await fakeSignedUrls(content, wrong);
    try {
      const dest = join(dir, "bad.bin");
      await assert.rejects(downloadFile("/bad.bin", { kind: "file", path: dest }, f.ctx), (err: Error) => {
        assert.ok(err instanceof IntegrityError);
        assert.match(err.message, /content hash mismatch/);
        return true;
      });
      assert.deepEqual(await readdir(dir), ["ok.bin"]);
    } finally {
      await f.close();
    }
  });

  test("a dropped connection resumes with Range and If-Range on a fresh URL pinned to the version", async () => {
    const content = randomBytes(64 * CHUNK + 11);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), {
      cutAfter: (n) => (n < 3 ? 10 * CHUNK + 7 : undefined),
    });
    try {
      const dest = join(dir, "resumed.bin");
      let progressed = 0;
      let total = 0;
      await downloadFile(
        "/resumed.bin",
        { kind: "file", path: dest },
        {
          ...f.ctx,
          progress: { add: (n) => (progressed += n), addTotal: (n) => (total += n), label() {}, stop() {} },
        },
      );
      assert.deepEqual(await readFile(dest), content);
      assert.equal(f.log.gets.length, 4);
      assert.equal(f.log.gets[0]?.range, undefined);
      for (const g of f.log.gets.slice(1)) {
        assert.match(g.range ?? "", /^bytes=[1-9]\d*-$/);
        assert.equal(g.ifRange, f.etag);
      }
      const starts = f.log.gets.slice(1).map((g) => Number(/\d+/.exec(g.range ?? "")?.[0]));
      assert.ok(
        starts[0]! > 0 && starts[1]! > starts[0]! && starts[2]! > starts[1]!,
        `resumes move forward: ${starts}`,
      );
      assert.deepEqual(f.log.retrieves, [0n, 3n, 3n, 3n], "each resume signs a URL pinned to version 3");
      assert.equal(new Set(f.log.gets.map((g) => g.token)).size, 4, "a fresh URL each time");
      assert.equal(progressed, content.length, "no byte counted twice");
      assert.equal(total, content.length);
    } finally {
      await f.close();
    }
  });

  test("a server that ignores the range: the bytes already written are skipped", async () => {
    const content = randomBytes(20 * CHUNK);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), {
      cutAfter: (n) => (n === 0 ? 7 * CHUNK : undefined),
      ignoreRange: true,
    });
    try {
      const chunks: Buffer[] = [];
      const sink = new Writable({
        write(c, _e, cb) {
          chunks.push(Buffer.from(c));
          cb();
        },
      });
      await downloadFile("/x", { kind: "stream", stream: sink, name: "-" }, f.ctx);
      assert.deepEqual(Buffer.concat(chunks), content, "stdout-style output is not repeated");
      assert.equal(f.log.gets.length, 2);
    } finally {
      await f.close();
    }
  });

  test("gives up after 5 failures in a row and leaves no temp file", async () => {
    const content = randomBytes(4 * CHUNK);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), { cutAfter: () => 0 });
    const sub = join(dir, "giveup");
    await mkdir(sub);
    try {
      await assert.rejects(
        downloadFile("/x", { kind: "file", path: join(sub, "x") }, f.ctx),
        (err: ConnectError) => {
          assert.equal(err.code, Code.Unavailable);
          assert.match(err.message, /connection dropped .*gave up after 5 attempts at byte 0 of 4096/);
          return true;
        },
      );
      assert.equal(f.log.gets.length, 5);
      assert.deepEqual(await readdir(sub), []);
    } finally {
      await f.close();
    }
  });

  test("connections that each make real progress may drop any number of times", async () => {
    const content = randomBytes(30 * CHUNK);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), { cutAfter: () => 3 * CHUNK });
    try {
      const dest = join(dir, "trickle.bin");
      await downloadFile("/t", { kind: "file", path: dest }, { ...f.ctx, progressBytes: 2 * CHUNK });
      assert.deepEqual(await readFile(dest), content);
      assert.ok(f.log.gets.length >= 10, `${f.log.gets.length} connections`);
    } finally {
      await f.close();
    }
  });

  test("HTTP errors: 404 is not found at once, 503 is retried", async () => {
    const content = randomBytes(CHUNK);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), { status: () => 404 });
    try {
      await assert.rejects(
        downloadFile("/x", { kind: "file", path: join(dir, "nf") }, f.ctx),
        (err: ConnectError) => {
          assert.equal(err.code, Code.NotFound);
          assert.match(err.message, /HTTP 404: status 404 on purpose/);
          assert.doesNotMatch(err.message, /access_token/);
          return true;
        },
      );
      assert.equal(f.log.gets.length, 1);
    } finally {
      await f.close();
    }
    const g = await fakeSignedUrls(content, contentHash(content, CHUNK), {
      status: (n) => (n < 2 ? 503 : undefined),
    });
    try {
      await downloadFile("/x", { kind: "file", path: join(dir, "retried") }, g.ctx);
      assert.deepEqual(await readFile(join(dir, "retried")), content);
      assert.equal(g.log.gets.length, 3);
    } finally {
      await g.close();
    }
  });

  test("a file overwritten between Retrieve and GET: asks for the signed version instead", async () => {
    const content = randomBytes(3 * CHUNK);
    const f = await fakeSignedUrls(content, contentHash(content, CHUNK), {
      etag: (n) => (n === 0 ? '"0000"' : undefined),
    });
    try {
      await downloadFile("/x", { kind: "file", path: join(dir, "changed") }, f.ctx);
      assert.deepEqual(await readFile(join(dir, "changed")), content);
      assert.deepEqual(f.log.retrieves, [0n, 3n]);
    } finally {
      await f.close();
    }
  });
});

describe("batch download", () => {
  test("a batch too large for one answer falls back to one download per file", async () => {
    let calls = 0;
    const transport = createRouterTransport((router) => {
      router.service(Files, {
        readMany() {
          calls++;
          throw new ConnectError(
            "message size is larger than configured writeMaxBytes",
            Code.ResourceExhausted,
          );
        },
      });
    });
    const lines: string[] = [];
    const ctx = {
      files: createClient(Files, transport),
      tenantId: "t",
      server: "http://127.0.0.1:1",
      http: new HttpClient(),
      log: (l: string) => lines.push(l),
    };
    try {
      const out = await downloadBatch(["/a", "/b", "/c"], ["/tmp/x-a", "/tmp/x-b", "/tmp/x-c"], ctx);
      assert.deepEqual(out, ["stream", "stream", "stream"]);
      assert.equal(calls, 1, "not retried: the same batch would be refused again");
      assert.match(lines.join("\n"), /too large for one answer; downloading them one by one/);
      // Other failures still fail the batch.
      const denied = createRouterTransport((router) => {
        router.service(Files, {
          readMany() {
            throw new ConnectError("no", Code.PermissionDenied);
          },
        });
      });
      await assert.rejects(
        downloadBatch(["/a"], ["/tmp/x-a"], { ...ctx, files: createClient(Files, denied) }),
        (err: Error) => ConnectError.from(err).code === Code.PermissionDenied,
      );
    } finally {
      ctx.http.close();
    }
  });
});
