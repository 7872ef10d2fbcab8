import type { FileRecord } from "../store/file-meta.js";
import { bound, encodeFileMeta, Writer } from "./list-encoding.js";

/** One result of Files.ReadMany, as read-many.ts builds it. */
export type ReadManyItem =
  /** A file; `contents` is its whole content when included in the answer, else undefined. */
  | { readonly file: FileRecord; readonly contents: Uint8Array | undefined }
  /** A path that could not be read. */
  | { readonly error: { readonly code: string; readonly message: string; readonly errorCode?: string } };

/**
 * Hand-written protobuf encoding of `cacheroach.v1.ReadManyResponse` (files.proto, common.proto).
 *
 * protobuf-es encodes a 256-file answer (about 1 MiB) through reflection, one fork per nested
 * message and a final join that copies every content twice; that was about a third of the
 * server's CPU time for `file get` of many small files. This writes the same bytes as
 * `toBinary(ReadManyResponseSchema, …)` of the message read-many.ts otherwise returns (fields in
 * order, defaults omitted) straight into one buffer sized up front; read-many-encoding.test.ts
 * checks the byte equality. FileMeta is written by the listing's encoder (list-encoding.ts).
 */
export function encodeReadManyResponse(items: readonly ReadManyItem[]): Buffer {
  let capacity = 0;
  for (const it of items) capacity += itemBound(it);
  const w = new Writer(capacity);
  for (const it of items) {
    w.ensure(itemBound(it)); // never grows when the bounds hold; checked so a wrong bound cannot overflow
    w.byte(0x0a); // 1: results, length-delimited
    const start = w.beginDelimited();
    if ("error" in it) {
      w.byte(0x22); // 4: error (ItemError)
      const at = w.beginDelimited();
      if (it.error.code !== "") {
        w.byte(0x0a); // 1: code
        w.string(it.error.code);
      }
      if (it.error.message !== "") {
        w.byte(0x12); // 2: message
        w.string(it.error.message);
      }
      if (it.error.errorCode) {
        w.byte(0x1a); // 3: error_code
        w.string(it.error.errorCode);
      }
      w.endDelimited(at);
    } else {
      w.byte(0x0a); // 1: file (FileMeta)
      const at = w.beginDelimited();
      encodeFileMeta(w, it.file);
      w.endDelimited(at);
      if (it.contents !== undefined) {
        if (it.contents.length > 0) {
          w.byte(0x12); // 2: contents
          w.varint(it.contents.length);
          w.bytes(it.contents);
        }
        w.byte(0x18); // 3: contents_included = true
        w.byte(0x01);
      }
    }
    w.endDelimited(start);
  }
  return w.finish();
}

/** An upper bound of one result's encoded size (tags, lengths of at most 5 bytes each, fields). */
function itemBound(it: ReadManyItem): number {
  if ("error" in it)
    return 48 + 3 * (it.error.code.length + it.error.message.length + (it.error.errorCode?.length ?? 0));
  return 32 + bound(it.file) + (it.contents?.length ?? 0);
}
