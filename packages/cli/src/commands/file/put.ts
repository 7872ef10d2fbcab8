import { type FileMeta, Uploads } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { planUploads, uploadBatch } from "../../lib/batch-upload.js";
import { mapLimit } from "../../lib/concurrency.js";
import { describeError, EXIT_CODES_HELP, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { formatBytes, table } from "../../lib/format.js";
import { defaultHashCacheDir, HASH_CACHE_ENV, HashCache } from "../../lib/hash-cache.js";
import { expandLocalArgs } from "../../lib/local-files.js";
import { checkRemoteDir } from "../../lib/paths.js";
import { createProgress, progressDefault } from "../../lib/progress.js";
import { uploadFile } from "../../lib/upload.js";

/** One line of `file put --json` output. */
export type PutResult = PutOk | PutFailed;
type PutOk = { status: "ok"; localPath: string } & FileJson;
type PutFailed = {
  status: "error";
  localPath: string;
  path: string;
  error: string;
  code: string | undefined;
};

export default class FilePut extends BaseCommand<typeof FilePut> {
  static override summary = "Upload local files (or, with -r, directories) into a remote directory.";

  static override description =
    `The remote directory must be absolute and end with "/". Each local file is stored as <remote-dir><file name>; with -r each local directory contributes every file below it as <remote-dir><path relative to that directory> (the directory's own name is not added, so "file put -r /backup/photos/ ~/photos" stores ~/photos/2024/a.jpg as /backup/photos/2024/a.jpg). Symbolic links to files are followed; links to directories, sockets and devices are skipped.

Every upload makes a new version of its path. Small files (up to 256 KiB) travel up to 256 in one call (Uploads.PutFiles), each succeeding or failing on its own; files of up to 1 MiB are sent in one call each; larger files are streamed from disk in chunk-aligned blocks, hashed locally (BLAKE3) and committed with the expected content hash, so the server refuses anything that arrived corrupted. A failed block is retried with the same upload state (the protocol is idempotent) before the file is reported as failed. Chunks the tenant already stores are not sent at all (the dedup-aware path, default; --no-dedup streams every byte instead), and a large file uploaded before and unchanged since is not even read again (--no-hash-cache reads it).

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
      description: "Create only: fail for files that already exist remotely",
      command: "<%= config.bin %> <%= command.id %> --no-clobber /releases/v1.2/ dist/app.tar.gz",
    },
  ];

  static override strict = false;

  static override usage =
    "<%= command.id %> REMOTE-DIR/ LOCAL... [-t <uuid>] [-r] [-p <n>] [--no-dedup] [--no-hash-cache] [--no-clobber] [--[no-]progress] [--json]";

  static override args = {
    "remote-dir": Args.string({
      required: true,
      description: 'Absolute remote directory ending with "/", e.g. /docs/',
    }),
    local: Args.string({
      required: true,
      description: "Local files, or directories with -r (one or more)",
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
    progress: Flags.boolean({
      allowNo: true,
      summary: "Show a progress bar on stderr (default: only when stderr is a terminal).",
      default: async () => progressDefault(),
    }),
  };

  public async run(): Promise<PutResult[] | undefined> {
    const [remoteDirArg, ...locals] = this.positionals;
    const remoteDir = checkRemoteDir(remoteDirArg ?? "");
    const { jobs, skipped } = await expandLocalArgs(remoteDir, locals, this.flags.recursive);
    for (const s of skipped) this.logToStderr(`skipped ${s} (not a regular file)`);
    if (jobs.length === 0) {
      this.logToStderr("nothing to upload: no files found");
      return [];
    }
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const uploads = await this.client(Uploads);
    const total = jobs.reduce((n, j) => n + j.size, 0);
    const progress = createProgress(
      this.flags.progress,
      total,
      jobs.length === 1 ? (jobs[0]?.remotePath ?? "") : `${jobs.length} files`,
    );
    const precondition = this.flags["no-clobber"]
      ? { kind: { case: "mustNotExist" as const, value: true } }
      : undefined;
    const items = this.itemResults<PutOk, PutFailed>(jobs.length);
    const ctx = {
      uploads,
      tenantId,
      precondition,
      progress,
      dedup: this.flags.dedup,
      hashCache: this.flags["hash-cache"] ? new HashCache(defaultHashCacheDir()) : undefined,
      log: (line: string) => this.verbose(line),
      retry: {
        onRetry: (attempt: number, err: unknown, delay: number) =>
          this.verbose(`attempt ${attempt} failed (${String(err)}); retrying in ${delay | 0} ms`),
      },
    };
    const record = async (index: number, outcome: FileMeta | Error) => {
      const job = jobs[index]!;
      if (!(outcome instanceof Error)) {
        items.ok(index, { status: "ok", localPath: job.localPath, ...fileJson(outcome) });
        return;
      }
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
      // Small files travel in batches (one call each); the rest one file per call.
      await mapLimit(planUploads(jobs), this.flags.parallelism, async (unit) => {
        if (unit.kind === "batch") {
          const outcomes = await uploadBatch(
            unit.indexes.map((i) => jobs[i]!),
            ctx,
          );
          for (const [k, o] of outcomes.entries()) await record(unit.indexes[k]!, o);
          return;
        }
        const outcome = await uploadFile(jobs[unit.index]!, ctx).catch((err: unknown) =>
          err instanceof Error ? err : new Error(String(err)),
        );
        await record(unit.index, outcome);
      });
    } finally {
      progress.stop();
    }
    const ok = items.succeeded;
    if (!this.jsonEnabled() && ok.length > 0) {
      this.log(
        table(ok, [
          { header: "Path", get: (r) => r.path },
          { header: "Size", get: (r) => String(r.size), right: true },
          { header: "Version", get: (r) => String(r.version), right: true },
        ]),
      );
      if (ok.length > 1) {
        this.logToStderr(`uploaded ${ok.length} files, ${formatBytes(ok.reduce((n, r) => n + r.size, 0))}`);
      }
    }
    return items.finish(
      (failed, first, exit) =>
        new UserError(
          `${failed} of ${jobs.length} files failed to upload (first: ${describeError(first.failure?.error, { tenant: tenantId }).message})`,
          exit,
        ),
    );
  }
}
