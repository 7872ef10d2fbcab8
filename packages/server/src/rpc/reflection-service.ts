/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha): lets `grpcurl`, `buf curl` and grpcui
 * list the server's services and fetch the descriptors of their files, so they can call any method
 * without a local copy of the schema. Public, as in the original: the schema is no secret (it is
 * in the repository), and descriptors carry no data.
 *
 * The descriptors are the ones embedded in the generated code (protobuf-es), so what reflection
 * describes is exactly what the server decodes. A file is answered with every file it imports,
 * transitively (the client needs them all to build the schema).
 */
import {
  createRegistry,
  type DescFile,
  type DescService,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { grpcReflectionV1, grpcReflectionV1alpha } from "@cacheroach/proto";
import type { ServiceImpl } from "@connectrpc/connect";

type V1 = typeof grpcReflectionV1;
type Request = grpcReflectionV1.ServerReflectionRequest;
type Answer = MessageInitShape<typeof grpcReflectionV1.ServerReflectionResponseSchema>["messageResponse"];

/** gRPC's NOT_FOUND and INVALID_ARGUMENT, as reflection's error_response carries them. */
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** Answers reflection requests about `services` (plus the reflection services themselves). */
export class Reflector {
  private readonly serviceNames: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly registry;
  private readonly encoded = new Map<string, Uint8Array>();

  constructor(services: readonly DescService[]) {
    const all = [...services, grpcReflectionV1.ServerReflection, grpcReflectionV1alpha.ServerReflection];
    this.serviceNames = [...new Set(all.map((s) => s.typeName))].sort();
    const add = (f: DescFile): void => {
      if (this.files.has(f.proto.name)) return;
      this.files.set(f.proto.name, f);
      for (const d of f.dependencies) add(d);
    };
    for (const s of all) add(s.file);
    this.registry = createRegistry(...this.files.values());
  }

  /** The answer to one request (never throws: problems are error responses). */
  answer(req: Request): Answer {
    const q = req.messageRequest;
    switch (q.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const f = this.files.get(q.value);
        return f ? this.fileAnswer(f) : notFound(`no file named "${q.value}"`);
      }
      case "fileContainingSymbol": {
        const f = this.fileOfSymbol(q.value);
        return f ? this.fileAnswer(f) : notFound(`no symbol "${q.value}"`);
      }
      case "fileContainingExtension": {
        const m = this.registry.getMessage(q.value.containingType);
        const ext = m && this.registry.getExtensionFor(m, q.value.extensionNumber);
        return ext
          ? this.fileAnswer(ext.file)
          : notFound(`no extension ${q.value.extensionNumber} of "${q.value.containingType}"`);
      }
      case "allExtensionNumbersOfType": {
        const m = this.registry.getMessage(q.value);
        if (!m) return notFound(`no message type "${q.value}"`);
        const numbers: number[] = [];
        for (const t of this.registry)
          if (t.kind === "extension" && t.extendee.typeName === m.typeName) numbers.push(t.number);
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: m.typeName, extensionNumber: numbers.sort((a, b) => a - b) },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty request" },
        };
    }
  }

  /** The file defining a service, method, message, field, enum, enum value or extension. */
  private fileOfSymbol(symbol: string): DescFile | undefined {
    const direct = this.registry.get(symbol);
    if (direct) return direct.file;
    // "pkg.Service.Method", "pkg.Message.field", "pkg.Enum.VALUE": the parent defines it.
    const dot = symbol.lastIndexOf(".");
    if (dot < 0) return undefined;
    const parent = this.registry.get(symbol.slice(0, dot));
    const member = symbol.slice(dot + 1);
    switch (parent?.kind) {
      case "service":
        return parent.methods.some((m) => m.name === member) ? parent.file : undefined;
      case "message":
        return parent.fields.some((f) => f.name === member) ? parent.file : undefined;
      case "enum":
        return parent.values.some((v) => v.name === member) ? parent.file : undefined;
      default:
        // Enum values are scoped like their enum's siblings: "pkg.VALUE" for a top-level enum.
        for (const t of this.registry) {
          if (
            t.kind === "enum" &&
            t.values.some(
              (v) => `${t.typeName.slice(0, t.typeName.lastIndexOf(".") + 1)}${v.name}` === symbol,
            )
          ) {
            return t.file;
          }
        }
        return undefined;
    }
  }

  /** `file` and every file it imports, transitively, serialized. */
  private fileAnswer(file: DescFile): Answer {
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(this.encode(f));
      for (const d of f.dependencies) visit(d);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  private encode(f: DescFile): Uint8Array {
    let bytes = this.encoded.get(f.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, f.proto);
      this.encoded.set(f.proto.name, bytes);
    }
    return bytes;
  }
}

function notFound(message: string): Answer {
  return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: message } };
}

/**
 * The reflection service (v1; v1alpha has the same shape): one response per request, in order.
 * The two versions' messages are identical on the wire and in shape, so one implementation serves
 * both.
 */
export function createReflectionService(reflector: Reflector): ServiceImpl<V1["ServerReflection"]> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: reflector.answer(req) };
      }
    },
  };
}

/** The same, typed for grpc.reflection.v1alpha. */
export function createReflectionServiceV1alpha(
  reflector: Reflector,
): ServiceImpl<(typeof grpcReflectionV1alpha)["ServerReflection"]> {
  return createReflectionService(reflector) as unknown as ServiceImpl<
    (typeof grpcReflectionV1alpha)["ServerReflection"]
  >;
}
