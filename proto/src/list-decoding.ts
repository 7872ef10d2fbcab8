/**
 * Hand-written protobuf decoding of `cacheroach.v1.ListResponse` (files.proto, common.proto) for
 * clients that list many files.
 *
 * protobuf-es decodes through reflection: for a 1000-entry page that took longer than the
 * database query of the page and made most of a listing client's garbage. This reads the same
 * bytes into the same message shapes `fromBinary(ListResponseSchema, …)` gives (defaults for
 * absent fields, bigint int64s, `contentHash` a view into the input, unknown fields kept in
 * `$unknown`, a repeated singular field's last value winning and a repeated message field merged,
 * invalid UTF-8 an error); list-decoding.test.ts checks the equality on varied messages. A new
 * FileMeta field must be added here as well.
 *
 * {@link FilesListBytes} lets a Connect client skip protobuf-es for the answer: its List method
 * is Files.List answered with {@link ListResponseBytesSchema}, which reads the same bytes as
 * ListResponse but keeps each file as its encoded bytes (a repeated message and a repeated bytes
 * field look alike on the wire), and {@link listResponseOfBytes} decodes those.
 */
import type { DescMethodUnary, DescService, Message, UnknownField } from "@bufbuild/protobuf";
import { fileDesc, type GenMessage, messageDesc } from "@bufbuild/protobuf/codegenv2";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { FileMeta } from "./gen/cacheroach/v1/common_pb.js";
import { Files, type ListRequestSchema, type ListResponse } from "./gen/cacheroach/v1/files_pb.js";

// proto3 strings: invalid UTF-8 is an error, as protobuf-es (which also uses TextDecoder) makes it.
const utf8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

/** Decodes a binary `ListResponse`. */
export function decodeListResponse(bytes: Uint8Array): ListResponse {
  const r = new Reader();
  r.reset(bytes);
  const files: FileMeta[] = [];
  let nextCursor = "";
  let unknown: UnknownField[] | undefined;
  while (r.pos < bytes.length) {
    const tag = r.varint32();
    if (tag === 0x0a) {
      const len = r.varint32();
      files.push(r.fileMeta(r.pos + len));
    } else if (tag === 0x12) {
      nextCursor = r.string();
    } else {
      unknown = withUnknown(unknown, r.unknown(tag));
    }
  }
  return listResponse(files, nextCursor, unknown);
}

/** A `ListResponse` with each file left encoded (see {@link FilesListBytes}). */
export type ListResponseBytes = Message<"cacheroach.v1.ListResponseBytes"> & {
  files: Uint8Array[];
  nextCursor: string;
};

/**
 * `message ListResponseBytes { repeated bytes files = 1; string next_cursor = 2; }`: a client-side
 * view of ListResponse's wire format, built here rather than in a .proto file since no server
 * speaks it. Its FileDescriptorProto is given encoded, as generated code gives theirs, so that
 * the CLI's bundle can decode it at build time like theirs (packages/cli/scripts/literal-descriptors.mjs)
 * instead of building descriptor.proto's schemas at every start; list-decoding.test.ts checks it.
 */
export const ListResponseBytesSchema = /*@__PURE__*/ messageDesc(
  fileDesc(
    "CidjYWNoZXJvYWNoL3YxL2xpc3RfcmVzcG9uc2VfYnl0ZXMucHJvdG8SDWNhY2hlcm9hY2gudjEiSgoRTGlzdFJlc3BvbnNlQnl0ZXMSFAoFZmlsZXMYASADKAxSBWZpbGVzEh8KC25leHRfY3Vyc29yGAIgASgJUgpuZXh0Q3Vyc29yYgZwcm90bzM=",
  ),
  0,
) as unknown as GenMessage<ListResponseBytes>;

/** Decodes the files of a {@link ListResponseBytes} into the `ListResponse` of the same bytes. */
export function listResponseOfBytes(msg: ListResponseBytes): ListResponse {
  const r = new Reader();
  const files: FileMeta[] = new Array(msg.files.length);
  for (let i = 0; i < files.length; i++) {
    const b = msg.files[i]!;
    r.reset(b);
    files[i] = r.fileMeta(b.length);
  }
  return listResponse(files, msg.nextCursor, msg.$unknown);
}

