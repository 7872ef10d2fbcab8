/**
 * The steps of the dedup upload path (lib/dedup-upload.ts), each alone against scripted calls:
 * planning and building rounds, sending one round, and appending rounds in order.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as wait } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ChunkBodies, ChunkRouteMissing } from "../src/lib/chunk-bodies.js";
import {
  CACHED_ROUND_CHUNKS,
  cachedRounds,
  DEDUP_BATCH_CHUNKS,
  DEDUP_MAX_ROUND_CHUNKS,
  type DedupUpload,
  OrderedAppender,
  ROUNDS_IN_FLIGHT,
  RoundBuilder,
  type RoundEntry,
  RoundPlanner,
  SpareBlocks,
  sendRound,
} from "../src/lib/dedup-upload.js";
import { chunkHash } from "../src/lib/rope-hash.js";

const text = (b: Uint8Array) => Buffer.from(b).toString();

/** Fake FindMissing/PutChunks/Append: states are "s0", "s1", …; each append returns the next. */
function fakeUploads(opts: { missing?: (h: Buffer) => boolean; refuseAppends?: number } = {}) {
  const log: string[] = [];
  let appends = 0;
  let offset = 0n;
  let refuse = opts.refuseAppends ?? 0;
  const uploads = {
    async findMissing(req: { state: Uint8Array; hashes: Uint8Array[] }) {
      log.push(`find ${text(req.state)} ${req.hashes.length}`);
      return { missing: req.hashes.filter((h) => opts.missing?.(Buffer.from(h)) ?? true) };
    },
    async putChunks(req: { state: Uint8Array; chunks: { data: Uint8Array }[] }) {
      log.push(`put ${text(req.state)} ${req.chunks.map((c) => text(c.data)).join(",")}`);
      return {};
    },
    async append(req: { state: Uint8Array; chunks: { length: number }[] }) {
      if (refuse > 0) {
        refuse--;
        log.push(`append ${text(req.state)} refused`);
        throw new ConnectError("chunk missing", Code.FailedPrecondition);
      }
      log.push(`append ${text(req.state)} ${req.chunks.length}`);
      for (const c of req.chunks) offset += BigInt(c.length);
      return { state: Buffer.from(`s${++appends}`), offset };
    },
  };
  return { uploads: uploads as unknown as DedupUpload["uploads"], log };
}

const entry = (data: string, offset: number): RoundEntry => ({
  offset,
  hash: chunkHash(Buffer.from(data)),
  length: data.length,
  data: Buffer.from(data),
});

function upload(uploads: DedupUpload["uploads"]): DedupUpload {
  return {
    uploads,
    job: { localPath: "local", remotePath: "/remote", size: 0 },
    fh: undefined as never, // every entry carries its data: nothing is read again
    chunkSize: 2,
    maxTransfer: 4,
    retry: { attempts: 1, budgetMs: 0 },
  };
}

describe("rounds", () => {
  test("RoundPlanner doubles rounds that found nothing missing and narrows to one block otherwise", () => {
    const p = new RoundPlanner();
    assert.deepEqual([p.size, p.window], [DEDUP_BATCH_CHUNKS, 1]);
    const sizes: number[] = [];
    for (let i = 0; i < 8; i++) {
      p.answered(0);
      sizes.push(p.size);
    }
    assert.deepEqual(sizes, [64, 128, 256, 512, 1024, 1024, 1024, 1024]);
    assert.equal(sizes.at(-1), DEDUP_MAX_ROUND_CHUNKS);
    p.answered(3);
    assert.deepEqual([p.size, p.window], [DEDUP_BATCH_CHUNKS, ROUNDS_IN_FLIGHT]);
    p.answered(0);
    assert.equal(p.window, 1);
  });

  test("RoundBuilder keeps the bytes of a one-block round and drops them from bigger ones", () => {
    const chunk = 4;
    const blockSize = chunk * DEDUP_BATCH_CHUNKS;
    const spare = new SpareBlocks(blockSize);
    const b = new RoundBuilder(chunk, spare);
    const block = () => {
      const buf = Buffer.alloc(blockSize, 7);
      const hashes = Array.from({ length: DEDUP_BATCH_CHUNKS }, (_, i) => Buffer.alloc(32, i));
      return { block: buf, hashes };
    };
    b.add(block());
    assert.equal(b.length, DEDUP_BATCH_CHUNKS);
    const one = b.take();
    assert.equal(one.blocks.length, 1);
    assert.ok(one.entries.every((e) => e.data?.length === chunk));
    assert.equal(b.length, 0);

    b.add(block());
    b.add(block());
    const two = b.take();
    assert.equal(two.entries.length, 2 * DEDUP_BATCH_CHUNKS);
    assert.ok(two.entries.every((e) => e.data === undefined));
    assert.deepEqual(two.blocks, [], "its blocks went back to be read into again");
    assert.equal(spare.free.length, 2);
    // Offsets run on across rounds.
    assert.equal(two.entries[0]?.offset, blockSize);
    assert.equal(two.entries.at(-1)?.offset, 3 * blockSize - chunk);
  });

  test("cachedRounds cuts known hashes into rounds of references with the right offsets", () => {
    const n = CACHED_ROUND_CHUNKS + 3;
    const known = Array.from({ length: n }, () => Buffer.alloc(32));
    const rounds = [...cachedRounds(known, 10, n * 10 - 4)];
    assert.deepEqual(
      rounds.map((r) => r.length),
      [CACHED_ROUND_CHUNKS, 3],
    );
    const last = rounds[1]!.at(-1)!;
    assert.deepEqual([last.offset, last.length, last.data], [(n - 1) * 10, 6, undefined]);
  });
});

