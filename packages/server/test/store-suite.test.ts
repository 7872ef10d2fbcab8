/**
 * The storage layer tested directly, without the RPC layer: one suite run against every store on
 * a real PostgreSQL, once with the dialect Db.connect detects there (binary COPY reads,
 * asynchronous bulk commits) and once with the portable one CockroachDB gets. Each store's round
 * trips, not-found results, conflicts (a unique or foreign-key violation becomes a typed
 * CacheroachError), batches across their size boundaries, and tenant isolation.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chunkHash } from "@cacheroach/core";
import { byteaArray, inBatches } from "../src/db/arrays.js";
import { Db } from "../src/db/db.js";
import { CacheroachError } from "../src/errors.js";
import { ChunkStore, type ChunkWrite } from "../src/store/chunk-store.js";
import { FileStore, type NewVersion, PreconditionFailed } from "../src/store/file-store.js";
import { PrincipalStore } from "../src/store/principal-store.js";
import { type ChunkEntry, type Rope, RopeStore } from "../src/store/rope-store.js";
import { type SessionRecord, SessionStore } from "../src/store/session-store.js";
import { TenantStore } from "../src/store/tenant-store.js";
import { UploadStore } from "../src/store/upload-store.js";
import { VHostStore } from "../src/store/vhost-store.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

const CHUNK = 64 * 1024;

/** Every store over one Db, as server.ts wires them (caches off, so reads reach the database). */
function openStores(db: Db) {
  const chunks = new ChunkStore(db, { cacheBytes: 0, writeConcurrency: 4 });
  return {
    db,
    chunks,
    ropes: new RopeStore(db, chunks, 4),
    files: new FileStore(db),
    tenants: new TenantStore(db),
    principals: new PrincipalStore(db),
    vhosts: new VHostStore(db),
    sessions: new SessionStore(db, 1),
    uploads: new UploadStore(db),
  };
}
type Stores = ReturnType<typeof openStores>;