function listResponse(
  files: FileMeta[],
  nextCursor: string,
  unknown: UnknownField[] | undefined,
): ListResponse {
  const res: ListResponse = { $typeName: "cacheroach.v1.ListResponse", files, nextCursor };
  if (unknown) res.$unknown = unknown;
  return res;
}

const listBytes = {
  ...Files.method.list,
  output: ListResponseBytesSchema,
} as DescMethodUnary<typeof ListRequestSchema, typeof ListResponseBytesSchema>;

/**
 * Files.List answered as {@link ListResponseBytes} (decode it with {@link listResponseOfBytes}):
 * the same RPC (same service and method name, so the same URL and authorization), for
 * `createClient`. Binary transports only: the JSON form of the answer would not parse.
 */
export const FilesListBytes = {
  ...Files,
  methods: [listBytes],
  method: { list: listBytes },
} as DescService & { method: { list: typeof listBytes } };

/** A cursor over protobuf bytes, with FileMeta's decoder. */
class Reader {
  pos = 0;
  private buf: Uint8Array = EMPTY;
  /** The last tenant id and content type read, by bytes: every file of a page shares them. */
  private tenantBytes: Uint8Array = EMPTY;
  private tenant = "";
  private typeBytes: Uint8Array = EMPTY;
  private type = "";

  reset(buf: Uint8Array): void {
    this.buf = buf;
    this.pos = 0;
  }

  /** A varint that fits 32 bits (tags, lengths). */
  varint32(): number {
    const buf = this.buf;
    let b = buf[this.pos++]!;
    if (b < 0x80) return b;
    let v = b & 0x7f;
    for (let shift = 7; shift < 35; shift += 7) {
      b = buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return this.check(v);
    }
    // A longer varint (e.g. a sign-extended negative int32): skip its high bytes.
    for (let i = 0; i < 5 && b >= 0x80; i++) b = buf[this.pos++]!;
    if (b >= 0x80) throw new Error("invalid varint");
    return this.check(v);
  }

  private check(v: number): number {
    if (this.pos > this.buf.length) throw new Error("premature EOF");
    return v;
  }

  /** A varint as a signed 64-bit bigint (int64). */
  int64(): bigint {
    const buf = this.buf;
    let v = 0;
    let shift = 0;
    // Up to 7 bytes (49 bits) stay exact in a number; longer ones go through bigint.
    for (; shift < 49; shift += 7) {
      const b = buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return this.pos > buf.length ? this.eof() : BigInt(v);
    }
    let big = BigInt(v);
    for (; shift < 70; shift += 7) {
      const b = buf[this.pos++]!;
      big |= BigInt(b & 0x7f) << BigInt(shift);
      if (b < 0x80) return this.pos > buf.length ? this.eof() : BigInt.asIntN(64, big);
    }
    throw new Error("invalid varint");
  }

  private eof(): never {
    throw new Error("premature EOF");
  }

