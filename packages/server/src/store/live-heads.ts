import { chunkHash } from "@cacheroach/core";
import { byteaArray, inBatches } from "../db/arrays.js";
import type { CopyRow } from "../db/copy-binary.js";
import type { Db } from "../db/db.js";
import type { CacheroachError } from "../errors.js";
import { damagedContent } from "./damaged-content.js";
import { type FileListRow, type FileRecord, fileFromListRow, LIST_COLUMNS } from "./file-meta.js";
import { pathKey } from "./paths.js";

/** A live head, with its whole content when it was small enough to come along. */
export interface LiveHead {
  readonly file: FileRecord;
  /**
   * The whole content when the file has at most `inlineMax` bytes; a CacheroachError when that content
   * is not intact in the database (the caller decides whether it matters); undefined when larger.
   */
  readonly contents: Buffer | CacheroachError | undefined;
}

/** Paths per statement (Files.ReadMany asks for at most 1000). */
const PATHS_PER_QUERY = 1000;
/** A tenant id that is safe to embed in SQL text. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * Bytes of a COPY answer allowed per path besides the inlined contents: the path, metadata (at most
 * 64 entries of 128 + 4096 characters, as JSON), content type and numbers. A runaway guard only.
 */
const COPY_BYTES_PER_PATH = 4 << 20;
/** The chunk-list and chunk columns joined to each head (NULL when not inlined). */
const JOINED = "rc.off, rc.length, rc.chunk_hash";

/**
 * The live heads of `paths` (deleted and absent paths are left out), keyed by path, and in the
 * same statement the whole contents of those of at most `inlineMax` bytes: heads, chunk lists and
 * chunks joined, one round trip instead of three. The caller bounds `inlineMax × paths` (it is
 * what the answer may hold).
 *
 * On PostgreSQL with binary COPY reads enabled the statement is a binary COPY, so chunk bytes
 * arrive raw instead of as base64 text; elsewhere (CockroachDB) it is the portable query.
 */
export async function readLiveHeads(
  db: Db,
  tenantId: string,
  paths: readonly string[],
  inlineMax: number,
): Promise<Map<string, LiveHead>> {
  const parts = new Map<string, Part>();
  const limit = Math.max(0, Math.floor(inlineMax));
  const copy = db.binaryCopyReads && CANONICAL_UUID.test(tenantId);
  await inBatches(paths, PATHS_PER_QUERY, async (batch) => {
    if (copy) await copyHeads(db, tenantId, batch, limit, parts);
    else await selectHeads(db, tenantId, batch, limit, parts);
  });
  const out = new Map<string, LiveHead>();
  for (const [path, p] of parts) {
    const file = fileFromListRow(tenantId, p.row);
    out.set(path, { file, contents: file.size <= limit ? assemble(file, p.chunks) : undefined });
  }
  return out;
}

/** One head and the chunks that came with it. */
interface Part {
  row: FileListRow;
  chunks: { off: number; length: number; hash: Buffer; data: Buffer | null }[];
}

function add(
  parts: Map<string, Part>,
  row: FileListRow,
  off: number | null,
  length: number,
  hash: Buffer | null,
  data: Buffer | null,
) {
  const path = row.path.toString("utf8");
  let p = parts.get(path);
  if (!p) {
    p = { row, chunks: [] };
    parts.set(path, p);
  }
  if (off !== null && hash !== null) p.chunks.push({ off, length, hash, data });
}

/** The whole content from its chunks, checked to cover it exactly once, in order. */
function assemble(file: FileRecord, chunks: Part["chunks"]): Buffer | CacheroachError {
  if (file.size === 0) return Buffer.alloc(0);
  if (chunks.length > 1) chunks.sort((a, b) => a.off - b.off);
  let pos = 0;
  for (const c of chunks) {
    if (c.data === null) return damagedContent(file.ropeHash, `the chunk at offset ${c.off} is missing`);
    if (c.off !== pos) return damagedContent(file.ropeHash, `its chunk list has no chunk at offset ${pos}`);
    if (c.data.length !== c.length) {
      return damagedContent(
        file.ropeHash,
        `the chunk at offset ${c.off} is not as long as its chunk list says`,
      );
    }
    // Bytes from the database are checked before they are served (see ChunkStore.get).
    if (!chunkHash(c.data).equals(c.hash))
      return damagedContent(file.ropeHash, `the chunk at offset ${c.off} does not match its hash`);
    pos += c.length;
  }
  if (pos !== file.size) {
    return damagedContent(file.ropeHash, `its chunk list holds ${pos} bytes, not ${file.size}`);
  }
  return chunks.length === 1
    ? chunks[0]!.data!
    : Buffer.concat(
        chunks.map((c) => c.data!),
        pos,
      );
}

