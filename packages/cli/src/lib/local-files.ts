/** Expanding `file put` arguments (files and directories) into upload jobs. */
import { stat } from "node:fs/promises";
import { basename, normalize, sep } from "node:path";
import { Worker } from "node:worker_threads";
import { ExitCode, UserError } from "./errors.js";
import { remotePathProblem } from "./paths.js";
import type { UploadJob } from "./upload.js";
import type { WalkReply } from "./walk-thread.js";
import { nothingFound, openDir, type WalkFound, type WalkFrame, walkStep } from "./walk-tree.js";

/** The outcome of expanding the arguments. */
export interface Expansion {
  jobs: UploadJob[];
  /** Things skipped (symlinked directories, sockets, …), for a warning. */
  skipped: string[];
}

/** A regular file found below a local directory. */
export interface LocalEntry {
  localPath: string;
  /** Its path relative to the directory walked, with "/" separators. */
  rel: string;
  size: number;
  mtimeMs: number;
}

/** Lets pending I/O (an RPC the caller started alongside the walk) run between directories. */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * How long the calling thread walks before it hands the rest of the tree to a worker thread. A
 * worker takes about 50 ms to start, so small trees are walked here; a large one is walked on
 * another core while this thread takes in the listing it is compared with (a 10 000-file tree:
 * 130-240 ms of stat calls).
 */
const HAND_OVER_MS = 25;

// The worker entry sits next to this module in dist/. (Run from the TypeScript sources, e.g. under
// tsx, the worker cannot load and the walk goes on in the calling thread.)
const THREAD_URL = new URL("./walk-thread.js", import.meta.url);

/**
 * Every regular file below local directory `root` (following links to files, never to
 * directories), and what was skipped (sockets, devices, links to directories). One directory at a
 * time with synchronous calls, yielding between directories: for small files the thread-pool round
 * trip of each `fs.promises.stat` cost more than the stat itself. After {@link HAND_OVER_MS} the
 * rest goes to a worker thread (`thread: false`: never; `threaded` in the answer says whether it
 * did).
 */
export async function walkLocal(
  root: string,
  opts: { thread?: boolean; handOverMs?: number } = {},
): Promise<{ files: LocalEntry[]; skipped: string[]; threaded: boolean }> {
  let dir = normalize(root);
  if (dir.length > 1 && dir.endsWith(sep)) dir = dir.slice(0, -1);
  const stack: WalkFrame[] = [openDir(dir, "")];
  const found = nothingFound();
  const started = performance.now();
  let rest: WalkFound | undefined;
  let threadFailed = opts.thread === false;
  while (stack.length > 0) {
    if (!threadFailed && performance.now() - started > (opts.handOverMs ?? HAND_OVER_MS)) {
      rest = await walkInThread(stack);
      if (rest) break;
      threadFailed = true; // no worker: walk on here
    }
    walkStep(stack, found);
    await yieldToIo();
  }
  const prefix = dir === "." ? "" : dir === sep ? sep : dir + sep;
  const files: LocalEntry[] = [];
  for (const part of rest ? [found, rest] : [found]) {
    for (let i = 0; i < part.rels.length; i++) {
      const rel = part.rels[i]!;
      files.push({
        localPath: prefix + (sep === "/" ? rel : rel.replaceAll("/", sep)),
        rel,
        size: part.sizes[i]!,
        mtimeMs: part.mtimes[i]!,
      });
    }
  }
  const skipped = rest ? [...found.skipped, ...rest.skipped] : found.skipped;
  return { files, skipped, threaded: rest !== undefined };
}

/**
 * Finishes the walk of `stack` in a worker thread: what it found, or undefined when no worker
 * could run it (the caller walks on from `stack`, which is left as it was). A file system error of
 * the walk is thrown as the walk in this thread would have thrown it.
 */
function walkInThread(stack: WalkFrame[]): Promise<WalkFound | undefined> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(THREAD_URL, { workerData: { stack } });
    } catch {
      resolve(undefined);
      return;
    }
    let answered = false;
    worker.once("message", (reply: WalkReply) => {
      answered = true;
      if ("found" in reply) {
        resolve(reply.found);
        return;
      }
      reject(Object.assign(new Error(reply.error.message), reply.error));
    });
    worker.once("error", () => {
      if (!answered) resolve(undefined);
    });
    worker.once("exit", () => {
      if (!answered) resolve(undefined);
    });
  });
}

/**
 * Expands local arguments: a file becomes `remoteDir + basename`; with `recursive`, a directory
 * contributes every regular file below it as `remoteDir + path relative to that directory`.
 * Everything is checked before anything is uploaded: missing files, directories without
 * `recursive`, invalid or duplicate remote names are usage errors.
 */
export async function expandLocalArgs(
  remoteDir: string,
  locals: string[],
  recursive: boolean,
): Promise<Expansion> {
  const out: Expansion = { jobs: [], skipped: [] };
  for (const local of locals) {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(local);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new UserError(`local file "${local}" does not exist`, ExitCode.usage);
      throw new UserError(`cannot read "${local}": ${(err as Error).message}`, ExitCode.usage);
    }
    if (st.isDirectory()) {
      if (!recursive) {
        throw new UserError(`"${local}" is a directory`, ExitCode.usage, [
          `add -r to upload the files below it: cacheroach file put -r ${remoteDir} ${local}`,
        ]);
      }
      const below = await walkLocal(local);
      out.skipped.push(...below.skipped);
      for (const f of below.files) {
        out.jobs.push({
          localPath: f.localPath,
          remotePath: remoteDir + f.rel,
          size: f.size,
          mtimeMs: f.mtimeMs,
        });
      }
    } else if (st.isFile()) {
      out.jobs.push({
        localPath: local,
        remotePath: remoteDir + basename(local),
        size: st.size,
        mtimeMs: st.mtimeMs,
      });
    } else {
      throw new UserError(`"${local}" is not a regular file or directory`, ExitCode.usage);
    }
  }
  const seen = new Map<string, string>();
  for (const job of out.jobs) {
    const problem = remotePathProblem(job.remotePath);
    if (problem) {
      throw new UserError(`cannot upload "${job.localPath}": remote path "${job.remotePath}" ${problem}`);
    }
    const prev = seen.get(job.remotePath);
    if (prev !== undefined) {
      throw new UserError(
        `"${prev}" and "${job.localPath}" would both be uploaded to ${job.remotePath}`,
        ExitCode.usage,
        ["upload them in separate commands to different remote directories"],
      );
    }
    seen.set(job.remotePath, job.localPath);
  }
  return out;
}
