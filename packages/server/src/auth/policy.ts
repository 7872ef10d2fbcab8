import type {
  BeginRequest,
  ChunksRequest,
  DeleteRequest,
  FetchRequest,
  ListRequest,
  PutFilesRequest,
  ReadManyRequest,
  ReadRequest,
  RetrieveRequest,
  StatRequest,
} from "@cacheroach/proto";
import { StoreError } from "../errors.js";
import { parseId } from "../ids.js";
import { validatePath, validatePrefix } from "../store/paths.js";
import type { UploadStateCodec } from "../uploads/upload-state.js";
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
  readonly uploadStates: UploadStateCodec;
}

/** The authorization rule of one RPC method. */
export interface Rule {
  readonly access: Access;
  /**
   * The capability and location the request needs, computed from the (validated) request; an
   * invalid field throws a clear InvalidArgument before any permission check. Batch calls need
   * every location they name.
   */
  readonly need?: (message: unknown, ctx: PolicyContext) => Need | readonly Need[];
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
    throw new StoreError("ERR_BAD_REQUEST", `${what} must hold 1..${MAX_BATCH_ITEMS} items, not ${n}`);
  }
};
const onState = (caps: number) => (m: unknown, ctx: PolicyContext) => {
  const s = ctx.uploadStates.decode((m as { state: Uint8Array }).state);
  return { caps, tenantId: s.tenantId, path: s.path };
};

/**
 * Every RPC of every service, with who may call it. This table is the one place authorization
 * is declared; the interceptor applies it before any handler runs, and a method missing here
 * is refused. Handlers of methods whose answer depends on the caller (Tenants.List,
 * Tokens.Issue, ...) narrow their results further with the same Authorizer.
 */
export const POLICY: Readonly<Record<string, Rule>> = {
  "cacheroach.v1.Files/Stat": {
    access: "authenticated",
    need: (m) => at(CAP.read, (m as StatRequest).tenantId, (m as StatRequest).path),
  },
  // Lists what is below the prefix; the file at the prefix itself is listed only to a caller who
  // may read it too ("/dir/*" does not cover "/dir"; files-service.ts checks that).
  "cacheroach.v1.Files/List": {
    access: "authenticated",
    need: (m) => {
      const r = m as ListRequest;
      const prefix = validatePrefix(r.path);
      return { caps: CAP.read, tenantId: parseId(r.tenantId, "tenant_id"), path: `${prefix}/*` };
    },
  },
  "cacheroach.v1.Files/Read": {
    access: "authenticated",
    need: (m) => at(CAP.read, (m as ReadRequest).tenantId, (m as ReadRequest).path),
  },
  "cacheroach.v1.Files/Chunks": {
    access: "authenticated",
    need: (m) => at(CAP.read, (m as ChunksRequest).tenantId, (m as ChunksRequest).path),
  },
  "cacheroach.v1.Files/Delete": {
    access: "authenticated",
    need: (m) => at(CAP.write, (m as DeleteRequest).tenantId, (m as DeleteRequest).path),
  },
  "cacheroach.v1.Files/ReadMany": {
    access: "authenticated",
    need: (m) => {
      const r = m as ReadManyRequest;
      checkBatch(r.paths.length, "paths");
      return r.paths.map((p) => at(CAP.read, r.tenantId, p));
    },
  },
  "cacheroach.v1.Files/Retrieve": {
    access: "authenticated",
    need: (m) => at(CAP.read, (m as RetrieveRequest).tenantId, (m as RetrieveRequest).path),
  },

  // Linking content by hash (committed.content_hash) also needs read on a live file holding that
  // content; otherwise it is NOT_FOUND, as for content the tenant lacks (auth/content-access.ts).
  "cacheroach.v1.Uploads/Begin": {
    access: "authenticated",
    need: (m) => at(CAP.write, (m as BeginRequest).tenantId, (m as BeginRequest).path),
  },
  "cacheroach.v1.Uploads/Transfer": { access: "authenticated", need: onState(CAP.write) },
  "cacheroach.v1.Uploads/FindMissing": { access: "authenticated", need: onState(CAP.write) },
  "cacheroach.v1.Uploads/PutChunks": { access: "authenticated", need: onState(CAP.write) },
  "cacheroach.v1.Uploads/Append": { access: "authenticated", need: onState(CAP.write) },
  "cacheroach.v1.Uploads/Commit": { access: "authenticated", need: onState(CAP.write) },
  "cacheroach.v1.Uploads/PutFiles": {
    access: "authenticated",
    need: (m) => {
      const r = m as PutFilesRequest;
      checkBatch(r.files.length, "files");
      return r.files.map((f) => at(CAP.write, r.tenantId, f.path));
    },
  },
  "cacheroach.v1.Uploads/Fetch": {
    access: "authenticated",
    need: (m) => at(CAP.write | CAP.fetch, (m as FetchRequest).tenantId, (m as FetchRequest).path),
  },

  "cacheroach.v1.Tenants/Ensure": { access: "super" },
  "cacheroach.v1.Tenants/Get": { access: "authenticated" },
  "cacheroach.v1.Tenants/List": { access: "authenticated" },

  "cacheroach.v1.Principals/Ensure": { access: "super" },
  "cacheroach.v1.Principals/List": { access: "super" },
  "cacheroach.v1.Principals/Load": { access: "authenticated" },
  "cacheroach.v1.Principals/Watch": { access: "super" },

  "cacheroach.v1.Tokens/Current": { access: "authenticated" },
  "cacheroach.v1.Tokens/Issue": { access: "authenticated" },
  "cacheroach.v1.Tokens/Find": { access: "authenticated" },
  "cacheroach.v1.Tokens/Load": { access: "authenticated" },
  "cacheroach.v1.Tokens/Invalidate": { access: "authenticated" },
  "cacheroach.v1.Tokens/Refresh": { access: "authenticated" },
  "cacheroach.v1.Tokens/Validate": { access: "public" },

  "cacheroach.v1.VHosts/Ensure": { access: "super" },
  "cacheroach.v1.VHosts/List": { access: "super" },

  "cacheroach.v1.Diags/Echo": { access: "super" },
};
