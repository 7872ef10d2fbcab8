/**
 * Directory listings (GET dir/ and FileStore.children) cost one database statement, whatever
 * the number of children: a 1000-child listing used to run a query per child, and 32 of them at
 * once slowed every other call. Queries are counted by wrapping a real Db.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Files, Tenants, Uploads, VHosts } from "@cacheroach/proto";
import { Db } from "../src/db/db.js";
import { type DirEntry, FileStore } from "../src/store/file-store.js";
import { startTestServer, type TestServer } from "../src/testing.js";

let ts: TestServer;
let tenant: string;
let db: Db;
let counted = 0;
let store: FileStore;

/** Every live path of the fixture, and the deleted ones. */
const live: string[] = [];
const deleted = ["/big/gone.txt", "/big/emptied/x", "/big/emptied/y/z"];

/** The children of `dir` computed from the fixture by brute force, in bytewise path order (a sub-directory sorts as "name/"). */
function expected(dir: string): { name: string; file: boolean }[] {
  const seen = new Map<string, boolean>();
  for (const p of live) {
    if (!p.startsWith(`${dir}/`)) continue;
    const rest = p.slice(dir.length + 1);
    const slash = rest.indexOf("/");
    seen.set(slash < 0 ? rest : rest.slice(0, slash), slash < 0);
  }
  const key = ([name, file]: [string, boolean]) => Buffer.from(file ? name : `${name}/`);
  return [...seen].sort((a, b) => Buffer.compare(key(a), key(b))).map(([name, file]) => ({ name, file }));
}

const simplify = (entries: DirEntry[]) => entries.map((e) => ({ name: e.name, file: e.file !== undefined }));

/** Runs `fn` and returns how many statements it sent to the database. */
async function queriesOf<T>(fn: () => Promise<T>): Promise<{ n: number; value: T }> {
  const before = counted;
  const value = await fn();
  return { n: counted - before, value };
}

before(async () => {
  ts = await startTestServer();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "dirs" } })).tenant!.id;
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
  for (let i = 0; i < 700; i++) live.push(`/big/f${String(i).padStart(4, "0")}.txt`);
  for (let i = 0; i < 400; i++) for (const leaf of ["a", "b/c", "d/e/f"]) live.push(`/big/d${i}/${leaf}`);
  // Names that sort around "/" (0x2f): "-" and "." before it, "0" after; non-ASCII last.
  live.push(
    "/big/a.txt",
    "/big/a/inner",
    "/big/a-b",
    "/big/é.txt",
    "/big/zz/deep/deeper/x",
    "/big0",
    "/big-x",
  );
  const uploads = ts.client(Uploads, ts.superToken);
  const all = [...live, ...deleted];
  for (let i = 0; i < all.length; i += 500) {
    await uploads.putFiles({
      tenantId: tenant,
      files: all.slice(i, i + 500).map((path) => ({ path, contents: Buffer.from(path) })),
    });
  }
  for (const path of deleted) await ts.client(Files, ts.superToken).delete({ tenantId: tenant, path });
  const real = await Db.connect({ url: ts.databaseUrl, maxConnections: 2 });
  db = real;
  // Counts every statement FileStore sends (query, and each query inside a transaction).
  const counting = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === "query")
        return (...args: Parameters<Db["query"]>) => {
          counted++;
          return target.query(...args);
        };
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  store = new FileStore(counting);
});
after(async () => {
  await db?.close();
  await ts?.close();
});

describe("FileStore.children", () => {
  test("one statement for a 1000-child page of a 1100-child directory, exact and in order", async () => {
    const want = expected("/big");
    assert.equal(want.length, 700 + 400 + 5);
    const { n, value } = await queriesOf(() => store.children(tenant, "/big", 1001));
    assert.equal(n, 1);
    assert.deepEqual(simplify(value), want.slice(0, 1001));
    for (const e of value) if (e.file) assert.equal(e.file.path, `/big/${e.name}`);
  });

  test("one statement for a small page, the root, a deep directory, and a missing one", async () => {
    for (const [dir, limit] of [
      ["/big", 3],
      ["", 10],
      ["/big/zz", 10],
      ["/big/d7", 10],
      ["/big/emptied", 10],
      ["/nothing", 10],
    ] as const) {
      const { n, value } = await queriesOf(() => store.children(tenant, dir, limit));
      assert.equal(n, 1, dir);
      assert.deepEqual(simplify(value), expected(dir).slice(0, limit), dir);
    }
  });
});

describe("GET dir/", () => {
  test("lists the first 1000 children and says the listing is truncated", async () => {
    const u = new URL(ts.url);
    const page = await new Promise<string>((resolve, reject) => {
      http
        .get(
          {
            host: u.hostname,
            port: u.port,
            path: "/big/",
            headers: { authorization: `Bearer ${ts.superToken}` },
          },
          (res) => {
            let t = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (t += d));
            res.on("end", () =>
              res.statusCode === 200 ? resolve(t) : reject(new Error(`${res.statusCode} ${t}`)),
            );
          },
        )
        .on("error", reject);
    });
    const links = [...page.matchAll(/<a href="\.\/([^"]+)">/g)].map((m) => decodeURIComponent(m[1]!));
    assert.deepEqual(
      links,
      expected("/big")
        .slice(0, 1000)
        .map((e) => (e.file ? e.name : `${e.name}/`)),
    );
    assert.match(page, /Listing truncated/);
    assert.ok(!page.includes("gone.txt") && !page.includes("emptied"), "deleted files are not listed");
  });
});
