import { Files } from "@cacheroach/proto";
import { Args } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, UserError } from "../../lib/errors.js";
import { table } from "../../lib/format.js";
import { checkRemotePath } from "../../lib/paths.js";

/** One line of `file rm` output. */
export interface RmResult {
  path: string;
  status: "deleted" | "error";
  /** The version that was live and is now deleted. */
  version?: number;
  error?: string;
  code?: string;
}

export default class FileRm extends BaseCommand<typeof FileRm> {
  static override summary = "Delete files.";

  static override description =
    `Deletes the live version of each path (a soft delete: the versions stay until garbage collection removes them). Every path is attempted; each is reported as deleted (with the version that was live) or with its error. A path with no live file is an error for that path, and the command exits non-zero if any path failed.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Delete one file", command: "<%= config.bin %> <%= command.id %> /docs/old.pdf" },
    {
      description: "Delete several files",
      command: "<%= config.bin %> <%= command.id %> /tmp/a.txt /tmp/b.txt",
    },
  ];

  static override strict = false;

  static override usage = "<%= command.id %> PATH... [-t <uuid>] [--json]";

  static override args = {
    path: Args.string({ required: true, description: "Absolute remote file paths (one or more)" }),
  };

  static override flags = { tenant: tenantFlag };

  public async run(): Promise<RmResult[] | undefined> {
    const paths = this.positionals.map((p) => checkRemotePath(p));
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);
    const items = this.itemResults<RmResult, RmResult>(paths.length);
    for (const [i, path] of paths.entries()) {
      try {
        const res = await files.delete({ tenantId, path });
        items.ok(i, { path, status: "deleted", version: Number(res.version) });
      } catch (e) {
        const failure = await this.describeItemFailure(e, { tenant: tenantId, explainNotFound: true });
        const r: RmResult = { path, status: "error", error: failure.described.message };
        if (failure.described.code) r.code = failure.described.code;
        items.fail(i, r, failure);
      }
    }
    if (!this.jsonEnabled()) {
      const single = paths.length === 1 ? items.first?.failure : undefined;
      if (single) throw single.described;
      this.log(
        table(items.results, [
          { header: "Path", get: (r) => r.path },
          {
            header: "Status",
            get: (r) => (r.status === "deleted" ? `deleted (version ${r.version})` : `error: ${r.error}`),
          },
        ]),
      );
    }
    return items.finish(
      (failed, _first, exit) =>
        new UserError(`${failed} of ${paths.length} paths could not be deleted`, exit),
    );
  }
}
