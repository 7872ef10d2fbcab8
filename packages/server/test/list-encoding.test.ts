import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileMetaSchema, ListResponseSchema } from "@cacheroach/proto";
import { toFileMeta } from "../src/rpc/convert.js";
import { encodeListResponse } from "../src/rpc/list-encoding.js";
import { preEncoded } from "../src/rpc/pre-encoded.js";
import type { FileRecord } from "../src/store/file-meta.js";

function record(over: Partial<FileRecord> = {}): FileRecord {
  const t = new Date(1_795_447_543_324);
  return {
    tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    path: "/a/b.txt",
    version: 1,
    ropeHash: randomBytes(32),
    size: 12_345,
    chunkSize: 4 << 20,
    contentType: "text/plain",
    meta: {},
    ctime: t,
    mtime: t,
    dtime: null,
    ...over,
  };
}

/** What protobuf-es writes for the message the other List path (JSON) returns. */
function reference(files: FileRecord[], nextCursor: string): Uint8Array {
  return toBinary(
    ListResponseSchema,
    create(ListResponseSchema, { files: files.map(toFileMeta), nextCursor }),
  );
}

function assertSameBytes(files: FileRecord[], nextCursor = "") {
  const mine = encodeListResponse(files, nextCursor);
  assert.deepEqual(
    Buffer.from(mine).toString("hex"),
    Buffer.from(reference(files, nextCursor)).toString("hex"),
  );
}

describe("encodeListResponse", () => {
  test("writes exactly what protobuf-es writes, field by field", () => {
    const cases: [string, Partial<FileRecord>][] = [
      ["typical", {}],
      ["defaults omitted", { version: 0, size: 0, chunkSize: 0, contentType: "", ropeHash: Buffer.alloc(0) }],
      ["empty strings", { tenantId: "", path: "" }],
      ["epoch: Timestamp with no fields", { ctime: new Date(0), mtime: new Date(0) }],
      ["whole seconds: no nanos", { ctime: new Date(1_700_000_000_000), mtime: new Date(1_000) }],
      ["only millis", { ctime: new Date(7), mtime: new Date(999) }],
      ["before 1970: negative seconds", { ctime: new Date(-1), mtime: new Date(-62_135_596_800_000) }],
      ["year 9999", { ctime: new Date(253_402_300_799_999) }],
      ["sizes past 32 bits", { size: 5 * 2 ** 40 + 3, version: 2 ** 31 + 1 }],
      ["largest safe integer", { size: Number.MAX_SAFE_INTEGER, version: Number.MAX_SAFE_INTEGER }],
      ["negative int32 chunk size", { chunkSize: -5 }],
      ["unicode path", { path: "/日本語/ファイル 🙂.txt" }],
      ["lone surrogate", { path: "/bad\ud800x" }],
      [
        "path of 127 and 128 ASCII bytes",
        { path: `/${"p".repeat(126)}`, contentType: `a/${"b".repeat(126)}` },
      ],
      ["path of 1024 bytes", { path: `/${"é".repeat(511)}x` }],
      [
        "meta",
        { meta: { b: "2", a: "", "10": "ten", "2": "two", ключ: "значение", long: "v".repeat(4096) } },
      ],
      ["meta value past 16 KiB encoded", { meta: { k: "€".repeat(6000) } }],
      [
        "many meta entries",
        { meta: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`key${i}`, `value ${i}`])) },
      ],
    ];
    for (const [name, over] of cases) {
      assert.doesNotThrow(() => assertSameBytes([record(over)], "Y3Vyc29y"), name);
      const mine = encodeListResponse([record(over)], "");
      const ref = reference([record(over)], "");
      assert.equal(mine.length, ref.length, name);
    }
  });

  test("a page: many entries, a cursor, and an empty page", () => {
    const files = Array.from({ length: 1000 }, (_, i) =>
      record({ path: `/list/f${String(i).padStart(7, "0")}.bin`, ctime: new Date(1_795_447_543_000 + i) }),
    );
    assertSameBytes(files, Buffer.from(files[999]!.path).toString("base64url"));
    assertSameBytes([], "");
    assert.equal(encodeListResponse([], "").length, 0);
    // Entries past 16 KiB need a 3-byte length.
    assertSameBytes([record({ meta: { a: "x".repeat(20_000) } }), record()], "c");
  });

  test("decodes back to toFileMeta's message", () => {
    const files = [record({ meta: { x: "y" } }), record({ path: "/ü", size: 2 ** 45 })];
    const decoded = fromBinary(ListResponseSchema, encodeListResponse(files, "next"));
    assert.deepEqual(
      decoded,
      create(ListResponseSchema, { files: files.map(toFileMeta), nextCursor: "next" }),
    );
  });

  test("FileMeta has the fields the encoder writes (a new field must be added to list-encoding.ts)", () => {
    assert.deepEqual(
      FileMetaSchema.fields.map((f) => `${f.number} ${f.name} ${f.fieldKind}`),
      [
        "1 tenant_id scalar",
        "2 path scalar",
        "3 version scalar",
        "4 size scalar",
        "5 content_hash scalar",
        "6 content_type scalar",
        "7 created_at message",
        "8 modified_at message",
        "9 meta map",
        "10 chunk_size scalar",
      ],
    );
  });
});

describe("preEncoded", () => {
  test("serializes to exactly the given bytes", () => {
    const files = [record(), record({ path: "/x" })];
    const bytes = encodeListResponse(files, "abc");
    const msg = preEncoded(ListResponseSchema, bytes);
    assert.deepEqual(toBinary(ListResponseSchema, msg), new Uint8Array(bytes));
    assert.deepEqual(
      toBinary(ListResponseSchema, preEncoded(ListResponseSchema, new Uint8Array(0))).length,
      0,
    );
  });

  test("works for a first field whose tag takes more than one byte", () => {
    // Field 16, wire type 0 (tag varint 0x80 0x01), value 1: unknown to ListResponse, kept as is.
    const bytes = new Uint8Array([0x80, 0x01, 0x01, 0x12, 0x01, 0x61]);
    assert.deepEqual(toBinary(ListResponseSchema, preEncoded(ListResponseSchema, bytes)), bytes);
  });
});