/*
 * The statement's shape pins its plan to primary-key lookups, whatever the statistics say: each
 * path and each head's chunk list is a LATERAL subquery (OFFSET 0 keeps PostgreSQL from flattening
 * it back into a join). With plain joins, statistics taken before a bulk load of small files made
 * the planner expect one row per tenant and scan the tenant's whole chunk list once per head:
 * 1.6 s per batch of 256 instead of 5 ms, and 177 files/s in a full benchmark.
 */

/** The heads subquery: the live file at each path `paths` yields (a set-returning FROM item). */
function headsFrom(tenant: string, paths: string): string {
  return `(SELECT f.* FROM ${paths} AS p (path)
     CROSS JOIN LATERAL (SELECT ${LIST_COLUMNS} FROM files
       WHERE tenant_id = ${tenant} AND path = p.path AND dtime IS NULL OFFSET 0) AS f) AS h`;
}

/** The chunk lists of the heads of at most `limit` bytes. */
function joins(tenant: string, limit: string): string {
  return `LEFT JOIN LATERAL (SELECT r.off, r.length, r.chunk_hash FROM rope_chunks AS r
       WHERE r.tenant_id = ${tenant} AND r.rope_hash = h.rope_hash AND h.size > 0 AND h.size <= ${limit} OFFSET 0) AS rc ON true`;
}

/** Each listed chunk's bytes, as a subquery per row: one primary-key lookup. */
function chunkData(tenant: string): string {
  return `(SELECT c.data FROM chunks AS c WHERE c.tenant_id = ${tenant} AND c.hash = rc.chunk_hash)`;
}

/** The portable statement: tenant $1, inline limit $2, paths $3 (a BYTEA[]). */
const SELECT_HEADS = `SELECT h.*, ${JOINED}, encode(${chunkData("$1")}, 'base64') AS b64
  FROM ${headsFrom("$1", "unnest($3::BYTEA[])")}
  ${joins("$1", "$2")}`;

/** Portable: one query, chunk bytes as base64 text (see ChunkStore.selectChunk). */
async function selectHeads(
  db: Db,
  tenantId: string,
  paths: readonly string[],
  limit: number,
  parts: Map<string, Part>,
): Promise<void> {
  const r = await db.query<
    FileListRow & { off: string | null; length: number | null; chunk_hash: Buffer | null; b64: string | null }
  >(SELECT_HEADS, [tenantId, limit, byteaArray(paths.map(pathKey))]);
  for (const row of r.rows) {
    add(
      parts,
      row,
      row.off === null ? null : Number(row.off),
      row.length ?? 0,
      row.chunk_hash,
      row.b64 === null ? null : Buffer.from(row.b64, "base64"),
    );
  }
}

/**
 * PostgreSQL: the same statement as a binary COPY, chunk bytes raw. COPY takes no parameters, so
 * the tenant must be a canonical UUID, paths go in as hex through decode() and the limit as an
 * integer: nothing that needs escaping.
 */
async function copyHeads(
  db: Db,
  tenantId: string,
  paths: readonly string[],
  limit: number,
  parts: Map<string, Part>,
): Promise<void> {
  const tenant = `'${tenantId}'`;
  const list = `(VALUES ${paths.map((p) => `(decode('${pathKey(p).toString("hex")}', 'hex'))`).join(", ")})`;
  const rows = await db.copyOut(
    `COPY (SELECT h.*, ${JOINED}, ${chunkData(tenant)} FROM ${headsFrom(tenant, list)}
     ${joins(tenant, String(limit))}) TO STDOUT (FORMAT binary)`, // crdb-lint: ok PostgreSQL only (guarded by binaryCopyReads)
    { fields: 13, maxBytes: paths.length * (limit + COPY_BYTES_PER_PATH) },
  );
  for (const f of rows) {
    const row: FileListRow = {
      path: bytes(f[0]),
      version: String(int8(f[1])),
      rope_hash: bytes(f[2]),
      size: String(int8(f[3])),
      chunk_size: int4(f[4]),
      content_type: text(f[5]),
      meta: text(f[6]),
      ctime: text(f[7]),
      mtime: f[8] === null ? null : text(f[8]!),
    };
    add(
      parts,
      row,
      f[9] === null ? null : int8(f[9]),
      f[10] === null ? 0 : int4(f[10]),
      f[11] ?? null,
      f[12] ?? null,
    );
  }
}

function bytes(field: CopyRow[number] | undefined): Buffer {
  if (!field) throw new Error("COPY: unexpected NULL");
  return field;
}

function text(field: CopyRow[number] | undefined): string {
  return bytes(field).toString("utf8");
}

function int4(field: CopyRow[number] | undefined): number {
  const b = bytes(field);
  if (b.length !== 4) throw new Error("COPY: expected an int4");
  return b.readInt32BE(0);
}

/** A non-negative INT8 within the safe integer range (versions, sizes, offsets). */
function int8(field: CopyRow[number] | undefined): number {
  const b = bytes(field);
  if (b.length !== 8) throw new Error("COPY: expected an int8");
  const v = b.readBigInt64BE(0);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("COPY: int8 out of range");
  return Number(v);
}
