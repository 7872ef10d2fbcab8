import { statSync } from "node:fs";
import { mkdir, rmdir, stat, unlink, utimes } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type FileMeta, Files, FilesListBytes, Uploads } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { planUploads, uploadBatch } from "../../lib/batch-upload.js";
import { mapLimit } from "../../lib/concurrency.js";
import { downloadAll } from "../../lib/download-many.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { remoteMtimeMs } from "../../lib/file-times.js";
import { formatBytes, plural } from "../../lib/format.js";
import { defaultHashCacheDir, HashCache } from "../../lib/hash-cache.js";
import { shellWord } from "../../lib/invocation.js";
import { walkLocal } from "../../lib/local-files.js";
import { checkRemoteDir } from "../../lib/paths.js";
import { createProgress, progressDefault } from "../../lib/progress.js";
import { fastLister, remoteFilesBelow } from "../../lib/remote-tree.js";
import { planDownload, planUpload, type SyncItem } from "../../lib/sync-plan.js";
import { isUnchanged, type UploadJob, uploadFile } from "../../lib/upload.js";

/** One line of `file sync --json`: every file considered, and what happened to it. */
export interface SyncResult {
  path: string;
  localPath: string;
  action: SyncItem["action"];
  reason?: string;
  /** "ok", "planned" (--dry-run), or "error". */
  status: "ok" | "planned" | "error";
  version?: number;
  size?: number;
  error?: string;
  code?: string;
}

export default class FileSync extends BaseCommand<typeof FileSync> {
  static override summary = "Make a remote directory match a local one, or a local one match a remote one.";

