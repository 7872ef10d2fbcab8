/**
 * The cacheroach.v1 API: generated message schemas and service descriptors.
 * Generated code lives in ./gen and is committed; `npm run generate` rebuilds it.
 */
export * from "./gen/cacheroach/v1/common_pb.js";
export * from "./gen/cacheroach/v1/diags_pb.js";
export * from "./gen/cacheroach/v1/files_pb.js";
export * from "./gen/cacheroach/v1/gc_pb.js";
export * from "./gen/cacheroach/v1/principals_pb.js";
export * from "./gen/cacheroach/v1/scrub_pb.js";
export * from "./gen/cacheroach/v1/session_pb.js";
export * from "./gen/cacheroach/v1/tenants_pb.js";
export * from "./gen/cacheroach/v1/tokens_pb.js";
export * from "./gen/cacheroach/v1/uploads_pb.js";
export * from "./gen/cacheroach/v1/vhosts_pb.js";
// gRPC server reflection (grpcurl, buf curl): the standard service in its two versions.
export * as grpcReflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
export * as grpcReflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";
// Hand-written decoding of Files.List answers (the fast path for clients listing many files).
export {
  decodeListResponse,
  FilesListBytes,
  type ListResponseBytes,
  ListResponseBytesSchema,
  listResponseOfBytes,
} from "./list-decoding.js";
