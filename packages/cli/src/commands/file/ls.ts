import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type FileMeta, Files } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { type FileJson, fileJson, shortHash } from "../../lib/file-json.js";
import { formatTime, table } from "../../lib/format.js";
import { checkRemotePrefix } from "../../lib/paths.js";

export default class FileLs extends BaseCommand<typeof FileLs> {
  static override summary = "List the files at or below a path.";

  static override description =
    `Lists the latest live version of every file at or below the path, recursively, in bytewise path order ("/" lists the whole tenant). Plain output is one path per line, fit for scripts; -w adds size, version, modification time and a short content hash; --json gives every field. Long listings are fetched a page at a time.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Every file in the default tenant", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Files below /docs, with details",
      command: "<%= config.bin %> <%= command.id %> -w /docs",
    },
    {
      description: "Machine-readable listing of another tenant",
      command: "<%= config.bin %> <%= command.id %> --json -t 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a /",
    },
  ];

  static override args = {
    path: Args.string({ description: "Remote path or directory prefix", default: "/" }),
  };

  static override flags = {
    tenant: tenantFlag,
    wide: Flags.boolean({ char: "w", summary: "Show size, version, modification time and content hash." }),
    "page-size": Flags.integer({
      summary: "Files fetched per request.",
      default: 1000,
      min: 1,
      max: 10000,
      hidden: true,
    }),
  };

  public async run(): Promise<FileJson[] | undefined> {
    const prefix = checkRemotePrefix(this.args.path);
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);
    const json = this.jsonEnabled();
    const wide = this.flags.wide;
    const collected: FileMeta[] = [];
    let cursor = "";
    let found = false;
    do {
      const page = await files.list({ tenantId, path: prefix, cursor, pageSize: this.flags["page-size"] });
      if (json || wide) collected.push(...page.files);
      else if (page.files.length > 0) this.log(page.files.map((f) => f.path).join("\n"));
      cursor = page.nextCursor;
      if (page.files.length > 0) found = true;
    } while (cursor !== "");
    if (!found) {
      const problem = await this.tenantProblem(tenantId);
      if (problem) throw problem;
    }
    if (json) return collected.map(fileJson);
    if (wide && collected.length > 0) {
      this.log(
        table(collected, [
          { header: "Path", get: (f) => f.path },
          { header: "Size", get: (f) => String(f.size), right: true },
          { header: "Version", get: (f) => String(f.version), right: true },
          {
            header: "Modified",
            get: (f) => formatTime(f.modifiedAt ? timestampDate(f.modifiedAt) : undefined),
          },
          { header: "Hash", get: (f) => shortHash(f.contentHash) },
        ]),
      );
    }
    return undefined;
  }
}
