import { mkdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type FileMeta, Files } from "@cacheroach/proto";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { type Destination, downloadAll } from "../../lib/download-many.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { plural, table } from "../../lib/format.js";
import { shellWord } from "../../lib/invocation.js";
import { checkRemotePath, checkRemotePrefix, remoteBaseName, remotePathProblem } from "../../lib/paths.js";
import { createProgress, progressDefault } from "../../lib/progress.js";
import { hasFilesBelow } from "../../lib/remote-directory.js";
import { listRemote } from "../../lib/remote-tree.js";
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

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

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
Several remote paths need a directory. Existing local files are overwritten. The destination may also be given as the last argument when it is a relative path ("file get /a.txt /b.txt downloads/"); an absolute one needs -o.

-r downloads every file below each remote directory into the destination directory, keeping the tree layout (/dir/a/b.txt → <dest>/a/b.txt). --version N downloads an older version of one file (list them with "file versions").

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
      description: "Download a remote directory tree, keeping its layout",
      command: "<%= config.bin %> <%= command.id %> -r /site/ ./site-copy/",
    },
    {
      description: "Download version 2 of a file",
      command: "<%= config.bin %> <%= command.id %> --version 2 /docs/report.pdf -o report-v2.pdf",
    },
    {
      description: "Stream to another program",
      command: "<%= config.bin %> <%= command.id %> /logs/app.log -o - | grep ERROR",
    },
  ];

  static override strict = false;

  static override usage =
    "<%= command.id %> REMOTE-PATH... [LOCAL-DEST] [-o <path|dir|->] [-r] [--version <n>] [-t <tenant>] [-p <n>] [--[no-]progress] [--json]";

  static override args = {
    "remote-path": Args.string({ required: true, description: "Absolute remote file paths (one or more)" }),
  };

  static override flags = {
    tenant: tenantFlag,
    recursive: Flags.boolean({
      char: "r",
      summary: "Download every file below the remote directories, keeping the tree layout.",
      description:
        'Each argument is a remote directory; a file <dir>/<rel> is written to <destination>/<rel> (the directory\'s own name is not added, as with "file put -r"), creating local directories as needed.',
    }),
    version: Flags.integer({
      summary: "Download this version of the file (see `file versions`), not the latest.",
      min: 1,
    }),
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
    const args = [...this.positionals];
    let out = this.flags.out;
    let outTyped: "flag" | "last" | undefined = out === undefined ? undefined : "flag";
    // cp-like: a last argument that is not a remote path (relative) is the destination.
    if (args.length >= 2 && !args[args.length - 1]!.startsWith("/")) {
      const last = args.pop()!;
      if (out !== undefined) {
        throw new UserError(`two destinations: "${last}" and --out "${out}"`, ExitCode.usage, [
          "give the destination once, as the last argument or with -o",
        ]);
      }
      out = last;
      outTyped = "last";
    }
    const recursive = this.flags.recursive;
    await this.refuseMisreadArguments(args, out, outTyped);
    const version = this.flags.version;
    if (version !== undefined && (recursive || args.length !== 1)) {
      throw new UserError("--version takes exactly one remote file (and no -r)", ExitCode.usage, [
        "list the versions of a file: cacheroach file versions <path>",
      ]);
    }
    const toStdout = out === "-";
    if (toStdout && (args.length > 1 || recursive)) {
      throw new UserError("-o - (stdout) takes exactly one remote file", ExitCode.usage, [
        "download several files into a directory: -o <dir>/",
      ]);
    }
    if (toStdout && this.jsonEnabled()) {
      throw new UserError("--json cannot be combined with -o - (stdout carries the file)", ExitCode.usage);
    }
    for (const a of args) {
      if (recursive) checkRemotePrefix(a);
      else checkRemotePath(a);
    }
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);

    // Work out every destination before downloading anything.
    const remotes: string[] = [];
    const dests: Destination[] = [];
    if (toStdout) {
      remotes.push(checkRemotePath(args[0]!));
      dests.push({ kind: "stream", stream: process.stdout, name: "-" });
    } else if (recursive) {
      const target = resolve(out ?? ".");
      if ((await exists(target)) && !(await isDirectory(target))) {
        throw new UserError(`-r needs a directory to download into, and "${out}" is a file`, ExitCode.usage);
      }
      const seen = new Map<string, string>();
      for (const arg of args) {
        const prefix = checkRemotePrefix(arg);
        const root = prefix === "/" ? "" : prefix;
        let found = false;
        for await (const page of listRemote({ files, tenantId }, root)) {
          for (const f of page) {
            found = true;
            const rel = f.path === root ? remoteBaseName(f.path) : f.path.slice(root.length + 1);
            const path = join(target, ...rel.split("/"));
            const prev = seen.get(path);
            if (prev !== undefined) {
              throw new UserError(`${prev} and ${f.path} would both be written to ${path}`, ExitCode.usage, [
                "download them in separate commands into different directories",
              ]);
            }
            seen.set(path, f.path);
            remotes.push(f.path);
            dests.push({ kind: "file", path });
          }
        }
        if (!found) {
          const problem = await this.tenantProblem(tenantId);
          if (problem) throw problem;
          throw new UserError(`no such path: nothing is stored at or below ${arg}`, ExitCode.notFound);
        }
      }
      // Files below and sub-directories of the same names cannot both exist locally.
      for (const p of seen.keys()) {
        for (let d = dirname(p); d.length > target.length; d = dirname(d)) {
          if (seen.has(d)) {
            throw new UserError(
              `${seen.get(d)} is a file and also a directory of ${seen.get(p)}`,
              ExitCode.usage,
            );
          }
        }
      }
      const dirs = new Set([...seen.keys()].map((p) => dirname(p)));
      for (const d of dirs) await mkdir(d, { recursive: true });
    } else {
      remotes.push(...args.map((p) => checkRemotePath(p)));
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
            "download them separately with -o <file>, or keep the tree layout with -r",
          ]);
        }
        seen.set(path, r);
        dests.push({ kind: "file", path });
      }
      if (!intoDir && !(await isDirectory(resolve(target, "..")))) {
        throw new UserError(`the directory of --out "${target}" does not exist`, ExitCode.usage);
      }
    }

    const { server } = await this.loadCliConfig();
    const http = this.httpClient();
    const progress = createProgress(
      this.flags.progress,
      0,
      remotes.length === 1 ? (remotes[0] ?? "") : plural(remotes.length, "file"),
    );
    const items = this.itemResults<GetOk, GetFailed>(remotes.length);
    const ctx = {
      files,
      tenantId,
      server,
      http,
      progress,
      log: (msg: string) => this.verbose(msg),
      ...(version === undefined ? {} : { version: BigInt(version) }),
    };
    const record = async (i: number, outcome: FileMeta | Error): Promise<void> => {
      const remote = remotes[i]!;
      const dest = dests[i]!;
      const localPath = dest.kind === "file" ? dest.path : "-";
      if (!(outcome instanceof Error)) return items.ok(i, { status: "ok", localPath, ...fileJson(outcome) });
      if (outcome instanceof OutputClosedError)
        return items.ok(i, { status: "ok", localPath, path: remote } as GetOk);
      const directory = await this.explainDirectory(outcome, files, tenantId, remote, out, outTyped);
      const failure = directory
        ? { error: directory, described: directory }
        : await this.describeItemFailure(outcome, { tenant: tenantId, explainNotFound: true });
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
      await downloadAll(remotes, dests, ctx, this.flags.parallelism, record);
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
          `${failed} of ${plural(remotes.length, "file")} failed to download (first: ${describeError(first.failure?.error, { tenant: tenantId }).message})`,
          exit,
        ),
    );
  }

  /**
   * A `file get` command line for a hint: these remote paths, -r or not, and the destination as
   * typed (as the last argument, or with -o).
   */
  private retryLine(
    remotes: readonly string[],
    out: string | undefined,
    outTyped: "flag" | "last" | undefined,
    recursive: boolean,
  ): string {
    const words = ["cacheroach", "file", "get"];
    if (recursive) words.push("-r");
    if (this.flags.tenant !== undefined) words.push("-t", shellWord(this.flags.tenant));
    words.push(...remotes.map(shellWord));
    if (out !== undefined) words.push(...(outTyped === "last" ? [] : ["-o"]), shellWord(out));
    return words.join(" ");
  }

  /**
   * Arguments that cannot mean what they look like, refused with the command the user most likely
   * meant: an existing local directory (or file) as the last argument, which reads as a remote
   * path only because it is absolute (an absolute destination is given with -o), and a remote
   * directory ("/dir/") without -r.
   */
  private async refuseMisreadArguments(
    args: string[],
    out: string | undefined,
    outTyped: "flag" | "last" | undefined,
  ): Promise<void> {
    const recursive = this.flags.recursive;
    const last = args[args.length - 1]!;
    if (out === undefined && args.length >= 2 && last.startsWith("/") && (await exists(last))) {
      const what = (await isDirectory(last)) ? "an existing local directory" : "an existing local file";
      throw new UserError(
        `"${last}" is ${what}, but an absolute last argument reads as a remote path: give an absolute destination with -o`,
        ExitCode.usage,
        [
          this.retryLine(args.slice(0, -1), last, "flag", recursive),
          `if ${shellWord(last)} is a remote file, give the destination with -o (e.g. -o .)`,
        ],
      );
    }
    if (recursive) return;
    const dirs = args.filter((a) => a.endsWith("/") && a !== "/" && !remotePathProblem(a.slice(0, -1)));
    if (args.includes("/") || dirs.length > 0) {
      const dir = args.includes("/") ? "/" : dirs[0]!;
      const hints = [
        `to download everything below it, keeping the tree: ${this.retryLine(args, out, outTyped, true)}`,
      ];
      if (out === undefined && dir === last && args.length >= 2) {
        hints.push(
          `if ${dir} is a local directory: ${this.retryLine(args.slice(0, -1), last, "flag", false)}`,
        );
      }
      throw new UserError(
        `${dir} is a remote directory (it ends with "/"), and file get downloads files unless -r is given`,
        ExitCode.usage,
        hints,
      );
    }
  }

  /** A remote path that is not a file but has files below it: said so, with -r (else undefined). */
  private async explainDirectory(
    err: Error,
    files: Client<typeof Files>,
    tenantId: string,
    path: string,
    out: string | undefined,
    outTyped: "flag" | "last" | undefined,
  ): Promise<UserError | undefined> {
    if (ConnectError.from(err).code !== Code.NotFound) return undefined;
    if (!(await hasFilesBelow(files, tenantId, path))) return undefined;
    return new UserError(
      `${path} is a remote directory, not a file: file get downloads files unless -r is given`,
      ExitCode.usage,
      [
        `to download everything below it, keeping the tree: ${this.retryLine([`${path}/`], out, outTyped, true)}`,
      ],
      "is_directory",
    );
  }
}
