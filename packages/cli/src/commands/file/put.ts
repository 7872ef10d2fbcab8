import { stat } from "node:fs/promises";
import { type FileMeta, Files, Uploads } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { planUploads, uploadBatch } from "../../lib/batch-upload.js";
import { mapLimit } from "../../lib/concurrency.js";
import { describeError, EXIT_CODES_HELP, ExitCode, serverErrorCode, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { formatBytes, plural, table } from "../../lib/format.js";
import { defaultHashCacheDir, HASH_CACHE_ENV, HashCache } from "../../lib/hash-cache.js";
import { shellWord } from "../../lib/invocation.js";
import { expandLocalArgs } from "../../lib/local-files.js";
import { checkRemoteDir, checkRemotePath } from "../../lib/paths.js";
import {
  type PreconditionInit,
  preconditionFailed,
  putPrecondition,
  satisfies,
} from "../../lib/preconditions.js";
import { createProgress, progressDefault } from "../../lib/progress.js";
import { localContentHash, remoteHeads } from "../../lib/remote-heads.js";
import { uploadStream } from "../../lib/stream-upload.js";
import { isUnchanged, sameAsRemote, type UploadJob, uploadFile } from "../../lib/upload.js";

/** The name standard input is stored under in a remote directory (`file put /x/ -` → /x/stdin). */
const STDIN_NAME = "stdin";

/** One line of `file put --json` output. */
export type PutResult = PutOk | PutFailed;
type PutOk = {
  status: "ok";
  localPath: string;
  /** True when the path already held this content and no version was written (see --always). */
  unchanged: boolean;
} & FileJson;
type PutFailed = {
  status: "error";
  localPath: string;
  path: string;
  error: string;
  code: string | undefined;
};

export default class FilePut extends BaseCommand<typeof FilePut> {
  static override summary =
    "Upload local files (or, with -r, directories) into a remote directory, or one file (or stdin) under a remote name.";

  static override description =
    `The remote directory must be absolute and end with "/". Each local file is stored as <remote-dir><file name>; with -r each local directory contributes every file below it as <remote-dir><path relative to that directory> (the directory's own name is not added, so "file put -r /backup/photos/ ~/photos" stores ~/photos/2024/a.jpg as /backup/photos/2024/a.jpg). Symbolic links to files are followed; links to directories, sockets and devices are skipped.

The first argument may instead name one remote file (no trailing "/"): "file put /docs/report-2026.pdf report.pdf" uploads report.pdf under that name, and "file put /logs/today.log -" uploads standard input (streamed, of any length: it is re-blocked into chunk-aligned transfers as it arrives). Standard input given with a remote directory ("file put /logs/ -") is stored as <remote-dir>stdin (here /logs/stdin), and the path it was stored under is printed.

A file whose remote path already holds the same content (same size and content hash) is reported as "unchanged" and no version is written; --always writes one anyway. Each version records the local file's modification time as its "mtime" metadata (used by "file sync").

Every other upload makes a new version of its path. Small files (up to 256 KiB) travel up to 256 in one call (Uploads.PutFiles), each succeeding or failing on its own; files of up to 1 MiB are sent in one call each; larger files are streamed from disk in chunk-aligned blocks, hashed locally (BLAKE3) and committed with the expected content hash, so the server refuses anything that arrived corrupted. A failed block is retried with the same upload state (the protocol is idempotent) before the file is reported as failed. Chunks the tenant already stores are not sent at all (the dedup-aware path, default; --no-dedup streams every byte instead), and a large file uploaded before and unchanged since is not even read again (--no-hash-cache reads it).

All arguments are checked before anything is uploaded. If some files fail the others are still uploaded, and the command exits non-zero.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Upload one file as /docs/report.pdf in the default tenant",
      command: "<%= config.bin %> <%= command.id %> /docs/ report.pdf",
    },
    {
      description: "Upload a directory tree, 8 files at a time, into another tenant",
      command:
        "<%= config.bin %> <%= command.id %> -r -p 8 -t 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a /site/ ./public",
    },
    {
      description: "Upload a file under another name",
      command: "<%= config.bin %> <%= command.id %> /docs/report-2026.pdf ./build/report.pdf",
    },
    {
      description: "Upload the output of a program (streamed from standard input)",
      command: "pg_dump mydb | <%= config.bin %> <%= command.id %> /backups/mydb.sql -",
    },
    {
      description: "Store standard input in a directory, as /inbox/stdin",
      command: "echo hello | <%= config.bin %> <%= command.id %> /inbox/ -",
    },
    {
      description: "Overwrite only if nobody wrote the file since version 4",
      command: "<%= config.bin %> <%= command.id %> --if-match 4 /config/app.json app.json",
    },
    {
      description: "Create only: fail for files that already exist remotely",
      command: "<%= config.bin %> <%= command.id %> --no-clobber /releases/v1.2/ dist/app.tar.gz",
    },
  ];

  static override strict = false;

  static override usage =
    "<%= command.id %> REMOTE-DIR/ LOCAL...|- | REMOTE-FILE LOCAL-FILE|- [-t <tenant>] [-r] [-p <n>] [--always] [--if-match <version|etag>] [--if-none-match] [--no-dedup] [--no-hash-cache] [--[no-]progress] [--json]";

  static override args = {
    "remote-dir": Args.string({
      required: true,
      description:
        'Absolute remote directory ending with "/", e.g. /docs/, or one remote file name, e.g. /docs/a.txt',
    }),
    local: Args.string({
      required: true,
      description: 'Local files, or directories with -r (one or more); "-" for standard input',
    }),
  };

  static override flags = {
    tenant: tenantFlag,
    recursive: Flags.boolean({
      char: "r",
      summary: "Upload the files below local directories.",
    }),
    parallelism: Flags.integer({
      char: "p",
      summary: "How many files to upload at once.",
      default: 4,
      min: 1,
      max: 64,
    }),
    dedup: Flags.boolean({
      allowNo: true,
      default: true,
      summary:
        "Send only chunks the tenant lacks (hash locally, ask the server first); --no-dedup streams every byte.",
      description:
        "On by default: re-uploads of content the tenant already stores send almost nothing, and new chunks go up in parallel calls. --no-dedup uses the plain streaming Transfer path (one block at a time).",
    }),
    "hash-cache": Flags.boolean({
      allowNo: true,
      default: true,
      summary: "Reuse the chunk hashes of unchanged large files uploaded before (dedup path).",
      description: `On by default: the chunk hashes of files over 1 MiB are kept in ${"$"}${HASH_CACHE_ENV} (default ~/.cache/cacheroach/chunk-hashes), keyed by device and inode, and trusted only while size, mtime and ctime are unchanged and the file had been unchanged for 2 s before it was hashed. An unchanged file is then not read at all; only chunks the tenant lacks are read and sent, and the server re-hashes those. --no-hash-cache reads and hashes every byte.`,
    }),
    "no-clobber": Flags.boolean({
      summary: "Only create: fail a file whose remote path already has a live version.",
    }),
    "if-none-match": Flags.boolean({
      summary: "The same as --no-clobber (HTTP's If-None-Match: *).",
    }),
    "if-match": Flags.string({
      summary: "Only overwrite if the live file is at this version, or holds this content (its ETag).",
      description:
        "Compare-and-swap for scripts: read a file's version (file ls -w, file versions) or ETag (its content hash, file versions --json), change it, and write it back with --if-match; if someone else wrote it meanwhile the upload fails with exit 5 and writes nothing. One file only.",
      helpValue: "<version|etag>",
    }),
    always: Flags.boolean({
      summary: "Write a new version even when the remote file already holds the same content.",
      description:
        "By default a file whose remote path already holds the same content (same size and content hash: small files are hashed, large ones come from the hash cache or are compared while uploading) is reported as unchanged and no version is written.",
    }),
    progress: Flags.boolean({
      allowNo: true,
      summary: "Show a progress bar on stderr (default: only when stderr is a terminal).",
      default: async () => progressDefault(),
    }),
  };

  public async run(): Promise<PutResult[] | undefined> {
    const [remoteArg = "", ...locals] = this.positionals;
    const precondition = putPrecondition(
      this.flags,
      remoteArg.startsWith("/") && !remoteArg.endsWith("/") ? remoteArg : undefined,
    );
    const fromStdin = locals.includes("-");
    let jobs: UploadJob[];
    let renamed = false;
    if (remoteArg.startsWith("/") && !remoteArg.endsWith("/")) {
      // A remote file name: exactly one local file (or "-") uploaded under that name.
      const remotePath = checkRemotePath(remoteArg);
      if (locals.length !== 1) {
        throw new UserError(
          `"${remoteArg}" names one remote file, so it takes one local file (got ${locals.length})`,
          ExitCode.usage,
          [
            `to upload into a directory, end it with "/": cacheroach file put ${remoteArg}/ ${locals.join(" ")}`,
          ],
        );
      }
      jobs = fromStdin
        ? [{ localPath: "-", remotePath, size: 0 }]
        : [await this.renamedJob(remotePath, locals[0]!)];
      renamed = true;
    } else {
      const remoteDir = checkRemoteDir(remoteArg, "file put", "<local>...", locals);
      if (fromStdin) {
        // Standard input has no name of its own: it is stored as <dir>stdin.
        if (locals.length !== 1) {
          throw new UserError(
            'standard input ("-") is uploaded on its own, not together with files',
            ExitCode.usage,
            [
              `upload it separately: cacheroach file put ${remoteDir}${STDIN_NAME} -`,
              `and the files: cacheroach file put ${remoteDir} ${locals
                .filter((l) => l !== "-")
                .map(shellWord)
                .join(" ")}`,
            ],
          );
        }
        jobs = [{ localPath: "-", remotePath: checkRemotePath(`${remoteDir}${STDIN_NAME}`), size: 0 }];
        renamed = true;
      } else {
        const expanded = await expandLocalArgs(remoteDir, locals, this.flags.recursive);
        for (const s of expanded.skipped) this.logToStderr(`skipped ${s} (not a regular file)`);
        jobs = expanded.jobs;
      }
    }
    if (jobs.length === 0) {
      this.logToStderr("nothing to upload: no files found");
      return [];
    }
    if (this.flags["if-match"] !== undefined && jobs.length !== 1) {
      throw new UserError(
        `--if-match applies to one file, and ${jobs.length} would be uploaded`,
        ExitCode.usage,
      );
    }
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const uploads = await this.client(Uploads);
    if (renamed) await this.refuseRemoteDirectory(tenantId, jobs[0]!.remotePath, locals[0]!);
    const hashCache = this.flags["hash-cache"] ? new HashCache(defaultHashCacheDir()) : undefined;
    const items = this.itemResults<PutOk, PutFailed>(jobs.length);
    const ok = (index: number, file: FileMeta, unchanged: boolean) =>
      items.ok(index, { status: "ok", localPath: jobs[index]!.localPath, unchanged, ...fileJson(file) });

    // Unless --always: what each path holds now, so identical content writes no new version.
    const pending = new Set(jobs.map((_, i) => i));
    const create = precondition?.kind?.case === "mustNotExist";
    if (!this.flags.always && !create) {
      const files = await this.client(Files);
      // A session that may write but not read (a drop box) cannot compare: it just uploads.
      const heads = await remoteHeads(
        files,
        tenantId,
        jobs.map((j) => j.remotePath),
      ).catch((err: unknown) => {
        if (ConnectError.from(err).code !== Code.PermissionDenied) throw err;
        this.verbose("no read access to compare with the remote files: uploading everything");
        return new Map<string, FileMeta>();
      });
      const head = heads.get(jobs[0]!.remotePath);
      // Standard input is compared once read (its length is unknown until then).
      if (fromStdin && head && satisfies(head, precondition)) jobs[0]!.remote = head;
      await mapLimit(fromStdin ? [] : [...jobs.keys()], this.flags.parallelism, async (i) => {
        const job = jobs[i]!;
        const head = heads.get(job.remotePath);
        if (!head || Number(head.size) !== job.size || !satisfies(head, precondition)) return;
        const local = await localContentHash(job.localPath, head.chunkSize, hashCache).catch(() => undefined);
        if (local === undefined)
          job.remote = head; // large: compared while it is uploaded
        else if (sameAsRemote(head, local, head.chunkSize)) {
          ok(i, head, true);
          pending.delete(i);
        }
      });
    }
    const todo = jobs.filter((_, i) => pending.has(i));
    const indexOf = new Map(jobs.map((j, i) => [j, i]));
    const total = todo.reduce((n, j) => n + j.size, 0);
    const progress = createProgress(
      this.flags.progress,
      total,
      jobs.length === 1 ? (jobs[0]?.remotePath ?? "") : plural(jobs.length, "file"),
    );
    const ctx = {
      uploads,
      tenantId,
      precondition,
      progress,
      dedup: this.flags.dedup,
      chunkBodies: await this.chunkBodies(),
      hashCache,
      log: (line: string) => this.verbose(line),
      retry: {
        onRetry: (attempt: number, err: unknown, delay: number) =>
          this.verbose(`attempt ${attempt} failed (${String(err)}); retrying in ${delay | 0} ms`),
      },
    };
    const record = async (job: UploadJob, result: FileMeta | Error) => {
      const index = indexOf.get(job)!;
      if (!(result instanceof Error)) {
        ok(index, result, isUnchanged(job, result));
        return;
      }
      const outcome = await this.explainPrecondition(
        result,
        tenantId,
        job.remotePath,
        precondition,
        jobs.length > 1,
      );
      if (jobs.length === 1) throw outcome;
      const failure = await this.describeItemFailure(outcome, { tenant: tenantId });
      const error = failure.described;
      items.fail(
        index,
        {
          status: "error",
          localPath: job.localPath,
          path: job.remotePath,
          error: error.message,
          code: error.code,
        },
        failure,
        `failed: ${job.localPath} → ${job.remotePath}: ${error.message}`,
      );
    };
    try {
      if (fromStdin) {
        const job = jobs[0]!;
        await record(job, await uploadStream(process.stdin, job, ctx).catch(asError));
      } else {
        // Small files travel in batches (one call each); the rest one file per call.
        await mapLimit(planUploads(todo), this.flags.parallelism, async (unit) => {
          if (unit.kind === "batch") {
            const batch = unit.indexes.map((i) => todo[i]!);
            const outcomes = await uploadBatch(batch, ctx);
            for (const [k, o] of outcomes.entries()) await record(batch[k]!, o);
            return;
          }
          const job = todo[unit.index]!;
          await record(job, await uploadFile(job, ctx).catch(asError));
        });
      }
    } finally {
      progress.stop();
    }
    const done = items.succeeded;
    if (!this.jsonEnabled() && done.length > 0) {
      this.log(
        table(done, [
          { header: "Path", get: (r) => r.path },
          { header: "Size", get: (r) => String(r.size), right: true },
          { header: "Version", get: (r) => String(r.version), right: true },
          { header: "Status", get: (r) => (r.unchanged ? "unchanged" : "written") },
        ]),
      );
      const same = done.filter((r) => r.unchanged).length;
      if (done.length > 1 || same > 0) {
        const written = done.filter((r) => !r.unchanged);
        this.logToStderr(
          `uploaded ${plural(written.length, "file")}, ${formatBytes(written.reduce((n, r) => n + r.size, 0))}` +
            (same > 0
              ? `; ${same} unchanged (same content as the live version; --always writes a new version)`
              : ""),
        );
      }
    }
    return items.finish(
      (failed, first, exit) =>
        new UserError(
          `${failed} of ${plural(jobs.length, "file")} failed to upload (first: ${describeError(first.failure?.error, { tenant: tenantId }).message})`,
          exit,
        ),
    );
  }

  /**
   * `file put /docs report.pdf` where /docs is a remote directory most likely meant "into /docs/":
   * refused with that hint rather than writing a file beside the directory. (A caller who may not
   * list the path is not stopped here.)
   */
  private async refuseRemoteDirectory(tenantId: string, remotePath: string, local: string): Promise<void> {
    const files = await this.client(Files);
    const page = await files.list({ tenantId, path: remotePath, pageSize: 2 }).catch(() => undefined);
    if (page?.files.some((f) => f.path.startsWith(`${remotePath}/`))) {
      throw new UserError(`${remotePath} is a remote directory, not a file name`, ExitCode.usage, [
        `upload into it with a trailing "/": cacheroach file put ${remotePath}/ ${local}`,
      ]);
    }
  }

  /**
   * A write the server refused for its precondition (--if-match, --no-clobber), explained for the
   * flag given, with what the path holds now; any other error as it is.
   */
  private async explainPrecondition(
    err: Error,
    tenantId: string,
    path: string,
    precondition: PreconditionInit | undefined,
    many: boolean,
  ): Promise<Error> {
    if (!precondition || ConnectError.from(err).code !== Code.FailedPrecondition) return err;
    if (serverErrorCode(err) !== undefined && serverErrorCode(err) !== "ERR_PRECONDITION_FAILED") return err;
    // What the path holds now, for one file (--if-match is one file only); a large --no-clobber
    // batch is not looked up file by file.
    const create = precondition.kind?.case === "mustNotExist";
    const head =
      create && many
        ? undefined
        : await (await this.client(Files))
            .stat({ tenantId, path })
            .then((r) => r.file)
            .catch(() => undefined);
    return preconditionFailed(path, this.flags, head);
  }

  /** The job of `file put /remote/name local`: one regular file, uploaded as `remotePath`. */
  private async renamedJob(remotePath: string, local: string): Promise<UploadJob> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(local);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new UserError(`local file "${local}" does not exist`, ExitCode.usage);
      }
      throw new UserError(`cannot read "${local}": ${(err as Error).message}`, ExitCode.usage);
    }
    if (st.isDirectory()) {
      throw new UserError(`"${local}" is a directory, and ${remotePath} names one file`, ExitCode.usage, [
        `upload the files below it into a directory: cacheroach file put -r ${remotePath}/ ${local}`,
      ]);
    }
    if (!st.isFile()) throw new UserError(`"${local}" is not a regular file`, ExitCode.usage);
    return { localPath: local, remotePath, size: st.size, mtimeMs: st.mtimeMs };
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
