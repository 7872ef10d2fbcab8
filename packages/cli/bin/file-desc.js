/**
 * `fileDesc` of protobuf-es' generated code for the CLI's bundle (scripts/literal-descriptors.mjs
 * puts it in place): the same registration of a file's descriptors, from a FileDescriptorProto
 * message the build already decoded instead of a base64 string decoded at every start.
 */
import { createFileRegistry } from "@bufbuild/protobuf";

export function fileDescOfMessage(root, imports) {
  root.dependency = imports?.map((f) => f.proto.name) ?? [];
  const registry = createFileRegistry(root, (name) => imports?.find((f) => f.proto.name === name));
  return registry.getFile(root.name);
}