  /** A varint as int32 (its low 32 bits, signed), as protobuf-es reads int32. */
  int32(): number {
    const buf = this.buf;
    let v = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = buf[this.pos++]!;
      if (shift < 32) v |= (b & 0x7f) << shift;
      if (b < 0x80) return this.pos > buf.length ? this.eof() : v | 0;
    }
    throw new Error("invalid varint");
  }

  /** Length-prefixed bytes, as a view of the input (protobuf-es does not copy either). */
  bytes(): Uint8Array {
    const len = this.varint32();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.buf.length) this.eof();
    return this.buf.subarray(start, this.pos);
  }

  string(): string {
    const b = this.bytes();
    return b.length === 0 ? "" : utf8.decode(b);
  }

  /** Skips the value of a field whose tag was read; returns it as protobuf-es keeps unknown fields. */
  unknown(tag: number): UnknownField {
    const no = Math.floor(tag / 8);
    const wireType = tag & 7;
    const start = this.pos;
    this.skip(wireType, no, 0);
    return { no, wireType, data: this.buf.subarray(start, this.pos) };
  }

  private skip(wireType: number, no: number, depth: number): void {
    switch (wireType) {
      case 0:
        while (this.buf[this.pos++]! & 0x80) {}
        break;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const len = this.varint32(); // read before `this.pos +=` reads pos
        this.pos += len;
        break;
      }
      case 3:
        if (depth >= 100) throw new Error("maximum recursion depth reached");
        for (;;) {
          const tag = this.varint32();
          if ((tag & 7) === 4) {
            if (tag >>> 3 !== no) throw new Error("invalid end group tag");
            break;
          }
          this.skip(tag & 7, Math.floor(tag / 8), depth + 1);
        }
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`cant skip wire type ${wireType}`);
    }
    if (this.pos > this.buf.length) this.eof();
  }

  /** A FileMeta ending at `end`. */
  fileMeta(end: number): FileMeta {
    const f: FileMeta = {
      $typeName: "cacheroach.v1.FileMeta",
      tenantId: "",
      path: "",
      version: 0n,
      size: 0n,
      contentHash: EMPTY,
      contentType: "",
      meta: {},
      chunkSize: 0,
    };
    let unknown: UnknownField[] | undefined;
    while (this.pos < end) {
      const tag = this.varint32();
      switch (tag) {
        case 0x0a: {
          const b = this.bytes();
          if (!same(b, this.tenantBytes)) {
            this.tenant = b.length === 0 ? "" : utf8.decode(b);
            this.tenantBytes = b;
          }
          f.tenantId = this.tenant;
          break;
        }
        case 0x12:
          f.path = this.string();
          break;
        case 0x18:
          f.version = this.int64();
          break;
        case 0x20:
          f.size = this.int64();
          break;
        case 0x2a:
          f.contentHash = this.bytes();
          break;
        case 0x32: {
          const b = this.bytes();
          if (!same(b, this.typeBytes)) {
            this.type = b.length === 0 ? "" : utf8.decode(b);
            this.typeBytes = b;
          }
          f.contentType = this.type;
          break;
        }
        case 0x3a:
          f.createdAt = this.timestamp(f.createdAt);
          break;
        case 0x42:
          f.modifiedAt = this.timestamp(f.modifiedAt);
          break;
        case 0x4a:
          this.mapEntry(f.meta);
          break;
        case 0x50:
          f.chunkSize = this.int32();
          break;
        default:
          unknown = withUnknown(unknown, this.unknown(tag));
      }
    }
    if (this.pos !== end) throw new Error("invalid FileMeta length");
    if (unknown) f.$unknown = unknown;
    return f;
  }

  /** A google.protobuf.Timestamp, merged into `into` when the field occurs again. */
  private timestamp(into: Timestamp | undefined): Timestamp {
    const end = this.varint32() + this.pos;
    const t: Timestamp = into ?? { $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 };
    while (this.pos < end) {
      const tag = this.varint32();
      if (tag === 0x08) t.seconds = this.int64();
      else if (tag === 0x10) t.nanos = this.int32();
      else t.$unknown = withUnknown(t.$unknown, this.unknown(tag));
    }
    if (this.pos !== end) throw new Error("invalid Timestamp length");
    return t;
  }

  /** One `map<string, string>` entry: a missing key or value is "". */
  private mapEntry(into: Record<string, string>): void {
    const end = this.varint32() + this.pos;
    let key = "";
    let value = "";
    while (this.pos < end) {
      const tag = this.varint32();
      if (tag === 0x0a) key = this.string();
      else if (tag === 0x12) value = this.string();
      else this.skip(tag & 7, Math.floor(tag / 8), 0);
    }
    if (this.pos !== end) throw new Error("invalid map entry length");
    into[key] = value;
  }
}

function withUnknown(list: UnknownField[] | undefined, u: UnknownField): UnknownField[] {
  if (!list) return [u];
  list.push(u);
  return list;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
