import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Files, type FileVersion } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { type FileJson, fileJson, shortHash } from "../../lib/file-json.js";
import { formatBytes, formatLocalTime, formatTime, table } from "../../lib/format.js";
import { checkRemotePath } from "../../lib/paths.js";

/** One line of `file versions --json`. */
export type VersionJson = FileJson & {
  /** "live" (what the path serves), "superseded" (a newer write replaced it) or "deleted". */
  state: "live" | "superseded" | "deleted";
  /** When the file was deleted, for a deleted version. */
  deletedAt?: string;
};

function stateOf(v: FileVersion): VersionJson["state"] {
  if (v.live) return "live";
  return v.deletedAt ? "deleted" : "superseded";
}

export default class FileVersions extends BaseCommand<typeof FileVersions> {
  static override summary = "List the stored versions of a file.";

  static override description =
    `Every write of a path makes a new version (numbered from 1, never reused); a delete marks the versions deleted. This lists the versions the server still stores, newest first: live (what the path serves now), superseded (replaced by a newer write) or deleted, with size, time written and content hash. Garbage collection removes old versions after the tenant's retention (see \`cacheroach gc\`), so numbers may have gaps. Download one with \`file get --version N\`; overwrite only if nobody wrote meanwhile with \`file put --if-match N\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "The versions of a file",
      command: "<%= config.bin %> <%= command.id %> /docs/report.pdf",
    },
    {
      description: "Restore version 3 under its own name",
      command:
        "<%= config.bin %> file get --version 3 /docs/report.pdf -o old.pdf && <%= config.bin %> file put /docs/report.pdf old.pdf",
    },
    {
      description: "Full content hashes, for scripts",
      command: "<%= config.bin %> <%= command.id %> --json /docs/report.pdf",
    },
  ];

  static override args = {
    path: Args.string({ required: true, description: "Absolute remote file path" }),
  };

  static override flags = {
    tenant: tenantFlag,
    bytes: Flags.boolean({ summary: "Sizes in bytes." }),
    "page-size": Flags.integer({
      summary: "Versions per request.",
      default: 100,
      min: 1,
      max: 1000,
      hidden: true,
    }),
  };

  public async run(): Promise<VersionJson[] | undefined> {
    const path = checkRemotePath(this.args.path);
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = await this.client(Files);
    const all: FileVersion[] = [];
    let before = 0n;
    try {
      do {
        const page = await files.versions({
          tenantId,
          path,
          beforeVersion: before,
          pageSize: this.flags["page-size"],
        });
        all.push(...page.versions);
        before = page.nextBeforeVersion;
      } while (before !== 0n);
    } catch (err) {
      throw await this.explainNotFound(err, tenantId);
    }
    const rows = all.map((v): VersionJson => {
      const row: VersionJson = { ...fileJson(v.file!), state: stateOf(v) };
      if (v.deletedAt) row.deletedAt = formatTime(timestampDate(v.deletedAt));
      return row;
    });
    if (this.jsonEnabled()) return rows;
    this.log(
      table(all, [
        { header: "Version", get: (v) => String(v.file?.version ?? ""), right: true },
        {
          header: "Size",
          get: (v) =>
            this.flags.bytes ? String(v.file?.size ?? 0n) : formatBytes(Number(v.file?.size ?? 0n)),
          right: true,
        },
        {
          header: "Written",
          get: (v) => formatLocalTime(v.file?.modifiedAt ? timestampDate(v.file.modifiedAt) : undefined),
        },
        { header: "Hash", get: (v) => shortHash(v.file?.contentHash ?? new Uint8Array()) },
        {
          header: "State",
          get: (v) => (v.deletedAt ? `deleted ${formatLocalTime(timestampDate(v.deletedAt))}` : stateOf(v)),
        },
      ]),
    );
    return undefined;
  }
}
