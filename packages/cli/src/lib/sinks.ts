/**
 * Where downloaded bytes go: a temp file next to the destination, renamed into place only once the
 * content verified (and continued, when a killed process left part of the same content behind), or
 * a stream such as stdout. Temp files are removed if the process is interrupted.
 */
import { rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { adoptLeftover, sweepLeftovers, tempPath, uniqueTempPath } from "./temp-files.js";

/** Receives the bytes of one download; commit() once they verified, abort() otherwise. */
export interface Sink {
  /** Resolves once `data` is written and its memory may be reused. */
  write(data: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Temp files being written; removed if the process is interrupted. */
const pendingTemps = new Set<string>();
let signalsHooked = false;

/** Registers a temp file to remove if the process is interrupted (until {@link untrackTemp}). */
export function trackTemp(path: string): void {
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

/** The temp file is gone or renamed into place. */
export function untrackTemp(path: string): void {
  pendingTemps.delete(path);
}

/** A sink writing a temp file next to `path`, renamed into place on commit. */
export interface FileSink extends Sink {
  /** Bytes already in the temp file: a dead process's partial download this one continues. */
  readonly resumedBytes: number;
  /** Reads those bytes, in order (to feed the content hash). */
  readResumed(onPiece: (piece: Buffer) => void | Promise<void>): Promise<void>;
}

/**
 * A temp file for downloading `path`. With `resume` (see temp-files.ts), a partial download of
 * the same target and content (at most `maxBytes` long) left by a killed process is continued
 * instead of started over.
 */
export async function fileSink(path: string, resume?: { tag: string; maxBytes: number }): Promise<FileSink> {
  await sweepLeftovers(dirname(path));
  const adopted = resume ? await adoptLeftover(path, resume.tag, resume.maxBytes) : undefined;
  const tmp = adopted?.path ?? (resume ? tempPath(path, resume.tag) : uniqueTempPath(path));
  const fh = await open(tmp, adopted ? "r+" : "wx", 0o644);
  trackTemp(tmp);
  let position = adopted?.size ?? 0;
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await fh.close();
    }
  };
  return {
    resumedBytes: position,
    async readResumed(onPiece) {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let at = 0; at < position; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, position - at), at);
        if (bytesRead === 0) throw new Error(`${tmp} is shorter than it was`);
        await onPiece(Buffer.from(buf.subarray(0, bytesRead)));
        at += bytesRead;
      }
    },
    async write(data) {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off, position);
        off += bytesWritten;
        position += bytesWritten;
      }
    },
    async commit() {
      await fh.truncate(position);
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

/** A sink writing to `stream`; an EPIPE (the reader went away) becomes {@link OutputClosedError}. */
export function streamSink(stream: Writable): Sink {
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
    // Resolves once the stream is done with `data` (its callback ran): the caller reuses the memory.
    async write(data) {
      check();
      await new Promise<void>((resolve) => {
        stream.write(data, (err) => {
          if (err) failed ??= err;
          resolve();
        });
      });
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
