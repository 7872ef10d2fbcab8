import type { Uploads } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Authorizer } from "../auth/authorizer.js";
import { kSession } from "../auth/call-context.js";
import type { ContentAccess } from "../auth/content-access.js";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import type { ChunkStore } from "../store/chunk-store.js";
import type { FileStore } from "../store/file-store.js";
import { validatePath } from "../store/paths.js";
import { type FetchLimits, fetchRemote } from "../uploads/remote-fetch.js";
import { type UploadManager, unknownContent } from "../uploads/upload-manager.js";
import { fromPrecondition, toFileMeta, validateContentType, validateMeta } from "./convert.js";
import { toItemError } from "./item-error.js";
import { preconditionDetail } from "./precondition-detail.js";

/**
 * The Uploads service: the Begin → Transfer/Append* → Commit protocol (authorization:
 * auth/policy.ts; linking content by hash additionally needs read on a file holding it, see
 * auth/content-access.ts; failed preconditions are detailed only to readers of the path).
 */
export function createUploadsService(
  uploads: UploadManager,
  chunks: ChunkStore,
  files: FileStore,
  fetchLimits: FetchLimits,
  authz: Authorizer,
  access: ContentAccess,
): ServiceImpl<typeof Uploads> {
  const limits = uploads.limits;
  const decode = (state: Uint8Array) => uploads.codec.decode(state);
  return {
    async begin(req, ctx: HandlerContext) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const path = validatePath(req.path);
      const precondition = fromPrecondition(req.precondition);
      const base = {
        maxTransferSize: limits.maxTransferSize,
        chunkSize: limits.chunkSize,
        packedChunks: true,
      };
      const s = ctx.values.get(kSession);
      const reveal = preconditionDetail(authz, ctx, tenantId);
      try {
        if (req.committed.case !== undefined) {
          if (req.committed.case === "empty" && !req.committed.value) {
            throw new CacheroachError("ERR_BAD_REQUEST", "empty must be true when set");
          }
          const opts = {
            meta: validateMeta(req.meta),
            contentType: validateContentType(req.contentType),
            precondition,
          };
          if (req.committed.case === "contentHash") {
            const hash = Buffer.from(req.committed.value);
            if (hash.length !== 32)
              throw new CacheroachError("ERR_BAD_REQUEST", "content_hash must be 32 bytes");
            // Content no file readable by the caller holds is answered as content that does not exist.
            if (!s || !(await access.mayLink(s, tenantId, hash))) throw unknownContent(hash);
            const file = await uploads.writeExisting(tenantId, path, hash, opts);
            return { ...base, file: toFileMeta(file) };
          }
          const data = req.committed.case === "contents" ? view(req.committed.value) : Buffer.alloc(0);
          const file = await uploads.writeSmall(tenantId, path, data, opts);
          return { ...base, file: toFileMeta(file) };
        }
        const { state } = await uploads.begin(
          tenantId,
          path,
          { principalId: s?.principalId, sessionId: s?.id },
          precondition,
        );
        return { ...base, state };
      } catch (err) {
        throw await reveal(err);
      }
    },

    async putFiles(req, ctx: HandlerContext) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      // Everything is validated before anything is written: a bad field fails the whole call.
      const writes = req.files.map((f) => {
        const expected = f.expectedContentHash.length ? Buffer.from(f.expectedContentHash) : undefined;
        if (expected && expected.length !== 32) {
          throw new CacheroachError("ERR_BAD_REQUEST", `${f.path}: expected_content_hash must be 32 bytes`);
        }
        return {
          path: validatePath(f.path),
          data: view(f.contents),
          meta: validateMeta(f.meta),
          contentType: validateContentType(f.contentType),
          precondition: fromPrecondition(f.precondition),
          expectedHash: expected,
        };
      });
      const results = await uploads.writeMany(tenantId, writes);
      const reveal = preconditionDetail(authz, ctx, tenantId);
      return {
        results: await Promise.all(
          results.map(async (r) =>
            r instanceof CacheroachError
              ? { result: { case: "error" as const, value: toItemError(await reveal(r)) } }
              : { result: { case: "file" as const, value: toFileMeta(r) } },
          ),
        ),
      };
    },

    async transfer(req) {
      const { state, decoded } = await uploads.transfer(decode(req.state), view(req.data));
      return { state, offset: BigInt(decoded.offset) };
    },

    async findMissing(req) {
      const s = decode(req.state);
      if (req.hashes.length > 10_000)
        throw new CacheroachError("ERR_BAD_REQUEST", "at most 10000 hashes per call");
      const hashes = req.hashes.map((h) => {
        if (h.length !== 32) throw new CacheroachError("ERR_BAD_REQUEST", "hashes must be 32 bytes");
        return Buffer.from(h);
      });
      const missing = await uploads.findMissing(s, hashes);
      const spared = new Set(hashes.map((h) => h.toString("hex"))).size - missing.length;
      chunks.countSpared(spared, spared * s.chunkSize);
      return { missing };
    },

    async putChunks(req) {
      const state = decode(req.state);
      const chunks = req.chunks.map((c) => ({ hash: Buffer.from(c.hash), data: view(c.data) }));
      const packed = view(req.packedData);
      const expected = Math.ceil(packed.length / state.chunkSize);
      if (req.packedHashes.length !== expected) {
        throw new CacheroachError(
          "ERR_BAD_REQUEST",
          `packed_data of ${packed.length} bytes holds ${expected} chunks of ${state.chunkSize}, not the ${req.packedHashes.length} packed_hashes name`,
        );
      }
      // Views into the request: the packed chunks are never copied.
      req.packedHashes.forEach((h, i) => {
        const at = i * state.chunkSize;
        chunks.push({ hash: Buffer.from(h), data: packed.subarray(at, at + state.chunkSize) });
      });
      const stored = await uploads.putChunks(state, chunks);
      return { stored };
    },

    async append(req) {
      const { state, decoded } = await uploads.append(
        decode(req.state),
        req.chunks.map((c) => ({ hash: Buffer.from(c.hash), length: c.length })),
      );
      return { state, offset: BigInt(decoded.offset) };
    },

    async fetch(req, ctx: HandlerContext) {
      const tenantId = parseId(req.tenantId, "tenant_id");
      const path = validatePath(req.path);
      const s = ctx.values.get(kSession);
      const r = await fetchRemote(
        uploads,
        files,
        tenantId,
        path,
        { url: req.remoteUrl, method: req.remoteMethod, headers: req.remoteHeaders },
        fetchLimits,
        { principalId: s?.principalId, sessionId: s?.id },
      );
      return { remoteHttpCode: r.code, remoteHttpMessage: r.message, file: r.file && toFileMeta(r.file) };
    },

    async commit(req, ctx: HandlerContext) {
      const expected = req.expectedContentHash.length ? Buffer.from(req.expectedContentHash) : undefined;
      if (expected && expected.length !== 32)
        throw new CacheroachError("ERR_BAD_REQUEST", "expected_content_hash must be 32 bytes");
      const state = decode(req.state);
      try {
        const file = await uploads.commit(state, {
          meta: validateMeta(req.meta),
          contentType: validateContentType(req.contentType),
          precondition: fromPrecondition(req.precondition),
          expectedHash: expected,
        });
        return { file: toFileMeta(file) };
      } catch (err) {
        throw await preconditionDetail(authz, ctx, state.tenantId)(err);
      }
    },
  };
}

/** A Buffer over the same memory (protobuf gives Uint8Arrays; Buffer.from(array) would copy). */
function view(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
