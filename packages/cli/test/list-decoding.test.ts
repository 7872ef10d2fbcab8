/**
 * The hand-written ListResponse decoder (proto/src/list-decoding.ts) against protobuf-es: the same
 * message for the same bytes, on what servers send and on what they may send (unknown fields,
 * repeated fields, odd values), directly and through the Files.List client of ListResponseBytes.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  decodeListResponse,
  FileMetaSchema,
  Files,
  FilesListBytes,
  type ListResponseBytes,
  ListResponseBytesSchema,
  ListResponseSchema,
  listResponseOfBytes,
} from "@cacheroach/proto";

function assertDecodes(bytes: Uint8Array) {
  const expected = fromBinary(ListResponseSchema, bytes);
  assert.deepStrictEqual(decodeListResponse(bytes), expected);
  const split = fromBinary(ListResponseBytesSchema, bytes) as ListResponseBytes;
  assert.deepStrictEqual(listResponseOfBytes(split), expected);
}

function file(i: number) {
  return create(FileMetaSchema, {
    tenantId: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    path: `/dir/f${i}.bin`,
    version: BigInt(i + 1),
    size: BigInt(i * 4099),
    contentHash: randomBytes(32),
    contentType: "application/octet-stream",
    createdAt: { seconds: 1_795_447_543n + BigInt(i), nanos: (i % 1000) * 1_000_000 },
    modifiedAt: { seconds: 1_795_447_600n, nanos: 0 },
    meta: i % 3 === 0 ? { mtime: String(1_795_447_543_324 + i), "x-ü": "ünïcode ✓" } : {},
    chunkSize: 4 << 20,
  });
}

describe("decodeListResponse", () => {
  test("a page as the server writes it, and an empty and a last page", () => {
    const files = Array.from({ length: 300 }, (_, i) => file(i));
    assertDecodes(
      toBinary(ListResponseSchema, create(ListResponseSchema, { files, nextCursor: "L2Rpci9mMjk5" })),
    );
    assertDecodes(toBinary(ListResponseSchema, create(ListResponseSchema, { files: files.slice(0, 1) })));
    assertDecodes(new Uint8Array(0));
  });

  test("default and extreme values: empty fields, absent timestamps, big and negative numbers", () => {
    const odd = [
      create(FileMetaSchema, {}),
      create(FileMetaSchema, { path: "/only", createdAt: {} }),
      create(FileMetaSchema, {
        version: 9_007_199_254_740_993n, // above 2^53
        size: -5n, // negative int64: ten bytes on the wire
        chunkSize: -1, // negative int32: sign-extended to ten bytes
        createdAt: { seconds: -62_135_596_800n, nanos: 999_999_999 },
        modifiedAt: { seconds: 253_402_300_799n, nanos: 1 },
      }),
      create(FileMetaSchema, { version: (1n << 63n) - 1n, size: -(1n << 63n), chunkSize: 2 ** 31 - 1 }),
      create(FileMetaSchema, { path: "/emoji/😀/ä", contentType: "text/plain; charset=utf-8" }),
      create(FileMetaSchema, { meta: { "": "", k: "" } }),
    ];
    assertDecodes(toBinary(ListResponseSchema, create(ListResponseSchema, { files: odd, nextCursor: "x" })));
  });

  test("unknown fields, repeated fields, fields out of order", () => {
    const w = new BinaryWriter();
    w.tag(9, 0).uint64(77n); // unknown top-level varint
    w.tag(1, 2).fork(); // a FileMeta written by hand
    w.tag(8, 2).fork().tag(2, 0).int32(5).join(); // modified_at before created_at, nanos only
    w.tag(2, 2).string("/first");
    w.tag(2, 2).string("/second"); // the last one wins
    w.tag(3, 0).int64(1n);
    w.tag(3, 0).int64(2n);
    w.tag(8, 2).fork().tag(1, 0).int64(10n).tag(3, 0).int32(1).join(); // merged; unknown field 3 kept
    w.tag(11, 2).bytes(new Uint8Array([1, 2, 3])); // unknown: newer server
    w.tag(12, 5).fixed32(7);
    w.tag(13, 1).fixed64(8n);
    w.tag(14, 3).tag(1, 0).int32(1).tag(14, 4); // a group
    w.tag(9, 2).fork().tag(2, 2).string("value without key").join();
    w.tag(9, 2).fork().tag(1, 2).string("k").join(); // value missing
    w.tag(9, 2).fork().tag(1, 2).string("k").tag(2, 2).string("v2").join(); // later entry wins
    w.tag(5, 2).bytes(new Uint8Array([9]));
    w.tag(6, 2).string("text/ä");
    w.join();
    w.tag(2, 2).string("cursor-1");
    w.tag(2, 2).string("cursor-2");
    w.tag(1, 2).bytes(new Uint8Array(0)); // an empty FileMeta
    assertDecodes(w.finish());
  });

  test("invalid UTF-8 in a string is an error, as for protobuf-es", () => {
    const w = new BinaryWriter();
    w.tag(1, 2)
      .fork()
      .tag(2, 2)
      .bytes(new Uint8Array([0x2f, 0xff, 0xc3]))
      .join();
    const bytes = w.finish();
    assert.throws(() => fromBinary(ListResponseSchema, bytes));
    assert.throws(() => decodeListResponse(bytes));
  });

  test("truncated input is an error", () => {
    const bytes = toBinary(
      ListResponseSchema,
      create(ListResponseSchema, { files: [file(3)], nextCursor: "c" }),
    );
    for (const cut of [1, 2, 10, bytes.length - 1]) {
      assert.throws(() => decodeListResponse(bytes.subarray(0, cut)));
    }
  });

  test("ListResponseBytes is { repeated bytes files = 1; string next_cursor = 2; } (its encoded descriptor)", () => {
    assert.equal(ListResponseBytesSchema.typeName, "cacheroach.v1.ListResponseBytes");
    assert.equal(ListResponseBytesSchema.file.proto.syntax, "proto3");
    assert.deepEqual(
      // scalar 12 = bytes, 9 = string; presence 2 = implicit (proto3)
      ListResponseBytesSchema.fields.map((f) => [
        f.name,
        f.number,
        f.jsonName,
        f.fieldKind,
        f.scalar,
        f.presence,
      ]),
      [
        ["files", 1, "files", "list", 12, 2],
        ["next_cursor", 2, "nextCursor", "scalar", 9, 2],
      ],
    );
  });

  test("FilesListBytes is Files.List answered as ListResponseBytes", () => {
    assert.equal(FilesListBytes.typeName, Files.typeName);
    assert.equal(FilesListBytes.method.list.name, Files.method.list.name);
    assert.equal(FilesListBytes.method.list.input, Files.method.list.input);
    assert.equal(FilesListBytes.method.list.output, ListResponseBytesSchema);
    assert.deepEqual(
      FilesListBytes.methods.map((m) => m.localName),
      ["list"],
    );
  });
});