describe("sendRound", () => {
  test("puts only the missing chunks, grouped by maxTransfer, then appends every reference", async () => {
    const { uploads, log } = fakeUploads({ missing: (h) => !h.equals(chunkHash(Buffer.from("bb"))) });
    const entries = [entry("aa", 0), entry("bb", 2), entry("cc", 4), entry("dd", 6)];
    const appended: number[] = [];
    const missing = await sendRound(entries, upload(uploads), Buffer.from("s0"), async (es) => {
      appended.push(es.length);
    });
    assert.equal(missing, 3);
    assert.deepEqual(log.slice(0, 1), ["find s0 4"]);
    assert.deepEqual(log.slice(1).sort(), ["put s0 aa,cc", "put s0 dd"]);
    assert.deepEqual(appended, [4]);
  });
});

describe("sendRound with chunk bodies", () => {
  /** A fake ChunkBodies: records each body's chunks; `missingRoute` answers as an older server. */
  function fakeBodies(opts: { missingRoute?: boolean } = {}) {
    const log: string[] = [];
    const bodies = {
      supported: true,
      async post(state: Uint8Array, chunks: { data: Uint8Array }[]) {
        if (opts.missingRoute) {
          bodies.supported = false;
          throw new ChunkRouteMissing(404);
        }
        log.push(`body ${text(state)} ${chunks.map((c) => text(c.data)).join(",")}`);
        return { chunks: chunks.length, bytes: 0, stored: chunks.length };
      },
    };
    return { bodies: bodies as unknown as ChunkBodies, log };
  }

  test("the missing chunks go as bodies of up to 4 max_transfer_sizes, a short chunk last in its body", async () => {
    const { uploads, log } = fakeUploads({ missing: (h) => !h.equals(chunkHash(Buffer.from("bb"))) });
    const { bodies, log: sent } = fakeBodies();
    const entries = ["aa", "bb", "cc", "dd", "ee", "ff", "gg", "hh", "ii", "jj", "k"].map((d, i) =>
      entry(d, 2 * i),
    );
    await sendRound(entries, { ...upload(uploads), chunkBodies: bodies }, Buffer.from("s0"), async () => {});
    assert.deepEqual(sent.sort(), ["body s0 aa,cc,dd,ee,ff,gg,hh,ii", "body s0 jj,k"]);
    assert.ok(!log.some((l) => l.startsWith("put")), "no PutChunks call");
  });

  test("a server without the route gets PutChunks, for this round and the next", async () => {
    const { uploads, log } = fakeUploads();
    const { bodies, log: sent } = fakeBodies({ missingRoute: true });
    const up = { ...upload(uploads), chunkBodies: bodies };
    await sendRound([entry("aa", 0), entry("bb", 2)], up, Buffer.from("s0"), async () => {});
    await sendRound([entry("cc", 4)], up, Buffer.from("s1"), async () => {});
    assert.deepEqual(sent, []);
    assert.deepEqual(
      log.filter((l) => l.startsWith("put")),
      ["put s0 aa,bb", "put s1 cc"],
    );
    assert.equal(bodies.supported, false);
  });
});

