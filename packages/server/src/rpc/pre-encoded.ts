import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { WireType } from "@bufbuild/protobuf/wire";
import type { HandlerContext } from "@connectrpc/connect";

/**
 * Response content types of the protobuf (binary) encodings of Connect unary and streaming, gRPC
 * and gRPC-web, which connect-es sets in the context before it calls the handler.
 */
const BINARY_RESPONSE_TYPES = new Set([
  "application/proto",
  "application/connect+proto",
  "application/grpc+proto",
  "application/grpc-web+proto",
]);

/** True when this call's response will be serialized as protobuf binary (not JSON). */
export function respondsInBinary(ctx: HandlerContext): boolean {
  return BINARY_RESPONSE_TYPES.has(ctx.responseHeader.get("content-type") ?? "");
}

/**
 * A message of `schema` whose binary serialization is exactly `bytes` (an encoding of that message
 * made elsewhere, e.g. by a hand-written encoder). connect-es 2 has no hook for a handler to
 * return bytes, but protobuf-es writes a message's unknown fields after its known ones as they
 * are: with every known field unset, the bytes go out as one "unknown field" holding the first
 * tag's field and everything after it. Only for binary responses (see {@link respondsInBinary}):
 * the JSON encoding drops unknown fields.
 */
export function preEncoded<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  const msg = create(schema);
  if (bytes.length === 0) return msg;
  let tag = 0;
  let i = 0;
  for (let shift = 0; ; shift += 7) {
    const b = bytes[i++];
    if (b === undefined || shift > 28) throw new Error("pre-encoded message does not start with a tag");
    tag += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  msg.$unknown = [{ no: Math.floor(tag / 8), wireType: (tag % 8) as WireType, data: bytes.subarray(i) }];
  return msg;
}
