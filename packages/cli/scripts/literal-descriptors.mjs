/**
 * For the CLI's bundle (write-bundle.mjs): generated protobuf code builds each file's descriptors
 * at import with `fileDesc("<base64 FileDescriptorProto>", deps)`, which first builds the
 * descriptors of descriptor.proto itself (protobuf-es' `boot`) and then decodes every file with the
 * reflective binary decoder, all in cold code: about a third of a one-RPC command's CPU. Here the
 * base64 is decoded once, at build time, into a JavaScript expression that creates the same
 * FileDescriptorProto message (same own properties, same defaults on the prototype, as protobuf-es'
 * `create` makes them for proto2 messages), and `fileDesc` is replaced by bin/file-desc.js, which
 * registers it as `fileDesc` does. Nothing then needs descriptor.proto's schemas at run time.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** `fileDesc("<base64>"`: the call as protoc-gen-es writes it. */
const FILE_DESC_CALL = /\bfileDesc\("([A-Za-z0-9+/=]*)"/g;

/** The FileDescriptorProto of a base64 string, as `fileDesc` makes it (JSON names restored). */
export function decodeFileDescriptor(b64) {
  const root = fromBinary(FileDescriptorProtoSchema, base64Decode(b64));
  const restoreJsonNames = (message) => {
    for (const f of message.field) {
      if (!(Object.hasOwn(f, "jsonName") && f.jsonName !== undefined)) f.jsonName = protoCamelCase(f.name);
    }
    message.nestedType.forEach(restoreJsonNames);
  };
  root.messageType.forEach(restoreJsonNames);
  return root;
}

/** A JavaScript literal for a scalar value of a descriptor message. */
function scalar(value) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      return Object.is(value, -0)
        ? "-0"
        : Number.isFinite(value)
          ? String(value)
          : `Number(${JSON.stringify(String(value))})`;
    case "bigint":
      return `${value}n`;
    default:
      if (value instanceof Uint8Array) return `new Uint8Array(${JSON.stringify([...value])})`;
      throw new Error(`literal-descriptors: unexpected value ${String(value)}`);
  }
}

/**
 * An expression creating `root` (a FileDescriptorProto message): `(m => …)(factory)`, where each
 * message is `m(i, {own properties})` on the i-th prototype of default values.
 */
export function descriptorExpression(root) {
  const prototypes = [];
  const protoIndex = new Map();
  const value = (v) => {
    if (Array.isArray(v)) return `[${v.map(value).join(",")}]`;
    if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) return message(v);
    return scalar(v);
  };
  const message = (msg) => {
    if (typeof msg.$typeName !== "string") throw new Error("literal-descriptors: not a message");
    const proto = Object.getPrototypeOf(msg);
    let index = 0;
    if (proto !== Object.prototype) {
      const text = `{${Object.keys(proto)
        .map((k) => `${JSON.stringify(k)}:${scalar(proto[k])}`)
        .join(",")}}`;
      const key = `${msg.$typeName}\u0000${text}`;
      index = protoIndex.get(key);
      if (index === undefined) {
        index = prototypes.length + 1;
        protoIndex.set(key, index);
        prototypes.push(text);
      }
    }
    const own = Object.keys(msg)
      .filter((k) => msg[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${value(msg[k])}`)
      .join(",");
    return `m(${index},{${own}})`;
  };
  const body = message(root);
  // Index 0: a plain object (proto3 messages have no prototype of defaults).
  return `((P)=>{const m=(i,o)=>i===0?o:Object.assign(Object.create(P[i-1]),o);return ${body}})([${prototypes.join(",")}])`;
}

/**
 * The text of a generated module with each `fileDesc("<base64>", deps)` replaced by
 * `<helper>(<expression>, deps)`, and the helper imported from `helperPath`; the text unchanged if
 * it has no such call.
 */
export function literalDescriptors(text, helperPath) {
  let count = 0;
  const out = text.replace(FILE_DESC_CALL, (_, b64) => {
    count++;
    return `__crFileDesc(${descriptorExpression(decodeFileDescriptor(b64))}`;
  });
  if (count === 0) return text;
  return `import { fileDescOfMessage as __crFileDesc } from ${JSON.stringify(helperPath)};\n${out}`;
}
