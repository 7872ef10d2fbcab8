/**
 * Writing one file with the Uploads protocol the CLI uses (Begin → Transfer* → Commit): the tenant
 * is named in the call (plain HTTP PUT writes only the tenant the Host maps to), every step is
 * idempotent and is retried with the same state after a lost connection, and the content is read
 * one transfer at a time (a 200 MiB file never sits in memory). Until Commit nothing is visible,
 * so a cancelled upload leaves no file and no partial version; what it stored expires with the
 * upload and is collected.
 */
import type { FileMeta } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../api/client.js";

/** A guard on the write (docs: Precondition): create only, or replace exactly this version. */
export type WriteGuard = { kind: "create" } | { kind: "replace"; version: bigint };

/** Reads `length` bytes of the content at `offset` (a Blob slice, or a stored version). */
export type BlockReader = (offset: number, length: number, signal: AbortSignal) => Promise<Uint8Array>;

/** What to write and where. */
export interface UploadJob {
  readonly tenantId: string;
  readonly path: string;
  readonly size: number;
  readonly read: BlockReader;
  readonly contentType: string;
  readonly guard: WriteGuard;
}

/** The largest transfer the server accepted last time: small files after it go in one call. */
let knownMaxTransfer = 0;

function precondition(guard: WriteGuard) {
  return guard.kind === "create"
    ? { kind: { case: "mustNotExist" as const, value: true } }
    : { kind: { case: "version" as const, value: guard.version } };
}

/** Transient failures worth repeating the same idempotent step for. */
function retryable(err: unknown): boolean {
  if (err instanceof ConnectError) return err.code === Code.Unavailable || err.code === Code.Unknown;
  return err instanceof TypeError; // fetch: the network failed
}

async function withRetry<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (signal.aborted || attempt >= 4 || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

/**
 * Writes `job`, calling `progress` with the bytes sent so far. `signal` cancels it up to Commit;
 * once Commit is sent the write completes (it is atomic: all or nothing either way).
 */
export async function upload(
  api: Api,
  job: UploadJob,
  progress: (sent: number) => void,
  signal: AbortSignal,
): Promise<FileMeta> {
  const base = { tenantId: job.tenantId, path: job.path, precondition: precondition(job.guard) };
  const oneShot = (committed: { case: "empty"; value: true } | { case: "contents"; value: Uint8Array }) =>
    withRetry(signal, () =>
      api.uploads.begin({ ...base, committed, contentType: job.contentType }, { signal }),
    );
  if (job.size === 0) {
    const r = await oneShot({ case: "empty", value: true });
    progress(0);
    return r.file!;
  }
  if (job.size <= knownMaxTransfer) {
    const contents = await job.read(0, job.size, signal);
    const r = await oneShot({ case: "contents", value: contents });
    progress(job.size);
    return r.file!;
  }
  const begun = await withRetry(signal, () => api.uploads.begin(base, { signal }));
  knownMaxTransfer = begun.maxTransferSize;
  const step = Math.max(
    begun.chunkSize,
    begun.maxTransferSize - (begun.maxTransferSize % Math.max(begun.chunkSize, 1)),
  );
  let state = begun.state;
  let offset = 0;
  // Read the next block while the current one travels.
  const ahead = (at: number) => {
    const p = job.read(at, Math.min(step, job.size - at), signal);
    p.catch(() => undefined); // a failure is reported where it is awaited
    return p;
  };
  let next = ahead(0);
  while (offset < job.size) {
    const data = await next;
    if (data.length === 0) throw new Error(`${job.path}: the file ended early (it changed while uploading?)`);
    const after = offset + data.length;
    if (after < job.size) next = ahead(after);
    const s = state;
    const r = await withRetry(signal, () => api.uploads.transfer({ state: s, data }, { signal }));
    state = r.state;
    offset = after;
    progress(offset);
  }
  signal.throwIfAborted();
  const committed = await withRetry(new AbortController().signal, () =>
    api.uploads.commit({ state, contentType: job.contentType, precondition: precondition(job.guard) }),
  );
  return committed.file!;
}

/** Reads blocks of a browser File or Blob (only the block asked for is loaded). */
export function blobReader(blob: Blob): BlockReader {
  return async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
}

/** Reads blocks of a stored version with Files.Read (restoring an old version streams it back). */
export function versionReader(api: Api, tenantId: string, path: string, version: bigint): BlockReader {
  return async (offset, length, signal) => {
    const out = new Uint8Array(length);
    let at = 0;
    for await (const m of api.files.read(
      { tenantId, path, version, offset: BigInt(offset), length: BigInt(length) },
      { signal },
    )) {
      out.set(m.data, at);
      at += m.data.length;
    }
    return at === length ? out : out.subarray(0, at);
  };
}
