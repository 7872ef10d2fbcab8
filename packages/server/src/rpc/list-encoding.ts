import type { FileRecord } from "../store/file-meta.js";

/**
 * Hand-written protobuf encoding of `cacheroach.v1.ListResponse` (files.proto, common.proto).
 *
 * protobuf-es encodes through reflection, a JS-array writer and one fork/copy per nested message;
 * for a 1000-entry page that cost ~10 ms and most of the server's garbage, more than the query.
 * This writes the same bytes as `toBinary(ListResponseSchema, …)` of the message `toFileMeta`
 * builds (same field order, default values omitted, map entries with key and value), straight
 * into one buffer; list-encoding.test.ts checks the byte equality. A new FileMeta field must be
 * added here as well as in `toFileMeta`.
 */
export function encodeListResponse(files: readonly FileRecord[], nextCursor: string): Buffer {
  const w = new Writer(files.length * 192 + nextCursor.length * 3 + 16);
  for (const f of files) {
    w.ensure(bound(f));
    w.byte(0x0a); // 1: files, length-delimited
    const start = w.beginDelimited();
    encodeFileMeta(w, f);
    w.endDelimited(start);
  }
  if (nextCursor !== "") {
    w.ensure(nextCursor.length * 3 + 16);
    w.byte(0x12); // 2: next_cursor
    w.string(nextCursor);
  }
  return w.finish();
}

/** Writes one FileMeta's fields (without tag or length); shared with read-many-encoding.ts. */
export function encodeFileMeta(w: Writer, f: FileRecord): void {
  // Tag bytes are (field number << 3) | wire type, per common.proto FileMeta.
  if (f.tenantId !== "") {
    w.byte(0x0a); // 1 tenant_id
    w.string(f.tenantId);
  }
  if (f.path !== "") {
    w.byte(0x12); // 2 path
    w.string(f.path);
  }
  if (f.version !== 0) {
    w.byte(0x18); // 3 version
    w.int64(f.version);
  }
  if (f.size !== 0) {
    w.byte(0x20); // 4 size
    w.int64(f.size);
  }
  if (f.ropeHash.length !== 0) {
    w.byte(0x2a); // 5 content_hash
    w.varint(f.ropeHash.length);
    w.bytes(f.ropeHash);
  }
  if (f.contentType !== "") {
    w.byte(0x32); // 6 content_type
    w.string(f.contentType);
  }
  w.byte(0x3a); // 7 created_at
  timestamp(w, f.ctime.getTime());
  w.byte(0x42); // 8 modified_at
  timestamp(w, f.mtime.getTime());
  for (const key in f.meta) {
    w.byte(0x4a); // 9 meta: one entry message {1 key, 2 value} each
    const start = w.beginDelimited();
    w.byte(0x0a);
    w.string(key);
    w.byte(0x12);
    w.string(f.meta[key]!);
    w.endDelimited(start);
  }
  if (f.chunkSize !== 0) {
    w.byte(0x50); // 10 chunk_size
    w.int64(f.chunkSize); // int32 negatives are sign-extended to 64 bits on the wire, like int64
  }
}

/** google.protobuf.Timestamp of epoch milliseconds (always written: toFileMeta always sets it). */
function timestamp(w: Writer, ms: number): void {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  const at = w.reserveByte(); // a Timestamp is at most 17 bytes: its length is one byte
  if (seconds !== 0) {
    w.byte(0x08);
    w.int64(seconds);
  }
  if (nanos !== 0) {
    w.byte(0x10);
    w.varint(nanos);
  }
  w.fillLength(at);
}

/** An upper bound of one FileMeta entry's encoded size, so the writer checks space once per file. */
export function bound(f: FileRecord): number {
  // Tags, varints (≤ 10 bytes each), length prefixes (≤ 3 bytes for the sizes possible here) and
  // two timestamps; strings at most 3 UTF-8 bytes per UTF-16 unit.
  let n = 96 + f.ropeHash.length + 3 * (f.tenantId.length + f.path.length + f.contentType.length);
  for (const key in f.meta) n += 16 + 3 * (key.length + f.meta[key]!.length);
  return n;
}

/**
 * Appends to one growing buffer. A length-delimited value is written after a 2-byte gap for its
 * length (enough below 16 KiB, the usual case) and moved only when its length needs another size.
 */
export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (v > 0x7fffffff) {
      buf[pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** int64 varint: negatives as 64-bit two's complement (10 bytes), as protobuf requires. */
  int64(v: number): void {
    if (v >= 0) {
      this.varint(v);
      return;
    }
    let u = BigInt.asUintN(64, BigInt(v));
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  /** Length-prefixed UTF-8. */
  string(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      // Short ASCII (paths, IDs, MIME types) is copied here: Buffer#write's own overhead costs
      // more than the loop.
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    const start = this.beginDelimited();
    this.pos += this.buf.write(s, this.pos);
    this.endDelimited(start);
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Reserves one byte for a length below 128; returns its position for {@link fillLength}. */
  reserveByte(): number {
    return this.pos++;
  }

  /** Writes the length of what follows the byte reserved at `at`. */
  fillLength(at: number): void {
    this.buf[at] = this.pos - at - 1;
  }

  /** Reserves the 2-byte length gap; returns where the value starts. */
  beginDelimited(): number {
    this.pos += 2;
    return this.pos;
  }

  /** Writes the length of the value begun at `start`, moving the value if it needs other than 2 bytes. */
  endDelimited(start: number): void {
    const len = this.pos - start;
    const buf = this.buf;
    if (len >= 0x80 && len < 0x4000) {
      buf[start - 2] = (len & 0x7f) | 0x80;
      buf[start - 1] = len >>> 7;
      return;
    }
    let size = 1;
    for (let v = len; v > 0x7f; v = Math.floor(v / 0x80)) size++;
    const at = start - 2;
    if (size !== 2) {
      if (size > 2) this.ensure(size - 2);
      this.buf.copy(this.buf, at + size, start, this.pos);
      this.pos += size - 2;
    }
    this.pos = at;
    this.varint(len);
    this.pos = at + size + len;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
