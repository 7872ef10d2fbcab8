/**
 * The bundle's protobuf descriptors decoded at build time (scripts/literal-descriptors.mjs): each
 * generated file's FileDescriptorProto, written as a JavaScript expression, creates the same
 * message as protobuf-es decodes at run time (own fields, defaults on the prototype), and the
 * bundle no longer builds descriptor.proto's schemas when it starts.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createFileRegistry, toBinary } from "@bufbuild/protobuf";
import { fileDesc } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
// @ts-expect-error bin/ is plain JavaScript without declarations.
import { fileDescOfMessage } from "../bin/file-desc.js";
// @ts-expect-error scripts/ are plain JavaScript without declarations.
import * as literal from "../scripts/literal-descriptors.mjs";
import { CLI_ROOT } from "./helpers.js";

const { decodeFileDescriptor, descriptorExpression, literalDescriptors } = literal;

const REPO_ROOT = join(CLI_ROOT, "..", "..");
const PROTOBUF_WKT = join(
  REPO_ROOT,
  "node_modules",
  "@bufbuild",
  "protobuf",
  "dist",
  "esm",
  "wkt",
  "gen",
  "google",
  "protobuf",
);

/** Every `fileDesc("<base64>"` of the generated code the CLI bundles (ours and the well-known types). */
function generatedDescriptors(): { file: string; b64: string }[] {
  const files: string[] = [join(REPO_ROOT, "proto", "dist", "list-decoding.js")];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith("_pb.js")) files.push(join(dir, e.name));
    }
  };
  walk(join(REPO_ROOT, "proto", "dist", "gen"));
  walk(PROTOBUF_WKT);
  const out: { file: string; b64: string }[] = [];
  for (const file of files) {
    for (const m of readFileSync(file, "utf8").matchAll(/\bfileDesc\("([A-Za-z0-9+/=]*)"/g)) {
      out.push({ file, b64: m[1]! });
    }
  }
  return out;
}

/** A message as data: its own properties and its prototype's (where proto2 defaults live), deeply. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (v === null || typeof v !== "object") return typeof v === "bigint" ? { bigint: String(v) } : v;
  const own = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  const proto = Object.getPrototypeOf(v);
  return { own, proto: proto === Object.prototype ? null : shape({ ...proto }) };
}

const evaluate = (expression: string) => new Function(`return ${expression}`)();

test("each generated FileDescriptorProto, as an expression, is the message protobuf-es decodes", () => {
  const all = generatedDescriptors();
  // Ours (11 files, list-decoding's) and the well-known types.
  assert.ok(all.length >= 20, `found ${all.length}`);
  for (const { file, b64 } of all) {
    const decoded = decodeFileDescriptor(b64);
    const literal = evaluate(descriptorExpression(decoded));
    assert.deepStrictEqual(shape(literal), shape(decoded), file);
    assert.deepEqual(
      toBinary(FileDescriptorProtoSchema, literal),
      toBinary(FileDescriptorProtoSchema, decoded),
      file,
    );
  }
});

test("fileDescOfMessage registers a file as fileDesc does", () => {
  // A file with a dependency, both ways: the same messages, fields and JSON names.
  const [dep] = generatedDescriptors().filter((d) => d.file.endsWith("timestamp_pb.js"));
  const [withDep] = generatedDescriptors().filter((d) => d.file.endsWith("session_pb.js"));
  assert.ok(dep && withDep);
  const common = generatedDescriptors().find((d) => d.file.endsWith("common_pb.js"));
  assert.ok(common);
  const viaB64 = (() => {
    const ts = fileDesc(dep.b64);
    const c = fileDesc(common.b64, [ts]);
    return fileDesc(withDep.b64, [c, ts]);
  })();
  const viaLiteral = (() => {
    const lit = (b64: string) => evaluate(descriptorExpression(decodeFileDescriptor(b64)));
    const ts = fileDescOfMessage(lit(dep.b64));
    const c = fileDescOfMessage(lit(common.b64), [ts]);
    return fileDescOfMessage(lit(withDep.b64), [c, ts]);
  })();
  const summary = (f: ReturnType<typeof fileDesc>) => ({
    name: f.name,
    deps: f.dependencies.map((d) => d.name),
    messages: f.messages.map((m) => ({
      typeName: m.typeName,
      fields: m.fields.map((x) => [x.name, x.number, x.jsonName, x.fieldKind, x.presence]),
    })),
    enums: f.enums.map((e) => [e.typeName, e.values.map((v) => [v.name, v.number])]),
    proto: [...toBinary(FileDescriptorProtoSchema, f.proto)],
  });
  assert.deepStrictEqual(summary(viaLiteral), summary(viaB64));
  // The registry built from the literal resolves the dependency's types.
  const reg = createFileRegistry(viaLiteral.proto, (n) =>
    [viaLiteral, ...viaLiteral.dependencies].find((f) => f.proto.name === n),
  );
  assert.ok(reg.getMessage("cacheroach.v1.Session"));
});

test("literalDescriptors rewrites fileDesc calls only, and leaves other modules as they are", () => {
  const b64 = generatedDescriptors()[0]!.b64;
  const text = `import { fileDesc } from "x";\nexport const file_a = /*@__PURE__*/ fileDesc("${b64}", [dep]);\n`;
  const out = literalDescriptors(text, "/helper.js");
  assert.match(out, /^import \{ fileDescOfMessage as __crFileDesc \} from "\/helper\.js";/);
  assert.match(out, /__crFileDesc\(\(\(P\)=>.*, \[dep\]\);/s);
  assert.doesNotMatch(out, /fileDesc\("/);
  const plain = 'export const fileDescription = "fileDesc";\n';
  assert.equal(literalDescriptors(plain, "/helper.js"), plain);
});

test("the bundle does not build descriptor.proto's schemas (protobuf-es' boot) when it starts", () => {
  const dir = join(CLI_ROOT, "dist", "bundle");
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".js"))) {
    const text = readFileSync(join(dir, name), "utf8");
    assert.doesNotMatch(text, /\bfileDesc\("/, `${name} decodes a descriptor at run time`);
    assert.doesNotMatch(text, /name:"google\/protobuf\/descriptor\.proto"/, `${name} boots descriptor.proto`);
  }
});