/** Asserts that `p` rejects with a CacheroachError of `code`. */
async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CacheroachError, `expected a CacheroachError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

function chunk(data: Buffer): ChunkWrite {
  return { hash: chunkHash(data), data };
}

/** Chunk-list entries of consecutive chunks. */
function entriesOf(writes: readonly ChunkWrite[]): ChunkEntry[] {
  let offset = 0;
  return writes.map((w) => {
    const e = { offset, hash: w.hash, length: w.data.length };
    offset += w.data.length;
    return e;
  });
}

async function readAll(ropes: RopeStore, tenant: string, rope: Rope): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of ropes.read(tenant, rope, 0, rope.size)) parts.push(b);
  return Buffer.concat(parts);
}

function version(rope: Rope, extra: Partial<NewVersion> = {}): NewVersion {
  return { rope, contentType: "text/plain", meta: {}, precondition: undefined, ...extra };
}

function session(principalId: string, extra: Partial<SessionRecord> = {}): SessionRecord {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  return {
    id: randomUUID(),
    principalId,
    caps: 1,
    scope: { kind: "principal", principalId },
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 3_600_000),
    name: "",
    note: "",
    issuedBy: undefined,
    ...extra,
  };
}

/** The suite every configuration of the stores runs. */
function storeSuite(name: string, open: () => Promise<Db>) {
  describe(name, () => {
    let db: Db;
    let s: Stores;
    let tenantA: string;
    let tenantB: string;
    /** A committed rope of tenant A holding `content` (chunked at CHUNK). */
    const commit = async (tenant: string, content: Buffer): Promise<Rope> => {
      const writes: ChunkWrite[] = [];
      for (let off = 0; off < content.length; off += CHUNK)
        writes.push(chunk(content.subarray(off, off + CHUNK)));
      await s.chunks.put(tenant, writes);
      return s.ropes.commitList(tenant, entriesOf(writes), CHUNK);
    };

    before(async () => {
      db = await open();
      s = openStores(db);
      tenantA = randomUUID();
      tenantB = randomUUID();
      await s.tenants.insertIfAbsent(tenantA, "suite A");
      await s.tenants.insertIfAbsent(tenantB, "suite B");
    });
    after(async () => {
      await db?.close();
    });

    describe("ChunkStore", () => {
      test("stores each chunk once per tenant and reads it back", async () => {
        const big = chunk(randomBytes(512 * 1024));
        const small = chunk(randomBytes(100));
        assert.equal(await s.chunks.put(tenantA, [big, small]), 2);
        assert.equal(await s.chunks.put(tenantA, [big, small]), 0);
        assert.deepEqual(await s.chunks.get(tenantA, big.hash), big.data);
        assert.deepEqual(await s.chunks.get(tenantA, small.hash), small.data);
        // Tenant B stores its own copy: dedup never crosses tenants.
        assert.equal(await s.chunks.put(tenantB, [small]), 1);
      });

      test("a chunk the tenant does not store: missing() names it, get() is data loss", async () => {
        const a = chunk(randomBytes(50));
        const b = chunk(randomBytes(50));
        await s.chunks.put(tenantA, [a]);
        assert.deepEqual(await s.chunks.missing(tenantA, [b.hash, a.hash, b.hash]), [b.hash]);
        assert.deepEqual(await s.chunks.missing(tenantB, [a.hash]), [a.hash]);
        const stored = await s.chunks.getStored(tenantA, [a.hash, b.hash]);
        assert.deepEqual([...stored.keys()], [a.hash.toString("hex")]);
        await rejectsWith(s.chunks.get(tenantB, a.hash), "ERR_UNAVAILABLE", /missing/);
        await rejectsWith(s.chunks.getMany(tenantA, [a.hash, b.hash]), "ERR_UNAVAILABLE", /missing/);
      });

      test("batches: statements of 256 small chunks, lookups of 1000 hashes", async () => {
        // 1300 small chunks (6 INSERT groups) and two large ones; 2001 hashes to look up (3 batches).
        const writes = Array.from({ length: 1300 }, (_, i) =>
          chunk(Buffer.from(`small chunk ${i} ${randomUUID()}`)),
        );
        writes.splice(700, 0, chunk(randomBytes(300 * 1024)), chunk(randomBytes(300 * 1024)));
        assert.equal(await s.chunks.put(tenantA, writes), writes.length);
        const absent = Array.from({ length: 699 }, () => randomBytes(32));
        const asked = [...writes.map((w) => w.hash), ...absent];
        assert.deepEqual(await s.chunks.missing(tenantA, asked), absent);
        const got = await s.chunks.getMany(
          tenantA,
          writes.map((w) => w.hash),
        );
        assert.equal(got.size, writes.length);
        for (const w of writes) assert.deepEqual(got.get(w.hash.toString("hex")), w.data);
      });
    });

    describe("RopeStore", () => {
      test("commits a rope and streams it back; an unknown rope is undefined", async () => {
        const content = randomBytes(3 * CHUNK + 17);
        const rope = await commit(tenantA, content);
        assert.equal(rope.size, content.length);
        assert.equal(rope.chunkCount, 4);
        const got = await s.ropes.get(tenantA, rope.hash);
        assert.deepEqual(got, rope);
        assert.deepEqual(await readAll(s.ropes, tenantA, rope), content);
        const page = await s.ropes.entries(tenantA, rope, CHUNK + 1, 2);
        assert.deepEqual(
          page.map((e) => e.offset),
          [CHUNK, 2 * CHUNK],
        );
        assert.equal(await s.ropes.get(tenantA, randomBytes(32)), undefined);
        assert.equal(await s.ropes.get(tenantB, rope.hash), undefined, "another tenant's rope");
        const whole = await s.ropes.readWhole(tenantA, [rope]);
        assert.deepEqual(whole.get(rope.hash.toString("hex")), content);
      });

      test("commitLists: one statement for short lists, batches of 500 rows for long ones, idempotent", async () => {
        for (const [lists, perList] of [
          [3, 5], // short: lists and headers in one statement
          [4, 400], // long: 1600 rows, 4 batches, after the lookup of committed ropes
        ] as const) {
          const contents = Array.from({ length: lists }, (_, i) =>
            Array.from({ length: perList }, (_, k) => Buffer.from(`rope ${i} chunk ${k} ${randomUUID()}`)),
          );
          const writes = contents.map((l) => l.map(chunk));
          await s.chunks.put(tenantA, writes.flat());
          const entries = writes.map((w) => entriesOf(w));
          const ropes = await s.ropes.commitLists(tenantA, entries, CHUNK);
          assert.deepEqual(await s.ropes.commitLists(tenantA, entries, CHUNK), ropes);
          const whole = await s.ropes.readWhole(tenantA, ropes);
          ropes.forEach((rope, i) => {
            assert.equal(rope.chunkCount, perList);
            assert.deepEqual(whole.get(rope.hash.toString("hex")), Buffer.concat(contents[i]!));
          });
        }
      });

      test("an empty content is a rope too", async () => {
        const [rope] = await s.ropes.commitLists(tenantA, [[]], CHUNK);
        assert.equal(rope!.size, 0);
        assert.deepEqual(await s.ropes.get(tenantA, rope!.hash), rope);
        assert.deepEqual(await readAll(s.ropes, tenantA, rope!), Buffer.alloc(0));
      });
    });

    describe("FileStore", () => {
      test("versions: put, get (latest or one), delete; absence is undefined", async () => {
        const r1 = await commit(tenantA, Buffer.from("one"));
        const r2 = await commit(tenantA, Buffer.from("two"));
        const meta = { quote: 'a "b" \\c', uni: "é ☃ 𝄞", empty: "" };
        const v1 = await s.files.put(
          tenantA,
          "/f/a.txt",
          version(r1, { meta, contentType: 'text/x; q="1"' }),
        );
        assert.equal(v1.version, 1);
        assert.deepEqual(v1.meta, meta);
        const v2 = await s.files.put(tenantA, "/f/a.txt", version(r2));
        assert.equal(v2.version, 2);
        assert.equal(v2.ctime.getTime(), v1.ctime.getTime(), "ctime is kept across versions");
        assert.deepEqual((await s.files.get(tenantA, "/f/a.txt"))?.ropeHash, r2.hash);
        const old = await s.files.get(tenantA, "/f/a.txt", 1);
        assert.deepEqual(old?.ropeHash, r1.hash);
        assert.equal(old?.contentType, 'text/x; q="1"');
        assert.equal(await s.files.get(tenantA, "/f/nothing"), undefined);
        assert.equal(await s.files.get(tenantA, "/f/a.txt", 9), undefined);
        assert.equal(await s.files.get(tenantB, "/f/a.txt"), undefined, "another tenant's file");
        assert.equal(await s.files.delete(tenantA, "/f/a.txt", undefined), 2);
        assert.equal(await s.files.get(tenantA, "/f/a.txt"), undefined);
        assert.equal(await s.files.get(tenantA, "/f/a.txt", 1), undefined, "deleted versions are gone");
        await rejectsWith(s.files.delete(tenantA, "/f/a.txt", undefined), "ERR_NOT_FOUND");
        const v3 = await s.files.put(tenantA, "/f/a.txt", version(r1));
        assert.equal(v3.version, 3, "version numbers are never reused");
      });

      test("a failed precondition is a typed error and writes nothing", async () => {
        const r = await commit(tenantA, Buffer.from("pre"));
        await s.files.put(tenantA, "/pre/x", version(r));
        await assert.rejects(
          s.files.put(tenantA, "/pre/x", version(r, { precondition: { kind: "mustNotExist" } })),
          (err: unknown) => err instanceof PreconditionFailed && err.code === "ERR_PRECONDITION_FAILED",
        );
        await rejectsWith(
          s.files.put(tenantA, "/pre/y", version(r, { precondition: { kind: "mustExist" } })),
          "ERR_PRECONDITION_FAILED",
        );
        assert.equal((await s.files.get(tenantA, "/pre/x"))?.version, 1);
        assert.equal(await s.files.get(tenantA, "/pre/y"), undefined);
      });

      test("concurrent first writes of a path become consecutive versions", async () => {
        const r = await commit(tenantA, Buffer.from("race"));
        const written = await Promise.all(
          Array.from({ length: 6 }, () => s.files.put(tenantA, "/race", version(r))),
        );
        assert.deepEqual(written.map((f) => f.version).sort(), [1, 2, 3, 4, 5, 6]);
      });

      test("putMany and heads across the 1000-path batch boundary, preconditions per file", async () => {
        const r = await commit(tenantA, Buffer.from("many"));
        await s.files.put(tenantA, "/many/0000", version(r));
        const items = Array.from({ length: 1203 }, (_, i) => ({
          path: `/many/${String(i).padStart(4, "0")}`,
          version: version(r, {
            meta: { i: String(i) },
            precondition: i % 100 === 0 ? { kind: "mustNotExist" } : undefined,
          }),
        }));
        const out = await s.files.putMany(tenantA, items);
        assert.ok(out[0] instanceof PreconditionFailed, "the one existing path fails its precondition");
        for (const [i, f] of out.entries()) {
          if (i === 0) continue;
          assert.ok(!(f instanceof CacheroachError), `${i}: ${f}`);
          assert.equal(f.path, items[i]!.path);
          assert.equal(f.version, 1);
          assert.deepEqual(f.meta, { i: String(i) });
        }
        const heads = await s.files.heads(tenantA, [...items.map((i) => i.path), "/many/none"]);
        assert.equal(heads.size, items.length);
        assert.equal(heads.get("/many/0000")?.version, 1);
        assert.equal((await s.files.heads(tenantB, ["/many/0001"])).size, 0);
        const page = await s.files.list(tenantA, "/many", undefined, 10);
        assert.equal(page.files.length, 10);
        assert.equal(page.after, "/many/0009");
        assert.equal(await s.files.isDirectory(tenantA, "/many"), true);
        assert.equal(await s.files.isDirectory(tenantB, "/many"), false);
      });

      test("liveHolders finds content only within the given paths and patterns", async () => {
        const r = await commit(tenantA, randomBytes(40));
        for (const p of ["/h/a/1", "/h/a/2", "/h/b/1", "/h/c"]) await s.files.put(tenantA, p, version(r));
        const sorted = async (within: "all" | string[]) =>
          (await s.files.liveHolders(tenantA, r.hash, within, 16)).sort();
        assert.deepEqual(await sorted("all"), ["/h/a/1", "/h/a/2", "/h/b/1", "/h/c"]);
        assert.deepEqual(await sorted(["/h/a/*"]), ["/h/a/1", "/h/a/2"]);
        assert.deepEqual(await sorted(["/h/c", "/h/b/*", "/h/b/1"]), ["/h/b/1", "/h/c"], "distinct paths");
        assert.deepEqual(await sorted(["/h/a", "/h/c/x", "/h/b/*x"]), []);
        assert.deepEqual(await sorted(["/*"]), ["/h/a/1", "/h/a/2", "/h/b/1", "/h/c"]);
        assert.deepEqual(await sorted([]), []);
        assert.equal((await s.files.liveHolders(tenantA, r.hash, "all", 2)).length, 2);
        assert.deepEqual(await s.files.liveHolders(tenantB, r.hash, "all", 16), []);
      });
    });

    describe("TenantStore", () => {
      test("optimistic versions: create, update, stale writes are ERR_VERSION_SKEW", async () => {
        const id = randomUUID();
        assert.equal(await s.tenants.get(id), undefined);
        const made = await s.tenants.ensure(id, "t", 0);
        assert.deepEqual(
          { id: made.id, label: made.label, version: made.version },
          { id, label: "t", version: 1 },
        );
        await rejectsWith(s.tenants.ensure(id, "again", 0), "ERR_VERSION_SKEW", /already exists/);
        assert.equal((await s.tenants.ensure(id, "t2", 1)).version, 2);
        await rejectsWith(s.tenants.ensure(id, "stale", 1), "ERR_VERSION_SKEW");
        await s.tenants.insertIfAbsent(id, "ignored");
        const got = await s.tenants.get(id);
        assert.deepEqual(
          { id: got?.id, label: got?.label, version: got?.version },
          { id, label: "t2", version: 2 },
        );
        assert.ok((await s.tenants.list()).some((t) => t.id === id));
        await rejectsWith(s.tenants.delete(id, 1), "ERR_VERSION_SKEW");
        await s.tenants.delete(id, 2);
        assert.equal(await s.tenants.get(id), undefined);
        assert.ok(!(await s.tenants.list()).some((t) => t.id === id), "a deleted tenant is not listed");
        await rejectsWith(s.tenants.ensure(id, "revived", 3), "ERR_VERSION_SKEW");
        await rejectsWith(s.tenants.delete(id, 3), "ERR_VERSION_SKEW");
      });
    });

    describe("PrincipalStore", () => {
      test("round trip, lookups by email and domain, uniqueness as ERR_ALREADY_EXISTS", async () => {
        const id = randomUUID();
        const email = `${randomUUID()}@example.org`;
        const domain = `${randomUUID()}.example`;
        const p = await s.principals.ensure(id, 0, { name: "p", email, email_verified: true }, "");
        assert.equal(p.email, email);
        assert.equal((await s.principals.byEmail(email))?.id, id);
        assert.equal(await s.principals.get(randomUUID()), undefined);
        assert.equal(await s.principals.byEmail("nobody@nowhere.example"), undefined);
        assert.equal(await s.principals.byEmail(""), undefined);
        await rejectsWith(
          s.principals.ensure(randomUUID(), 0, { email, email_verified: true }, ""),
          "ERR_ALREADY_EXISTS",
        );
        const d = await s.principals.ensure(randomUUID(), 0, { name: "d" }, domain.toUpperCase());
        assert.equal((await s.principals.byEmailDomain(domain))?.id, d.id);
        await rejectsWith(s.principals.ensure(randomUUID(), 0, {}, domain), "ERR_ALREADY_EXISTS");
        await rejectsWith(s.principals.ensure(id, 0, {}, ""), "ERR_VERSION_SKEW");
        await rejectsWith(s.principals.delete(id, 7), "ERR_VERSION_SKEW");
        await s.principals.delete(id, 1);
        assert.equal(await s.principals.get(id), undefined);
      });
    });

    describe("VHostStore", () => {
      test("maps, replaces and removes; a missing tenant is ERR_NOT_FOUND", async () => {
        const host = `h-${randomUUID()}.example`;
        await s.vhosts.ensure(host, tenantA);
        await s.vhosts.insertIfAbsent(host, tenantB);
        const find = async () => (await s.vhosts.list()).find((v) => v.host === host)?.tenantId;
        assert.equal(await find(), tenantA, "insertIfAbsent keeps a mapping");
        await s.vhosts.ensure(host, tenantB);
        assert.equal(await find(), tenantB);
        await rejectsWith(s.vhosts.ensure(host, randomUUID()), "ERR_NOT_FOUND");
        await s.vhosts.delete(host, tenantA); // not its tenant: nothing
        assert.equal(await find(), tenantB);
        await s.vhosts.delete(host, tenantB);
        await s.vhosts.delete(host, tenantB);
        assert.equal(await find(), undefined);
      });
    });

    describe("SessionStore", () => {
      let principal: string;
      before(async () => {
        principal = (await s.principals.ensure(randomUUID(), 0, { name: "s" }, "")).id;
      });

      test("round trip of every scope kind; a missing session is undefined", async () => {
        const scopes: SessionRecord["scope"][] = [
          { kind: "super" },
          { kind: "principal", principalId: principal },
          { kind: "location", tenantId: tenantA, path: "/dir/*", version: 3 },
        ];
        for (const scope of scopes) {
          const rec = session(principal, { scope, caps: 5, note: "n" });
          await s.sessions.insert(rec);
          const got = await s.sessions.get(rec.id);
          assert.deepEqual(got, { ...rec, authorityId: undefined, revoked: false });
        }
        assert.equal(await s.sessions.get(randomUUID()), undefined);
        assert.equal(await s.sessions.byName(principal, "no such name"), undefined);
      });

      test("conflicts: a live name is ERR_ALREADY_EXISTS, an unknown principal ERR_NOT_FOUND", async () => {
        await s.sessions.insert(session(principal, { name: "login" }));
        await rejectsWith(s.sessions.insert(session(principal, { name: "login" })), "ERR_ALREADY_EXISTS");
        await rejectsWith(s.sessions.insert(session(randomUUID())), "ERR_NOT_FOUND");
        const fixed = session(principal, { name: "fixed" });
        await s.sessions.insertIfAbsent(fixed);
        await s.sessions.insertIfAbsent({ ...fixed, note: "ignored" });
        assert.equal((await s.sessions.get(fixed.id))?.note, "");
      });

      test("chains: revoking a session revokes what was issued under it; listings filter", async () => {
        const root = session(principal);
        const child = session(principal, { issuedBy: root.id });
        const grandchild = session(principal, { authorityId: child.id, issuedBy: root.id });
        for (const x of [root, child, grandchild]) await s.sessions.insert(x);
        assert.equal(await s.sessions.isActive(grandchild.id), true);
        const under = await s.sessions.list({ issuedUnder: root.id }, 10);
        assert.deepEqual(under.map((l) => l.id).sort(), [child.id, grandchild.id].sort());
        const owned = await s.sessions.list({ owner: principal }, 1000);
        assert.ok(owned.some((l) => l.id === root.id && l.status === "active"));
        assert.equal((await s.sessions.list({ owner: randomUUID() }, 10)).length, 0);
        assert.equal(await s.sessions.revoke(child.id), 2);
        await new Promise((r) => setTimeout(r, 5)); // past the 1 ms cache
        assert.equal(await s.sessions.isActive(grandchild.id), false);
        assert.equal(await s.sessions.isActive(root.id), true);
        assert.equal(await s.sessions.revoke(randomUUID()), 0);
        const listed = await s.sessions.list({ issuedUnder: root.id }, 10);
        assert.deepEqual(listed.map((l) => l.status).sort(), ["revoked", "revoked"]);
      });
    });

    describe("UploadStore", () => {
      test("chunk lists: add, retry, append by reference, commit once", async () => {
        const id = await s.uploads.create(
          tenantA,
          "/up/x",
          { principalId: undefined, sessionId: undefined },
          2e9,
        );
        assert.deepEqual(await s.uploads.get(id), { tenantId: tenantA, committedVersion: undefined });
        assert.equal(await s.uploads.get(randomUUID()), undefined);
        const [a, b, c] = [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(10)].map(chunk);
        await s.chunks.put(tenantA, [a!, b!, c!]);
        const rows = [
          { off: 0, hash: a!.hash, length: CHUNK },
          { off: CHUNK, hash: b!.hash, length: CHUNK },
        ];
        assert.equal(await s.uploads.addChunks(id, tenantA, rows), 2);
        assert.equal(await s.uploads.addChunks(id, tenantA, rows), 0, "a retry adds nothing");
        const ref = { off: 2 * CHUNK, hash: c!.hash, length: 10 };
        assert.deepEqual(await s.uploads.appendRefs(id, tenantA, [{ ...ref, hash: randomBytes(32) }]), {
          kind: "missing",
          count: 1,
        });
        assert.deepEqual(await s.uploads.appendRefs(id, tenantA, [{ ...ref, length: 11 }]), {
          kind: "wrongLength",
          off: 2 * CHUNK,
          claimed: 11,
          stored: 10,
        });
        assert.deepEqual(await s.uploads.appendRefs(id, tenantB, [ref]), { kind: "missing", count: 1 });
        assert.deepEqual(await s.uploads.appendRefs(id, tenantA, [ref]), { kind: "appended", inserted: 1 });
        assert.deepEqual(await s.uploads.chunksBetween(id, CHUNK, 3 * CHUNK), [rows[1], ref]);
        const rope = await s.ropes.commitUpload(tenantA, id, 2 * CHUNK + 10, CHUNK);
        assert.deepEqual(await readAll(s.ropes, tenantA, rope), Buffer.concat([a!.data, b!.data, c!.data]));
        assert.equal(await s.uploads.markCommitted(db, id, 4), true);
        assert.equal(await s.uploads.markCommitted(db, id, 5), false);
        assert.equal((await s.uploads.get(id))?.committedVersion, 4);
        await s.uploads.dropChunks(id);
        assert.deepEqual(await s.uploads.chunksBetween(id, 0, 3 * CHUNK), []);
      });
    });
  });
}

let tdb: TestDatabase;
before(async () => {
  tdb = await createTestDatabase();
  const db = await Db.connect({ url: tdb.url, maxConnections: 2 });
  try {
    await db.migrate();
  } finally {
    await db.close();
  }
});
after(async () => {
  await tdb?.drop();
});

storeSuite("stores, dialect detected by Db.connect (PostgreSQL fast paths)", async () => {
  const db = await Db.connect({ url: tdb.url, maxConnections: 6 });
  assert.equal(db.dialect.binaryCopyReads, true);
  return db;
});
storeSuite(
  "stores, portable dialect (as on CockroachDB)",
  async () => new Db({ url: tdb.url, maxConnections: 6 }),
);

describe("a database failure is never a not-found result", () => {
  // Nothing listens on port 1: every statement fails to connect, once (no retries).
  const s = openStores(new Db({ url: "postgres://cacheroach@127.0.0.1:1/none", maxAttempts: 1 }));
  after(() => s.db.close());
  const id = randomUUID();
  for (const [name, read] of [
    ["FileStore.get", () => s.files.get(id, "/x")],
    ["FileStore.get of a version", () => s.files.get(id, "/x", 2)],
    ["RopeStore.get", () => s.ropes.get(id, randomBytes(32))],
    ["TenantStore.get", () => s.tenants.get(id)],
    ["PrincipalStore.get", () => s.principals.get(id)],
    ["SessionStore.get", () => s.sessions.get(id)],
    ["SessionStore.isActive", () => s.sessions.isActive(id)],
    ["UploadStore.get", () => s.uploads.get(id)],
    ["ChunkStore.missing", () => s.chunks.missing(id, [randomBytes(32)])],
  ] as const) {
    test(`${name} rejects`, async () => {
      await assert.rejects(read(), (err: unknown) => !(err instanceof CacheroachError));
    });
  }
});

describe("db/arrays", () => {
  test("byteaArray round-trips through unnest($1::BYTEA[]): empty arrays and elements, any bytes", async () => {
    const db = new Db({ url: tdb.url, maxConnections: 2 });
    try {
      for (const items of [
        [],
        [Buffer.alloc(0)],
        [Buffer.from([0, 92, 34, 39, 255]), Buffer.alloc(0), randomBytes(300 * 1024)],
      ]) {
        const r = await db.query<{ b: Buffer; n: number }>(
          "SELECT b, n::INT4 AS n FROM unnest($1::BYTEA[]) WITH ORDINALITY AS u (b, n) ORDER BY n",
          [byteaArray(items)],
        );
        assert.deepEqual(
          r.rows.map((row) => row.b),
          items,
        );
      }
    } finally {
      await db.close();
    }
  });

  test("inBatches: consecutive slices of at most the size, results in order", async () => {
    const seen: number[][] = [];
    const out = await inBatches([1, 2, 3, 4, 5], 2, async (b) => {
      seen.push([...b]);
      return b.map((x) => x * 10);
    });
    assert.deepEqual(seen, [[1, 2], [3, 4], [5]]);
    assert.deepEqual(out, [10, 20, 30, 40, 50]);
    assert.deepEqual(
      await inBatches([], 3, async () => {
        throw new Error("no call for an empty input");
      }),
      [],
    );
    const exact: number[][] = [];
    await inBatches([1, 2, 3], 3, async (b) => {
      exact.push([...b]);
    });
    assert.deepEqual(exact, [[1, 2, 3]]);
    await assert.rejects(
      inBatches([1], 0, async () => []),
      /positive integer/,
    );
  });
});