describe("OrderedAppender", () => {
  test("appends rounds in the order they started, each with the state the previous append returned", async () => {
    const { uploads, log } = fakeUploads();
    const a = new OrderedAppender(upload(uploads), Buffer.from("s0"));
    const states: string[] = [];
    // The first round is slow to get to its append; the second would append first if it could.
    const first = a.run(async (append) => {
      states.push(text(a.state));
      await wait(30);
      await append([entry("aa", 0), entry("bb", 2)], async () => {});
    });
    const second = a.run(async (append) => {
      states.push(text(a.state));
      await append([entry("cc", 4)], async () => {});
    });
    await Promise.all([first, second]);
    assert.deepEqual(states, ["s0", "s0"]);
    assert.deepEqual(log, ["append s0 2", "append s1 1"]);
    const r = a.result();
    assert.equal(r.sent, 6);
    assert.equal(text(r.state), "s2");
  });

  test("a round whose earlier round failed fails with that error, without appending", async () => {
    const { uploads, log } = fakeUploads();
    const a = new OrderedAppender(upload(uploads), Buffer.from("s0"));
    const first = a.run(async () => {
      await wait(10);
      throw new Error("FindMissing failed");
    });
    const second = a.run((append) => append([entry("cc", 0)], async () => {}));
    await assert.rejects(first, /FindMissing failed/);
    await assert.rejects(second, /FindMissing failed/);
    assert.deepEqual(log, []);
  });

  test("an append refused for a collected chunk resends the round and appends again", async () => {
    const { uploads, log } = fakeUploads({ refuseAppends: 1 });
    const a = new OrderedAppender(upload(uploads), Buffer.from("s0"));
    let resent = 0;
    await a.run((append) =>
      append([entry("aa", 0)], async () => {
        resent++;
      }),
    );
    assert.equal(resent, 1);
    assert.deepEqual(log, ["append s0 refused", "append s0 1"]);
  });

  test("an offset the server acknowledges differently abandons the upload", async () => {
    const { uploads } = fakeUploads();
    const off = new OrderedAppender(
      upload({
        ...uploads,
        append: async () => ({ state: Buffer.from("x"), offset: 99n }),
      } as unknown as DedupUpload["uploads"]),
      Buffer.from("s0"),
    );
    await assert.rejects(
      off.run((append) => append([entry("aa", 0)], async () => {})),
      /acknowledged 99 bytes after 2 were sent/,
    );
  });
});

describe("packed chunks", () => {
  // A read block holding chunks of 2 bytes; entries are views into it, as RoundBuilder makes them.
  const block = Buffer.from("aabbccdde");
  const view = (i: number): RoundEntry => {
    const data = block.subarray(i * 2, Math.min(i * 2 + 2, block.length));
    return { offset: i * 2, hash: chunkHash(data), length: data.length, data };
  };
  type Put = { chunks?: { data: Uint8Array }[]; packedData?: Uint8Array; packedHashes?: Uint8Array[] };
  const capture = () => {
    const puts: Put[] = [];
    const uploads = {
      findMissing: async (req: { hashes: Uint8Array[] }) => ({ missing: req.hashes }),
      putChunks: async (req: Put) => {
        puts.push(req);
        return {};
      },
      append: async () => ({}),
    } as unknown as DedupUpload["uploads"];
    return { puts, uploads };
  };

  test("consecutive chunks go packed, as a view of their read block (not copied)", async () => {
    const { puts, uploads } = capture();
    const entries = [0, 1, 2, 3, 4].map(view);
    await sendRound(
      entries,
      { ...upload(uploads), maxTransfer: 6, packed: true },
      Buffer.from("s"),
      async () => {},
    );
    assert.equal(puts.length, 2);
    assert.deepEqual(
      puts.map((p) => Buffer.from(p.packedData!).toString()),
      ["aabbcc", "dde"],
    );
    assert.deepEqual(
      puts.flatMap((p) => p.packedHashes!.map((h) => Buffer.from(h).toString("hex"))),
      entries.map((e) => e.hash.toString("hex")),
    );
    assert.equal(puts[0]!.packedData!.buffer, block.buffer);
    assert.ok(puts.every((p) => !p.chunks?.length));
  });

  test("gaps (chunks the server has) and servers without packed_chunks get Chunk messages", async () => {
    const gap = capture();
    const entries = [0, 1, 2, 3].map(view);
    const have = entries[1]!.hash.toString("hex");
    const up = { ...upload(gap.uploads), maxTransfer: 8, packed: true };
    up.uploads = {
      ...gap.uploads,
      findMissing: async (req: { hashes: Uint8Array[] }) => ({
        missing: req.hashes.filter((h) => Buffer.from(h).toString("hex") !== have),
      }),
    } as unknown as DedupUpload["uploads"];
    await sendRound(entries, up, Buffer.from("s"), async () => {});
    assert.equal(gap.puts.length, 1);
    assert.deepEqual(
      gap.puts[0]!.chunks!.map((c) => Buffer.from(c.data).toString()),
      ["aa", "cc", "dd"],
    );
    const old = capture();
    await sendRound(
      [0, 1].map(view),
      { ...upload(old.uploads), packed: false },
      Buffer.from("s"),
      async () => {},
    );
    assert.deepEqual(
      old.puts[0]!.chunks!.map((c) => Buffer.from(c.data).toString()),
      ["aa", "bb"],
    );
  });
});
