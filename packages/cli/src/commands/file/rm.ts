import { Files } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { mapLimit } from "../../lib/concurrency.js";
import { ensureConfirmable, requireConfirmation } from "../../lib/confirm.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { plural, table } from "../../lib/format.js";
import { shellWord } from "../../lib/invocation.js";
import type { ItemFailure } from "../../lib/item-results.js";
import { checkRemotePath, checkRemotePrefix, remotePathProblem } from "../../lib/paths.js";
import { hasFilesBelow } from "../../lib/remote-directory.js";
import { listRemote } from "../../lib/remote-tree.js";

/** One line of `file rm` output. */
export interface RmResult {
  path: string;
  status: "deleted" | "would delete" | "error";
  /** The version that was live and is now deleted (or would be, with --dry-run). */
  version?: number;
  error?: string;
  code?: string;
}

export default class FileRm extends BaseCommand<typeof FileRm> {
  static override summary = "Delete files (or, with -r, everything below directories).";

  static override description =
    `Deletes the live version of each path (a soft delete: the versions stay, listed by "file versions", until garbage collection removes them). Every path is attempted; each is reported as deleted (with the version that was live) or with its error. A path with no live file is an error for that path, and the command exits non-zero if any path failed.

With -r each argument is a remote directory, and every file below it is deleted (a directory with nothing below it is "no such path", exit 4). --dry-run lists what would be deleted and deletes nothing. Deleting the whole tenant ("file rm -r /") asks for confirmation on a terminal; --yes skips the question, and is required when there is no terminal (scripts).

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Delete one file", command: "<%= config.bin %> <%= command.id %> /docs/old.pdf" },
    {
      description: "Delete several files",
      command: "<%= config.bin %> <%= command.id %> /tmp/a.txt /tmp/b.txt",
    },
    {
      description: "See what deleting a directory tree would remove, then do it",
      command:
        "<%= config.bin %> <%= command.id %> -r --dry-run /tmp/ && <%= config.bin %> <%= command.id %> -r /tmp/",
    },
  ];

  static override strict = false;

  static override usage = "<%= command.id %> PATH... [-r] [--dry-run] [-y] [-p <n>] [-t <tenant>] [--json]";

  static override args = {
    path: Args.string({ required: true, description: "Absolute remote file paths, or directories with -r" }),
  };

  static override flags = {
    tenant: tenantFlag,
    recursive: Flags.boolean({ char: "r", summary: "Delete every file below the given directories." }),
    "dry-run": Flags.boolean({ char: "n", summary: "Only list what would be deleted." }),
    yes: Flags.boolean({
      char: "y",
      summary: "Do not ask for confirmation (needed only to delete everything: file rm -r /).",
    }),
    parallelism: Flags.integer({
      char: "p",
      summary: "How many deletes to run at once.",
      default: 8,
      min: 1,
      max: 64,
    }),
  };

  public async run(): Promise<RmResult[] | undefined> {
    const recursive = this.flags.recursive;
    if (!recursive) this.refuseDirectories();
    const args = this.positionals.map((p) => (recursive ? checkRemotePrefix(p) : checkRemotePath(p)));
    const dry = this.flags["dry-run"];
    // Everything in the tenant: asked (or --yes) before any server call and again once counted.
    const wholeTenant = recursive && !dry && args.includes("/");
    const retry = this.commandLine(this.positionals, false);
    if (wholeTenant) ensureConfirmable("delete every file of the tenant", this.flags.yes, retry);
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);
    // What to delete, with the version that is live now (known when listed).
    const targets: { path: string; version?: number }[] = [];
    if (recursive) {
      const seen = new Set<string>();
      for (const [i, prefix] of args.entries()) {
        const root = prefix === "/" ? "" : prefix;
        let found = false;
        for await (const page of listRemote({ files, tenantId }, root)) {
          for (const f of page) {
            // "/dir/" means what is below /dir, not a file named /dir.
            if (f.path === root && this.positionals[i]!.endsWith("/")) continue;
            found = true;
            if (seen.has(f.path)) continue;
            seen.add(f.path);
            targets.push({ path: f.path, version: Number(f.version) });
          }
        }
        if (!found) {
          const problem = await this.tenantProblem(tenantId);
          if (problem) throw problem;
          throw new UserError(
            `no such path: nothing is stored below ${this.positionals[i]}`,
            ExitCode.notFound,
          );
        }
      }
    } else {
      targets.push(...args.map((path) => ({ path })));
    }
    if (wholeTenant) {
      await requireConfirmation(
        `delete every file of tenant ${tenantId} (${plural(targets.length, "file")})`,
        this.flags.yes,
        retry,
      );
    }
    const items = this.itemResults<RmResult, RmResult>(targets.length);
    if (dry) {
      await mapLimit(
        targets.map((_, i) => i),
        this.flags.parallelism,
        async (i) => {
          const t = targets[i]!;
          try {
            // Listed files carry their version; named ones are looked up (and may not exist).
            const version =
              t.version ?? Number((await files.stat({ tenantId, path: t.path })).file?.version ?? 0);
            items.ok(i, { path: t.path, status: "would delete", version });
          } catch (e) {
            const failure = await this.itemFailure(e, files, tenantId, t.path);
            const r: RmResult = { path: t.path, status: "error", error: failure.described.message };
            if (failure.described.code) r.code = failure.described.code;
            items.fail(i, r, failure);
          }
        },
      );
    } else {
      await mapLimit(
        targets.map((_, i) => i),
        this.flags.parallelism,
        async (i) => {
          const path = targets[i]!.path;
          try {
            const res = await files.delete({ tenantId, path });
            items.ok(i, { path, status: "deleted", version: Number(res.version) });
          } catch (e) {
            const failure = await this.itemFailure(e, files, tenantId, path);
            const r: RmResult = { path, status: "error", error: failure.described.message };
            if (failure.described.code) r.code = failure.described.code;
            items.fail(i, r, failure);
          }
        },
      );
    }
    if (!this.jsonEnabled()) {
      const single = targets.length === 1 && !recursive ? items.first?.failure : undefined;
      if (single) throw single.described;
      this.log(
        table(items.results, [
          { header: "Path", get: (r) => r.path },
          {
            header: "Status",
            get: (r) =>
              r.status === "error" ? `error: ${r.error}` : `${r.status} (version ${r.version ?? "?"})`,
          },
        ]),
      );
      if (dry)
        this.logToStderr(`dry run: ${plural(targets.length, "file")} would be deleted; nothing was deleted`);
    }
    return items.finish(
      (failed, _first, exit) =>
        new UserError(`${failed} of ${plural(targets.length, "path")} could not be deleted`, exit),
    );
  }

  /** `file rm -r` with these paths (and --yes when `yes`), for hints. */
  private commandLine(paths: readonly string[], yes: boolean): string {
    const words = ["cacheroach", "file", "rm", "-r"];
    if (this.flags.tenant !== undefined) words.push("-t", shellWord(this.flags.tenant));
    words.push(...paths.map(shellWord));
    if (yes) words.push("--yes");
    return words.join(" ");
  }

  /** Paths ending with "/" without -r: directories, refused with the -r command line. */
  private refuseDirectories(): void {
    const dirs = this.positionals.filter(
      (p) => p === "/" || (p.endsWith("/") && remotePathProblem(p.slice(0, -1)) === undefined),
    );
    if (dirs.length === 0) return;
    throw new UserError(
      `${dirs.join(", ")} ${dirs.length === 1 ? "is a remote directory" : "are remote directories"} (ending with "/"), and file rm deletes files unless -r is given`,
      ExitCode.usage,
      [`to delete everything below: ${this.commandLine(this.positionals, dirs.includes("/"))}`],
    );
  }

  /**
   * The failure of one path: a path with no file but files below it is a directory (exit 2, the
   * -r command line); anything else as described by the base command.
   */
  private async itemFailure(
    err: unknown,
    files: Client<typeof Files>,
    tenantId: string,
    path: string,
  ): Promise<ItemFailure> {
    if (
      !this.flags.recursive &&
      ConnectError.from(err).code === Code.NotFound &&
      (await hasFilesBelow(files, tenantId, path))
    ) {
      const described = new UserError(
        `${path} is a remote directory, not a file: file rm deletes files unless -r is given`,
        ExitCode.usage,
        [`to delete everything below it: ${this.commandLine([`${path}/`], false)}`],
        "is_directory",
      );
      return { error: described, described };
    }
    return this.describeItemFailure(err, { tenant: tenantId, explainNotFound: true });
  }
}
