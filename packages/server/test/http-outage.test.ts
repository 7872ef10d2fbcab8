/**
 * A database that fails in the middle of a plain-HTTP request is a 503 with its code, never a
 * 404 or a redirect: the paths that branch on "is there a file / a directory / a vhost / may the
 * caller read it" (directory redirects, index pages, listings, write preconditions, host lookup)
 * must not read an outage as "no". Unit level: the router over stub stores that throw the typed
 * error at one chosen call, so each branch point is hit exactly.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import type { Authorizer } from "../src/auth/authorizer.js";
import type { Need } from "../src/auth/session.js";
import type { Db } from "../src/db/db.js";
import { CacheroachError, ERROR_CODE_HEADER } from "../src/errors.js";
import { createHttpRouter } from "../src/http/http-router.js";
import { Site } from "../src/http/site.js";
import { normalize, type VHostMap } from "../src/http/vhost-map.js";
import { WebUi } from "../src/http/web-ui.js";
import type { FileRecord } from "../src/store/file-meta.js";
import type { DirEntry, FileStore } from "../src/store/file-store.js";
import type { RopeStore } from "../src/store/rope-store.js";
import type { SessionStore } from "../src/store/session-store.js";
import type { UploadManager } from "../src/uploads/upload-manager.js";

const TENANT = "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a";

/** The one call that fails, named "operation path" (e.g. "get /d"); every other call works. */
let failing = "";
/** Calls made, in order, so a test can show the outage came in the middle of a request. */
let calls: string[] = [];

function call(name: string): void {
  calls.push(name);
  if (name === failing) throw new CacheroachError("ERR_DATABASE_UNAVAILABLE", "the database is unreachable");
}

const file = (path: string): FileRecord => ({
  tenantId: TENANT,
  path,
  version: 1,
  ropeHash: Buffer.alloc(32),
  size: 0,
  chunkSize: 65536,
  contentType: "text/plain",
  meta: {},
  ctime: new Date(0),
  mtime: new Date(0),
  dtime: null,
});

/** The tenant holds the file /d (and nothing below it) and the files /e/a, /e/b. */
const FILES = new Set(["/d", "/e/a", "/e/b"]);

const files = {
  async get(_t: string, path: string) {
    call(`get ${path}`);
    return FILES.has(path) ? file(path) : undefined;
  },
  async isDirectory(_t: string, dir: string) {
    call(`isDirectory ${dir}`);
    return [...FILES].some((p) => p.startsWith(`${dir}/`));
  },
  async children(_t: string, dir: string): Promise<DirEntry[]> {
    call(`children ${dir}`);
    return [...FILES]
      .filter((p) => p.startsWith(`${dir}/`))
      .map((p) => ({ name: p.slice(dir.length + 1), file: file(p) }));
  },
} as unknown as FileStore;

const authz = {
  async may(_s: unknown, need: Need) {
    call(`may ${need.path}`);
    return true;
  },
  async authenticate() {
    throw new CacheroachError("ERR_UNAUTHENTICATED", "no tokens in this test");
  },
} as unknown as Authorizer;

const sessions = {
  async isActive() {
    call("isActive public");
    return true;
  },
} as unknown as SessionStore;

const vhosts = {
  async resolve(host: string | undefined) {
    call(`resolve ${normalize(host ?? "")}`);
    return TENANT;
  },
  async has() {
    return false;
  },
} as unknown as VHostMap;

let server: http.Server;
let base: string;

before(async () => {
  const handler = createHttpRouter({
    db: {
      readiness: async () => ({ ready: false, reason: "database did not answer within 2000 ms" }),
    } as unknown as Db,
    files,
    ropes: {} as RopeStore,
    uploads: {} as UploadManager,
    authz,
    sessions,
    vhosts,
    site: new Site({ publicUrl: undefined, activeContentHosts: new Set(), isVHost: async () => false }),
    maxPutBytes: 1 << 20,
    log: pino({ level: "silent" }),
    ui: WebUi.load(),
  });
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Sends a request with the database failing at `at`; returns the answer and the calls made. */
async function withOutageAt(at: string, path: string, init: RequestInit = {}) {
  failing = at;
  calls = [];
  const r = await fetch(`${base}${path}`, { redirect: "manual", ...init });
  await r.arrayBuffer();
  return {
    status: r.status,
    code: r.headers.get(ERROR_CODE_HEADER),
    retryAfter: r.headers.get("retry-after"),
    calls,
  };
}

describe("without an outage the stubs answer as a database would", () => {
  test("/d/ (a file, nothing below) redirects to /d; /e is a directory; /e/ lists; /x is 404", async () => {
    assert.equal((await withOutageAt("", "/d/")).status, 301);
    assert.equal((await withOutageAt("", "/e")).status, 301);
    assert.equal((await withOutageAt("", "/e/")).status, 200);
    const missing = await withOutageAt("", "/x");
    assert.deepEqual([missing.status, missing.code], [404, "ERR_NOT_FOUND"]);
  });
});

describe("an outage in the middle of a request is 503, never 404 or a redirect", () => {
  const cases: { what: string; at: string; path: string; init?: RequestInit }[] = [
    { what: "looking up the host's tenant", at: "resolve 127.0.0.1", path: "/d" },
    { what: "checking the public session", at: "isActive public", path: "/d" },
    { what: "finding a file", at: "get /e", path: "/e" },
    { what: "asking whether a missing file is a directory", at: "isDirectory /e", path: "/e" },
    { what: "the permission check before a directory redirect", at: "may /e/*", path: "/e" },
    { what: "finding a directory's index page", at: "get /d/index.html", path: "/d/" },
    { what: "the permission check of an index page", at: "may /d/index.html", path: "/d/" },
    { what: "listing a directory", at: "children /e", path: "/e/" },
    { what: "the permission check before redirecting an empty directory", at: "may /d", path: "/d/" },
    { what: "finding the file an empty directory redirects to", at: "get /d", path: "/d/" },
    {
      what: "reading the current file for a write precondition",
      at: "get /d",
      path: "/d",
      init: { method: "PUT", body: "x", headers: { "if-match": "*" } },
    },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const r = await withOutageAt(c.at, c.path, c.init);
      assert.ok(r.calls.includes(c.at), `the request never reached ${c.at}: ${r.calls.join(", ")}`);
      assert.deepEqual(
        [r.status, r.code, r.retryAfter],
        [503, "ERR_DATABASE_UNAVAILABLE", "2"],
        r.calls.join(", "),
      );
    });
  }
});

test("/readyz says why it is not ready, with the code and Retry-After of an outage", async () => {
  const r = await fetch(`${base}/readyz`);
  assert.deepEqual(
    [
      r.status,
      r.headers.get(ERROR_CODE_HEADER),
      r.headers.get("retry-after"),
      r.headers.get("cache-control"),
    ],
    [503, "ERR_DATABASE_UNAVAILABLE", "2", "no-store"],
  );
  assert.equal(await r.text(), "not ready: database did not answer within 2000 ms\n");
});
