/**
 * Downloading one file with Files.Read, verifying it on the fly: the rope hash is recomputed from
 * the streamed bytes (cut at FileMeta.chunk_size) and compared with FileMeta.content_hash. A file
 * destination is written to a temp file in the same directory and renamed into place only once
 * the content verified; otherwise the temp file is removed.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import type { FileMeta, Files } from "@cacheroach/proto";
import type { Client } from "@connectrpc/connect";
import { IntegrityError } from "./errors.js";
import type { Progress } from "./progress.js";
import { ContentHasher, hex } from "./rope-hash.js";

/** Where a download goes. */
export type Destination = { kind: "file"; path: string } | { kind: "stream"; stream: Writable; name: string };

/** What a download needs besides the path and destination. */
export interface DownloadContext {
  files: Client<typeof Files>;
  tenantId: string;
  progress?: Progress;
}

interface Sink {
  write(data: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Temp files being written; removed if the process is interrupted. */
const pendingTemps = new Set<string>();
let signalsHooked = false;

function trackTemp(path: string): void {
  pendingTemps.add(path);
  if (signalsHooked) return;
  signalsHooked = true;
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(sig, () => {
      for (const p of pendingTemps) rmSync(p, { force: true });
      process.exit(code);
    });
  }
}

async function fileSink(path: string): Promise<Sink> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.cacheroach-tmp`);
  const fh = await open(tmp, "wx", 0o644);
  trackTemp(tmp);
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await fh.close();
    }
  };
  return {
    async write(data) {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off);
        off += bytesWritten;
      }
    },
    async commit() {
      await close();
      await rename(tmp, path);
      pendingTemps.delete(tmp);
    },
    async abort() {
      await close().catch(() => {});
      await rm(tmp, { force: true });
      pendingTemps.delete(tmp);
    },
  };
}

/** The reader of stdout went away (e.g. `| head`): stop quietly. */
export class OutputClosedError extends Error {
  constructor() {
    super("output closed");
    this.name = "OutputClosedError";
  }
}

function streamSink(stream: Writable): Sink {
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  stream.on("error", onError);
  const check = () => {
    if (!failed) return;
    if ((failed as NodeJS.ErrnoException).code === "EPIPE") throw new OutputClosedError();
    throw failed;
  };
  return {
    async write(data) {
      check();
      if (!stream.write(data)) {
        try {
          await once(stream, "drain");
        } catch (err) {
          failed ??= err as Error;
        }
      }
      check();
    },
    async commit() {
      stream.off("error", onError);
      check();
    },
    async abort() {
      stream.off("error", onError);
    },
  };
}

/** Downloads `remotePath` to `dest`, verifying its content hash; returns the file's metadata. */
export async function downloadFile(
  remotePath: string,
  dest: Destination,
  ctx: DownloadContext,
): Promise<FileMeta> {
  const sink = dest.kind === "file" ? await fileSink(dest.path) : streamSink(dest.stream);
  try {
    let meta: FileMeta | undefined;
    let hasher: ContentHasher | undefined;
    let received = 0n;
    for await (const msg of ctx.files.read({ tenantId: ctx.tenantId, path: remotePath })) {
      if (!meta) {
        if (!msg.file)
          throw new IntegrityError(`${remotePath}: the server's first Read message carried no metadata`);
        meta = msg.file;
        if (meta.size > 0n && meta.chunkSize <= 0) {
          throw new IntegrityError(
            `${remotePath}: the server reported no chunk size; cannot verify the content`,
          );
        }
        hasher = new ContentHasher(meta.chunkSize > 0 ? meta.chunkSize : 1);
        ctx.progress?.addTotal(Number(meta.size));
      }
      if (msg.data.length === 0) continue;
      if (msg.offset !== received) {
        throw new IntegrityError(
          `${remotePath}: expected data at offset ${received}, got offset ${msg.offset}`,
        );
      }
      hasher!.update(msg.data);
      received += BigInt(msg.data.length);
      if (received > meta.size)
        throw new IntegrityError(`${remotePath}: the server sent more than ${meta.size} bytes`);
      await sink.write(msg.data);
      ctx.progress?.add(msg.data.length);
    }
    if (!meta || !hasher) throw new IntegrityError(`${remotePath}: the server sent an empty Read stream`);
    if (received !== meta.size) {
      throw new IntegrityError(`${remotePath}: received ${received} of ${meta.size} bytes`);
    }
    const got = hasher.digest();
    if (!got.equals(Buffer.from(meta.contentHash))) {
      throw new IntegrityError(
        `${remotePath}: content hash mismatch: computed ${hex(got)}, server says ${hex(meta.contentHash)}` +
          (dest.kind === "file" ? "; nothing was written" : "; the output is corrupt"),
      );
    }
    await sink.commit();
    return meta;
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
