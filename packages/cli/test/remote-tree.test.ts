import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { type FileMeta, FileMetaSchema, ListResponseSchema } from "@cacheroach/proto";
import { type LazyPage, listRemote, MAX_LIST_PAGE, type PageLister } from "../src/lib/remote-tree.js";

// listRemote's paging: the next page is asked for before the current one is decoded,
// and a consumer that stops early leaves no unhandled rejection behind.

const paths = (n: number) => Array.from({ length: n }, (_, i) => `/d/${String(i).padStart(6, "0")}`);
const meta = (path: string): FileMeta => create(FileMetaSchema, { path });

interface Call {
  cursor: string;
  pageSize: number;
}

/** A lister over `all`, recording each call and each decoding in `events`. */
function fakeLister(all: string[], events: string[], fail?: (call: number) => boolean): PageLister {
  const calls: Call[] = [];
  const page = (req: { cursor?: string; pageSize?: number }) => {
    const call = calls.push({ cursor: req.cursor ?? "", pageSize: req.pageSize ?? 0 });
    events.push(`ask ${call}`);
    if (fail?.(call)) return Promise.reject(new Error(`call ${call} failed`));
    const start = req.cursor ? all.indexOf(Buffer.from(req.cursor, "base64url").toString()) + 1 : 0;
    const files = all.slice(start, start + (req.pageSize ?? 0));
    const more = start + files.length < all.length;
    const nextCursor = more ? Buffer.from(files[files.length - 1]!).toString("base64url") : "";
    return Promise.resolve({ files, nextCursor, call });
  };
  return {
    list: async (req) => {
      const p = await page(req);
      return create(ListResponseSchema, { files: p.files.map(meta), nextCursor: p.nextCursor });
    },
    listPage: async (req): Promise<LazyPage> => {
      const p = await page(req);
      return {
        nextCursor: p.nextCursor,
        files: () => {
          events.push(`decode ${p.call}`);
          return p.files.map(meta);
        },
      };
    },
  };
}

test("pages of MAX_LIST_PAGE cover every file once, in order", async () => {
  const all = paths(2 * MAX_LIST_PAGE + 7);
  const events: string[] = [];
  const lister = fakeLister(all, events);
  const seen: string[] = [];
  const sizes: number[] = [];
  const spy: PageLister = {
    list: lister.list,
    listPage: (req, opts) => {
      sizes.push(req.pageSize ?? 0);
      return lister.listPage(req, opts);
    },
  };
  for await (const page of listRemote({ files: spy, tenantId: "t" }, "/d"))
    seen.push(...page.map((f) => f.path));
  assert.deepEqual(seen, all);
  assert.deepEqual(sizes, [MAX_LIST_PAGE, MAX_LIST_PAGE, MAX_LIST_PAGE]);
});

test("the next page is asked for before the current one is decoded", async () => {
  const events: string[] = [];
  for await (const _ of listRemote(
    { files: fakeLister(paths(MAX_LIST_PAGE + 1), events), tenantId: "t" },
    "/d",
  )) {
    // consume
  }
  assert.deepEqual(events, ["ask 1", "ask 2", "decode 1", "decode 2"]);
});

test("a page size given is kept, and a plain Files client works the same", async () => {
  const events: string[] = [];
  const lister = fakeLister(paths(25), events);
  const plain = { list: lister.list };
  const seen: string[] = [];
  for await (const page of listRemote({ files: plain, tenantId: "t", pageSize: 10 }, "/d")) {
    assert.ok(page.length <= 10);
    seen.push(...page.map((f) => f.path));
  }
  assert.deepEqual(seen, paths(25));
  assert.deepEqual(events, ["ask 1", "ask 2", "ask 3"]);
});

test("a consumer that stops early leaves no unhandled rejection from the call in flight", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on("unhandledRejection", onUnhandled);
  try {
    const events: string[] = [];
    const lister = fakeLister(paths(30), events, (call) => call === 2);
    for await (const page of listRemote({ files: lister, tenantId: "t", pageSize: 10 }, "/d")) {
      assert.equal(page.length, 10);
      break;
    }
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(unhandled, []);
    assert.deepEqual(events, ["ask 1", "ask 2", "decode 1"]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("a failed call fails the listing", async () => {
  const events: string[] = [];
  const lister = fakeLister(paths(30), events, (call) => call === 2);
  await assert.rejects(async () => {
    for await (const _ of listRemote({ files: lister, tenantId: "t", pageSize: 10 }, "/d")) {
      // consume
    }
  }, /call 2 failed/);
});
