import { mkdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type FileMeta, Files } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { downloadBatch, READ_BATCH } from "../../lib/batch-download.js";
import { mapLimit } from "../../lib/concurrency.js";
import { type Destination, downloadFile } from "../../lib/download.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { table } from "../../lib/format.js";
import { checkRemotePath, remoteBaseName } from "../../lib/paths.js";
import { createProgress, progressDefault } from "../../lib/progress.js";
import { OutputClosedError } from "../../lib/sinks.js";

/** One line of `file get --json` output. */
export type GetResult = GetOk | GetFailed;
type GetOk = { status: "ok"; localPath: string } & FileJson;
type GetFailed = {
  status: "error";
  localPath: string;
  path: string;
  error: string;
  code: string | undefined;
};

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export default class FileGet extends BaseCommand<typeof FileGet> {
  static override summary = "Download files, verifying their content hash.";

  static override description =
    `For each file, asks the server for a short-lived signed URL (Files.Retrieve, which also returns the file's metadata) and downloads it over plain HTTP, recomputing its BLAKE3 content hash on the fly. A file is written to a temporary file next to its destination and renamed into place only when the hash matches the server's; on a mismatch nothing is written and the command fails (exit 6).

When several files are requested, their metadata and the contents of those up to 1 MiB come 256 paths per call (Files.ReadMany), verified the same way; larger ones then download one by one as above, -p at a time.

A dropped connection is resumed where it stopped (Range, with If-Range on the file's ETag and a fresh URL pinned to the same version, so an overwrite meanwhile cannot corrupt the result); after 5 failed attempts in a row (a connection that delivered at least 1 MiB starts a new row) the file fails.

Destination (-o/--out):
  (none)        the current directory, under the file's own name
  <dir>         into that existing directory (or one given with a trailing "/", created if missing), under the file's own name
  <file>        exactly that file (one remote path only)
  -             standard output (one remote path only; the hash is still checked, and the command fails at the end if it does not match)
Several remote paths need a directory. Existing local files are overwritten.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Download into the current directory",
      command: "<%= config.bin %> <%= command.id %> /docs/report.pdf",
    },
    {
      description: "Download to a chosen file name",
      command: "<%= config.bin %> <%= command.id %> /docs/report.pdf -o ~/report-2026.pdf",
    },
    {
      description: "Download several files into a directory",
      command: "<%= config.bin %> <%= command.id %> /a.txt /b/c.txt -o ./downloads/",
    },
    {
      description: "Stream to another program",
      command: "<%= config.bin %> <%= command.id %> /logs/app.log -o - | grep ERROR",
    },
  ];

  static override strict = false;

  static override usage =
    "<%= command.id %> REMOTE-PATH... [-o <path|dir|->] [-t <uuid>] [-p <n>] [--[no-]progress] [--json]";

  static override args = {
    "remote-path": Args.string({ required: true, description: "Absolute remote file paths (one or more)" }),
  };

  static override flags = {
    tenant: tenantFlag,
    out: Flags.string({
      char: "o",
      summary: 'Destination file, directory, or "-" for stdout.',
      helpValue: "<path|dir|->",
    }),
    parallelism: Flags.integer({
      char: "p",
      summary: "How many files to download at once.",
      default: 4,
      min: 1,
      max: 64,
    }),
    progress: Flags.boolean({
      allowNo: true,
      summary: "Show a progress bar on stderr (default: only when stderr is a terminal).",
      default: async () => progressDefault(),
    }),
  };

  public async run(): Promise<GetResult[] | undefined> {
    const remotes = this.positionals.map((p) => checkRemotePath(p));
    const out = this.flags.out;
    const toStdout = out === "-";
    if (toStdout && remotes.length > 1) {
      throw new UserError("-o - (stdout) takes exactly one remote path", ExitCode.usage, [
        "download several files into a directory: -o <dir>/",
      ]);
    }
    if (toStdout && this.jsonEnabled()) {
      throw new UserError("--json cannot be combined with -o - (stdout carries the file)", ExitCode.usage);
    }

    // Work out every destination before downloading anything.
    const dests: Destination[] = [];
    if (toStdout) {
      dests.push({ kind: "stream", stream: process.stdout, name: "-" });
    } else {
      const target = out ?? ".";
      let intoDir = await isDirectory(target);
      if (!intoDir && (target.endsWith("/") || remotes.length > 1)) {
        if (!target.endsWith("/")) {
          throw new UserError(
            `--out "${target}" must be a directory when getting several files`,
            ExitCode.usage,
            [`create it first, or pass it with a trailing slash: -o ${target}/`],
          );
        }
        await mkdir(target, { recursive: true });
        intoDir = true;
      }
      const seen = new Map<string, string>();
      for (const r of remotes) {
        const path = intoDir ? resolve(join(target, remoteBaseName(r))) : resolve(target);
        const prev = seen.get(path);
        if (prev !== undefined) {
          throw new UserError(`${prev} and ${r} would both be written to ${path}`, ExitCode.usage, [
            "download them separately with -o <file>",
          ]);
        }
        seen.set(path, r);
        dests.push({ kind: "file", path });
      }
      if (!intoDir && !(await isDirectory(resolve(target, "..")))) {
        throw new UserError(`the directory of --out "${target}" does not exist`, ExitCode.usage);
      }
    }

    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);
    const { server } = await this.loadCliConfig();
    const http = this.httpClient();
    const progress = createProgress(
      this.flags.progress,
      0,
      remotes.length === 1 ? (remotes[0] ?? "") : `${remotes.length} files`,
    );
    const items = this.itemResults<GetOk, GetFailed>(remotes.length);
    const ctx = { files, tenantId, server, http, progress, log: (msg: string) => this.verbose(msg) };
    const record = async (i: number, outcome: FileMeta | Error): Promise<void> => {
      const remote = remotes[i]!;
      const dest = dests[i]!;
      const localPath = dest.kind === "file" ? dest.path : "-";
      if (!(outcome instanceof Error)) return items.ok(i, { status: "ok", localPath, ...fileJson(outcome) });
      if (outcome instanceof OutputClosedError)
        return items.ok(i, { status: "ok", localPath, path: remote } as GetOk);
      const failure = await this.describeItemFailure(outcome, { tenant: tenantId, explainNotFound: true });
      if (remotes.length === 1) throw failure.error;
      const error = failure.described;
      items.fail(
        i,
        { status: "error", localPath, path: remote, error: error.message, code: error.code },
        failure,
        `failed: ${remote}: ${error.message}`,
      );
    };
    try {
      if (remotes.length === 1 || toStdout) {
        await record(0, await downloadFile(remotes[0]!, dests[0]!, ctx).catch(asError));
      } else {
        // Several files: batches of paths per call, with the small files' contents in the answer.
        const batches: number[][] = [];
        for (let i = 0; i < remotes.length; i += READ_BATCH) {
          batches.push(remotes.slice(i, i + READ_BATCH).map((_, k) => i + k));
        }
        const large: number[] = [];
        await mapLimit(batches, this.flags.parallelism, async (batch) => {
          const outcomes = await downloadBatch(
            batch.map((i) => remotes[i]!),
            batch.map((i) => (dests[i] as { path: string }).path),
            ctx,
          );
          for (const [k, o] of outcomes.entries()) {
            if (o === "stream") large.push(batch[k]!);
            else await record(batch[k]!, o);
          }
        });
        // Files too large for an answer stream on their own, -p at a time.
        await mapLimit(large, this.flags.parallelism, async (i) => {
          await record(i, await downloadFile(remotes[i]!, dests[i]!, ctx).catch(asError));
        });
      }
    } finally {
      progress.stop();
    }
    if (toStdout) return undefined;
    const ok = items.succeeded;
    if (!this.jsonEnabled() && ok.length > 0) {
      this.log(
        table(ok, [
          { header: "Path", get: (r) => r.path },
          { header: "Local", get: (r) => r.localPath },
          { header: "Size", get: (r) => String(r.size), right: true },
          { header: "Version", get: (r) => String(r.version), right: true },
        ]),
      );
    }
    return items.finish(
      (failed, first, exit) =>
        new UserError(
          `${failed} of ${remotes.length} files failed to download (first: ${describeError(first.failure?.error, { tenant: tenantId }).message})`,
          exit,
        ),
    );
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
