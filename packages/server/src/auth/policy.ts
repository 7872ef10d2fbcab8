import type { DescMethod, MessageShape } from "@bufbuild/protobuf";
import {
  Diags,
  Files,
  GarbageCollection,
  grpcReflectionV1,
  grpcReflectionV1alpha,
  Principals,
  Scrub,
  Tenants,
  Tokens,
  Uploads,
  VHosts,
} from "@cacheroach/proto";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import { validatePath, validatePrefix } from "../store/paths.js";
import { CAP, type Need } from "./session.js";

/** Who may call a method at all. */
export type Access =
  /** Anyone, with or without a token. */
  | "public"
  /** Any valid session; `need` (if any) narrows it further. */
  | "authenticated"
  /** Only super sessions. */
  | "super";

/** What a policy rule can consult besides the request. */
export interface PolicyContext {
  /**
   * Verifies an upload state (the signed token of Begin) and reads where it writes; an invalid
   * one throws. uploads/upload-state.ts's codec is one: declared here so auth needs no uploads.
   */
  readonly uploadStates: { decode(state: Uint8Array): { readonly tenantId: string; readonly path: string } };
}

/** The authorization rule of one RPC method, typed by the method's request message. */
export interface Rule<M extends DescMethod = DescMethod> {
  readonly access: Access;
  /**
   * The capability and location the request needs, computed from the (validated) request; an
   * invalid field throws a clear InvalidArgument before any permission check. Batch calls need
   * every location they name.
   */
  readonly need?: (message: MessageShape<M["input"]>, ctx: PolicyContext) => Need | readonly Need[];
}

/** The key of a method in {@link POLICY}: "cacheroach.v1.Files/Stat". */
export function methodKey(m: DescMethod): string {
  return `${m.parent.typeName}/${m.name}`;
}

/** One entry of the table: the rule is checked against the method's own request type. */
function rule<M extends DescMethod>(method: M, r: Rule<M>): [string, Rule] {
  // The one place the request type is erased: the interceptor looks rules up by the descriptor
  // of the method being called, so a rule only ever sees its own method's requests.
  return [methodKey(method), r as unknown as Rule];
}

const at = (caps: number, tenantId: string, path: string): Need => ({
  caps,
  tenantId: parseId(tenantId, "tenant_id"),
  path: validatePath(path),
});
/** Most items of one batch call (paths of Files.ReadMany, files of Uploads.PutFiles). */
export const MAX_BATCH_ITEMS = 1000;
/** Checks a batch's size before its items are authorized one by one. */
const checkBatch = (n: number, what: string): void => {
  if (n < 1 || n > MAX_BATCH_ITEMS) {
    throw new CacheroachError("ERR_BAD_REQUEST", `${what} must hold 1..${MAX_BATCH_ITEMS} items, not ${n}`);
  }
};
/** The location an upload state (a signed token of Begin) names. */
const onState =
  (caps: number) =>
  (m: { state: Uint8Array }, ctx: PolicyContext): Need => {
    const s = ctx.uploadStates.decode(m.state);
    return { caps, tenantId: s.tenantId, path: s.path };
  };

/**
 * Every RPC of every service, with who may call it. This table is the one place authorization
 * is declared; the authorization interceptor applies it before any handler runs, and a method
 * missing here is refused (a test checks every method has a rule). Handlers of methods whose
 * answer depends on the caller (Tenants.List, Tokens.Issue, ...) narrow their results further
 * with the same Authorizer.
 */
export const POLICY: ReadonlyMap<string, Rule> = new Map([
  rule(Files.method.stat, { access: "authenticated", need: (m) => at(CAP.read, m.tenantId, m.path) }),
  // Lists what is below the prefix; the file at the prefix itself is listed only to a caller who
  // may read it too ("/dir/*" does not cover "/dir"; files-service.ts checks that).
  rule(Files.method.list, {
    access: "authenticated",
    need: (m) => ({
      caps: CAP.read,
      tenantId: parseId(m.tenantId, "tenant_id"),
      path: `${validatePrefix(m.path)}/*`,
    }),
  }),
  rule(Files.method.read, { access: "authenticated", need: (m) => at(CAP.read, m.tenantId, m.path) }),
  rule(Files.method.chunks, { access: "authenticated", need: (m) => at(CAP.read, m.tenantId, m.path) }),
  rule(Files.method.delete, { access: "authenticated", need: (m) => at(CAP.write, m.tenantId, m.path) }),
  rule(Files.method.readMany, {
    access: "authenticated",
    need: (m) => {
      checkBatch(m.paths.length, "paths");
      return m.paths.map((p) => at(CAP.read, m.tenantId, p));
    },
  }),
  rule(Files.method.versions, { access: "authenticated", need: (m) => at(CAP.read, m.tenantId, m.path) }),
  rule(Files.method.retrieve, { access: "authenticated", need: (m) => at(CAP.read, m.tenantId, m.path) }),

  // Linking content by hash (committed.content_hash) also needs read on a live file holding that
  // content; otherwise it is NOT_FOUND, as for content the tenant lacks (auth/content-access.ts).
  rule(Uploads.method.begin, { access: "authenticated", need: (m) => at(CAP.write, m.tenantId, m.path) }),
  rule(Uploads.method.transfer, { access: "authenticated", need: onState(CAP.write) }),
  rule(Uploads.method.findMissing, { access: "authenticated", need: onState(CAP.write) }),
  rule(Uploads.method.putChunks, { access: "authenticated", need: onState(CAP.write) }),
  rule(Uploads.method.append, { access: "authenticated", need: onState(CAP.write) }),
  rule(Uploads.method.commit, { access: "authenticated", need: onState(CAP.write) }),
  rule(Uploads.method.putFiles, {
    access: "authenticated",
    need: (m) => {
      checkBatch(m.files.length, "files");
      return m.files.map((f) => at(CAP.write, m.tenantId, f.path));
    },
  }),
  rule(Uploads.method.fetch, {
    access: "authenticated",
    need: (m) => at(CAP.write | CAP.fetch, m.tenantId, m.path),
  }),

  rule(Tenants.method.ensure, { access: "super" }),
  rule(Tenants.method.get, { access: "authenticated" }),
  rule(Tenants.method.list, { access: "authenticated" }),

  rule(Principals.method.ensure, { access: "super" }),
  rule(Principals.method.list, { access: "super" }),
  rule(Principals.method.load, { access: "authenticated" }),
  rule(Principals.method.watch, { access: "super" }),

  rule(Tokens.method.current, { access: "authenticated" }),
  rule(Tokens.method.issue, { access: "authenticated" }),
  rule(Tokens.method.find, { access: "authenticated" }),
  rule(Tokens.method.load, { access: "authenticated" }),
  rule(Tokens.method.invalidate, { access: "authenticated" }),
  rule(Tokens.method.refresh, { access: "authenticated" }),
  rule(Tokens.method.validate, { access: "public" }),

  rule(VHosts.method.ensure, { access: "super" }),
  rule(VHosts.method.list, { access: "super" }),

  rule(Diags.method.echo, { access: "super" }),

  rule(GarbageCollection.method.collect, { access: "super" }),
  // Reads every stored byte of a tenant (or of all): for operators only.
  rule(Scrub.method.run, { access: "super" }),

  // gRPC server reflection describes the API (no data), public as in the original.
  rule(grpcReflectionV1.ServerReflection.method.serverReflectionInfo, { access: "public" }),
  rule(grpcReflectionV1alpha.ServerReflection.method.serverReflectionInfo, { access: "public" }),
]);
