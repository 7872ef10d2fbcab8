/** Expanding `file put` arguments (files and directories) into upload jobs. */
import type { Stats } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, join, relative, sep } from "node:path";
import { ExitCode, UserError } from "./errors.js";
import { remotePathProblem } from "./paths.js";
import type { UploadJob } from "./upload.js";

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

async function walk(root: string, dir: string, out: LocalEntry[], skipped: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // The stats of a directory's files at once (one by one, a tree of 10,000 files took 4× longer).
  const stats = await Promise.all(
    entries.map(async (e): Promise<Stats | undefined> => {
      if (e.isDirectory()) return undefined;
      const full = join(dir, e.name);
      if (e.isFile()) return stat(full);
      if (!e.isSymbolicLink()) return undefined;
      const st = await stat(full).catch(() => undefined);
      return st?.isDirectory() ? undefined : st; // never follow directory links (loops)
    }),
  );
  for (const [i, e] of entries.entries()) {
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      await walk(root, full, out, skipped);
      continue;
    }
    const st = stats[i];
    if (!st?.isFile()) {
      skipped.push(full);
      continue;
    }
    const rel = relative(root, full).split(sep).join("/");
    out.push({ localPath: full, rel, size: st.size, mtimeMs: st.mtimeMs });
  }
}

/**
 * Every regular file below local directory `root` (following links to files, never to
 * directories), and what was skipped (sockets, devices, links to directories).
 */
export async function walkLocal(root: string): Promise<{ files: LocalEntry[]; skipped: string[] }> {
  const files: LocalEntry[] = [];
  const skipped: string[] = [];
  await walk(root, root, files, skipped);
  return { files, skipped };
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