  static override description =
    `file sync LOCAL-DIR REMOTE-DIR/ uploads what is new or changed below LOCAL-DIR; file sync REMOTE-DIR/ LOCAL-DIR downloads what is new or changed below REMOTE-DIR. The remote directory is the argument that is absolute and ends with "/" (write a local absolute directory without the trailing slash). The tree layout is kept: LOCAL-DIR/a/b.txt ↔ REMOTE-DIR/a/b.txt.

How changes are found, without a call per file: the remote directory is listed once (sizes, content hashes, and the "mtime" metadata that uploads record) and the local tree is walked once (size and modification time). A file with the same size and modification time (to the millisecond) is unchanged and not read. When only the time differs (or with --checksum, always), the content hash decides: small files are read and hashed, large ones come from the hash cache; a large file not in the cache is compared while it is uploaded (nothing is written if it is the same) or hashed before a download. Uploads take the dedup path (only chunks the tenant lacks are sent); downloads verify every file's content hash and get the remote modification time.

A remote source directory must hold files: one under which nothing is stored is an error ("no such path", exit 4), never an empty source (which --delete would make an empty local directory of).

--delete also removes what the source does not have (remote files on upload; local files on download, and the local directories that this leaves empty). --dry-run prints the plan and changes nothing. Output lists what was transferred or deleted, one line each; --json lists every file with its action.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Back up a directory (only what changed is uploaded)",
      command: "<%= config.bin %> <%= command.id %> ./photos /backup/photos/",
    },
    {
      description: "Mirror exactly, removing remote files deleted locally; look first",
      command:
        "<%= config.bin %> <%= command.id %> --delete --dry-run ./site /www/ && <%= config.bin %> <%= command.id %> --delete ./site /www/",
    },
    {
      description: "Restore a remote directory into a local one",
      command: "<%= config.bin %> <%= command.id %> /backup/photos/ ./photos-restored",
    },
  ];

  static override usage =
    "<%= command.id %> LOCAL-DIR REMOTE-DIR/ | REMOTE-DIR/ LOCAL-DIR [--delete] [--dry-run] [--checksum] [-p <n>] [-t <tenant>] [--[no-]progress] [--json]";

  static override args = {
    source: Args.string({
      required: true,
      description: "Local directory, or remote directory ending with /",
    }),
    destination: Args.string({
      required: true,
      description: "Remote directory ending with /, or local directory",
    }),
  };

  static override flags = {
    tenant: tenantFlag,
    delete: Flags.boolean({ summary: "Delete files the source does not have from the destination." }),
    "dry-run": Flags.boolean({ char: "n", summary: "Print what would be done; change nothing." }),
    checksum: Flags.boolean({
      summary: "Compare the content of every file of the same size, not its modification time.",
    }),
    parallelism: Flags.integer({
      char: "p",
      summary: "How many files (or batches of small files) to transfer at once.",
      default: 4,
      min: 1,
      max: 64,
    }),
    "hash-cache": Flags.boolean({
      allowNo: true,
      default: true,
      summary: "Use the hash cache of large files (see file put --help).",
    }),
    progress: Flags.boolean({
      allowNo: true,
      summary: "Show a progress bar on stderr (default: only when stderr is a terminal).",
      default: async () => progressDefault(),
    }),
  };

  public async run(): Promise<SyncResult[] | undefined> {
    const { source, destination } = this.args;
    const isRemote = (a: string) => a.startsWith("/") && a.endsWith("/");
    if (isRemote(source) === isRemote(destination)) {
      throw new UserError(
        isRemote(source)
          ? `both "${source}" and "${destination}" look like remote directories`
          : `neither "${source}" nor "${destination}" is a remote directory (absolute, ending with "/")`,
        ExitCode.usage,
        [
          ...meantSync(source, destination),
          "upload: cacheroach file sync <local-dir> </remote/dir/>",
          "download: cacheroach file sync </remote/dir/> <local-dir>",
          'write an absolute local directory without the trailing "/"',
        ],
      );
    }
    const upload = isRemote(destination);
    const remoteDir = checkRemoteDir(upload ? destination : source, "file sync", "");
    const localDir = resolve(upload ? source : destination);
    const localExists = await stat(localDir).then(
      (s) => s.isDirectory(),
      () => undefined,
    );
    if (localExists === false) throw new UserError(`"${localDir}" is not a directory`, ExitCode.usage);
    if (upload && localExists === undefined) {
      throw new UserError(`local directory "${localDir}" does not exist`, ExitCode.usage);
    }
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const lister = fastLister(await this.client(FilesListBytes));
    const [remotes, local] = await Promise.all([
      remoteFilesBelow({ files: lister, tenantId }, remoteDir).catch(async (err) => {
        throw await this.explainNotFound(err, tenantId);
      }),
      localExists ? walkLocal(localDir) : Promise.resolve({ files: [], skipped: [] }),
    ]);
    if (!upload && remotes.size === 0) {
      // Directories exist only as prefixes of files: an empty listing is a mistyped or missing
      // directory, and with --delete it would have emptied the local directory.
      throw (
        (await this.tenantProblem(tenantId)) ??
        new UserError(`no such path: nothing is stored below ${remoteDir}`, ExitCode.notFound, [
          `list what there is: cacheroach file ls ${parentDir(remoteDir)}`,
        ])
      );
    }
    for (const s of local.skipped) this.verbose(`skipped ${s} (not a regular file)`);
    const hashCache = this.flags["hash-cache"] ? new HashCache(defaultHashCacheDir()) : undefined;
    const opts = {
      checksum: this.flags.checksum,
      delete: this.flags.delete,
      hashCache,
      parallelism: 8,
    };
    const plan = upload
      ? await planUpload(local.files, remotes, opts)
      : await planDownload(remotes, local.files, opts);
    const results: SyncResult[] = plan.map((item) => ({
      path: remoteDir + item.rel,
      localPath: item.local?.localPath ?? join(localDir, ...item.rel.split("/")),
      action: item.action,
      ...(item.reason ? { reason: item.reason } : {}),
      status: "planned",
    }));
    const dry = this.flags["dry-run"];
    const work = plan.map((_, i) => i).filter((i) => plan[i]!.action !== "unchanged");
    if (!dry) {
      if (upload) await this.runUploads(plan, results, work, tenantId);
      else await this.runDownloads(plan, results, work, tenantId);
      await this.runDeletes(plan, results, work, tenantId, upload);
      if (!upload) await removeEmptiedDirs(localDir, results, (line) => this.verbose(line));
      for (const [i, item] of plan.entries()) {
        if (item.action === "unchanged") {
          results[i]!.status = "ok";
          if (item.touch) await this.setLocalTime(results[i]!.localPath, item.remote!);
        }
      }
    }
    // An upload compared while sending that turned out the same wrote nothing: unchanged.
    const same = (r: SyncResult) => r.action === "unchanged" || r.reason === "same";
    const done = (a: SyncItem["action"]) =>
      results.filter((r) => r.action === a && !same(r) && r.status === (dry ? "planned" : "ok"));
    if (!this.jsonEnabled()) {
      for (const i of work) {
        const r = results[i]!;
        if (r.status === "error" || same(r)) continue;
        const verb = dry ? `would ${r.action}` : r.action === "delete" ? "deleted" : `${r.action}ed`;
        const where = r.action === "delete" && !upload ? r.localPath : r.path;
        this.log(`${verb} ${where}${r.reason ? ` (${r.reason})` : ""}`);
      }
    }
    const moved = done(upload ? "upload" : "download");
    const bytes = moved.reduce((n, r) => n + (r.size ?? 0), 0);
    const unchanged = results.filter(same).length;
    const deleted = done("delete").length;
    this.logToStderr(
      dry
        ? `dry run: ${moved.length} to ${upload ? "upload" : "download"}, ${unchanged} unchanged, ${deleted} to delete; nothing was changed`
        : `${moved.length} ${upload ? "uploaded" : "downloaded"} (${formatBytes(bytes)}), ${unchanged} unchanged, ${deleted} deleted`,
    );
    const failed = results.filter((r) => r.status === "error");
    if (failed.length === 0) return results;
    const exit = this.firstExit ?? ExitCode.failure;
    if (this.jsonEnabled()) {
      this.logJson(results);
      process.exitCode = exit;
      return undefined;
    }
    const first = failed[0]!;
    throw new UserError(
      `${failed.length} of ${plural(work.length, "file")} failed to sync (first: ${first.path}: ${first.error})`,
      exit,
    );
  }

  private firstExit: number | undefined;

  private async fail(result: SyncResult, err: unknown, tenantId: string): Promise<void> {
    const failure = await this.describeItemFailure(err, { tenant: tenantId });
    result.status = "error";
    result.error = failure.described.message;
    if (failure.described.code) result.code = failure.described.code;
    this.firstExit ??= failure.described.exit;
    this.logToStderr(`failed: ${result.path}: ${failure.described.message}`);
  }

  private async runUploads(plan: SyncItem[], results: SyncResult[], work: number[], tenantId: string) {
    const indexes = work.filter((i) => plan[i]!.action === "upload");
    if (indexes.length === 0) return;
    const jobs: UploadJob[] = indexes.map((i) => {
      const item = plan[i]!;
      const job: UploadJob = {
        localPath: item.local!.localPath,
        remotePath: results[i]!.path,
        size: item.local!.size,
        mtimeMs: item.local!.mtimeMs,
      };
      if (item.compareOnUpload && item.remote) job.remote = item.remote;
      return job;
    });
    const progress = createProgress(
      this.flags.progress,
      jobs.reduce((n, j) => n + j.size, 0),
      plural(jobs.length, "file"),
    );
    const ctx = {
      uploads: await this.client(Uploads),
      tenantId,
      progress,
      dedup: true,
      chunkBodies: await this.chunkBodies(),
      hashCache: this.flags["hash-cache"] ? new HashCache(defaultHashCacheDir()) : undefined,
      log: (line: string) => this.verbose(line),
    };
    const record = async (k: number, outcome: FileMeta | Error) => {
      const result = results[indexes[k]!]!;
      if (outcome instanceof Error) return this.fail(result, outcome, tenantId);
      result.status = "ok";
      result.version = Number(outcome.version);
      result.size = Number(outcome.size);
      if (isUnchanged(jobs[k]!, outcome)) result.reason = "same";
    };
    try {
      await mapLimit(planUploads(jobs), this.flags.parallelism, async (unit) => {
        if (unit.kind === "batch") {
          const outcomes = await uploadBatch(
            unit.indexes.map((k) => jobs[k]!),
            ctx,
          );
          for (const [n, o] of outcomes.entries()) await record(unit.indexes[n]!, o);
          return;
        }
        const job = jobs[unit.index]!;
        await record(unit.index, await uploadFile(job, ctx).catch(asError));
      });
    } finally {
      progress.stop();
    }
  }

  private async runDownloads(plan: SyncItem[], results: SyncResult[], work: number[], tenantId: string) {
    const indexes = work.filter((i) => plan[i]!.action === "download");
    if (indexes.length === 0) return;
    const dirs = new Set(indexes.map((i) => dirname(results[i]!.localPath)));
    for (const d of dirs) await mkdir(d, { recursive: true });
    const { server } = await this.loadCliConfig();
    const progress = createProgress(this.flags.progress, 0, plural(indexes.length, "file"));
    const ctx = {
      files: await this.client(Files),
      tenantId,
      server,
      http: this.httpClient(),
      progress,
      log: (msg: string) => this.verbose(msg),
    };
    try {
      await downloadAll(
        indexes.map((i) => results[i]!.path),
        indexes.map((i) => ({ kind: "file" as const, path: results[i]!.localPath })),
        ctx,
        this.flags.parallelism,
        async (k, outcome) => {
          const result = results[indexes[k]!]!;
          if (outcome instanceof Error) return this.fail(result, outcome, tenantId);
          result.status = "ok";
          result.version = Number(outcome.version);
          result.size = Number(outcome.size);
          await this.setLocalTime(result.localPath, outcome);
        },
      );
    } finally {
      progress.stop();
    }
  }

  private async runDeletes(
    plan: SyncItem[],
    results: SyncResult[],
    work: number[],
    tenantId: string,
    upload: boolean,
  ) {
    const indexes = work.filter((i) => plan[i]!.action === "delete");
    if (indexes.length === 0) return;
    const files = upload ? await this.client(Files) : undefined;
    await mapLimit(indexes, this.flags.parallelism, async (i) => {
      const result = results[i]!;
      try {
        if (files) {
          // Only the version listed: a file written meanwhile is not deleted.
          const remote = plan[i]!.remote!;
          const res = await files.delete({
            tenantId,
            path: result.path,
            precondition: { kind: { case: "version", value: remote.version } },
          });
          result.version = Number(res.version);
        } else {
          await unlink(result.localPath);
        }
        result.status = "ok";
      } catch (err) {
        await this.fail(result, err, tenantId);
      }
    });
  }

  /** Gives a local file the remote file's modification time, so the next sync need not read it. */
  private async setLocalTime(path: string, remote: FileMeta): Promise<void> {
    const t = new Date(remoteMtimeMs(remote));
    await utimes(path, t, t).catch((err: unknown) =>
      this.verbose(`cannot set the time of ${path}: ${String(err)}`),
    );
  }
}

/**
 * After local deletes: removes the directories below `root` that held a deleted file and are now
 * empty, deepest first, and their parents that this leaves empty. Directories that were empty
 * before, or that hold anything else, stay.
 */
async function removeEmptiedDirs(root: string, results: SyncResult[], log: (line: string) => void) {
  const candidates = new Set<string>();
  for (const r of results) {
    if (r.action !== "delete" || r.status !== "ok") continue;
    for (let d = dirname(r.localPath); d.length > root.length && d.startsWith(root); d = dirname(d)) {
      candidates.add(d);
    }
  }
  // Deeper paths are longer: a child is tried before its parent.
  for (const dir of [...candidates].sort((a, b) => b.length - a.length)) {
    await rmdir(dir).then(
      () => log(`removed empty directory ${dir}`),
      () => {}, // not empty (or already gone): it stays
    );
  }
}

/**
 * The command the user most likely meant when neither or both arguments look remote: a local
 * directory that exists is the local side (an absolute one written with its "/" dropped), and the
 * other, made absolute and ending with "/", the remote one.
 */
function meantSync(source: string, destination: string): string[] {
  const isLocalDir = (a: string) => statSync(a, { throwIfNoEntry: false })?.isDirectory() === true;
  const asRemote = (a: string) => {
    const abs = a.startsWith("/") ? a : `/${a}`;
    return abs.endsWith("/") ? abs : `${abs}/`;
  };
  const asLocal = (a: string) => (a.length > 1 && a.endsWith("/") ? a.slice(0, -1) : a);
  const meant = (words: string[]) => [`did you mean: cacheroach file sync ${words.map(shellWord).join(" ")}`];
  if (isLocalDir(source) && !isLocalDir(destination)) return meant([asLocal(source), asRemote(destination)]);
  if (isLocalDir(destination) && !isLocalDir(source)) return meant([asRemote(source), asLocal(destination)]);
  // Neither exists locally: the absolute one is the remote directory.
  if (destination.startsWith("/") && !source.startsWith("/")) return meant([source, asRemote(destination)]);
  if (source.startsWith("/") && !destination.startsWith("/")) return meant([asRemote(source), destination]);
  return [];
}

/** "/a/" for "/a/b/"; "/" for "/a/" and "/". */
function parentDir(dir: string): string {
  const i = dir.lastIndexOf("/", dir.length - 2);
  return i <= 0 ? "/" : dir.slice(0, i + 1);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
