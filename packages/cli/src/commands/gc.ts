import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { GarbageCollection, type TenantCollection } from "@cacheroach/proto";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../lib/errors.js";
import { formatBytes, parseDuration, table } from "../lib/format.js";

/** What `gc` reports per tenant (numbers as numbers). */
export interface GcTenantJson {
  tenantId: string;
  label: string;
  deleted: boolean;
  dryRun: boolean;
  versions: number;
  versionBytes: number;
  uploads: number;
  ropes: number;
  chunks: number;
  bytes: number;
  pendingChunks: number;
  pendingBytes: number;
  lostRaces: number;
  error?: string;
}

export default class Gc extends BaseCommand<typeof Gc> {
  static override summary = "Reclaim storage that retention no longer keeps (super only).";

  static override description =
    `Runs garbage collection on the server now and prints, per tenant, what it reclaimed: file versions (deleted or superseded, past the tenant's retention), expired uploads, contents (ropes) no version references, and chunks nothing references, with their bytes. Deleted tenants are purged. The server also collects on a schedule (its --gc-interval, 1 h by default).

Retention: each tenant keeps the newest N dead versions of every path and any version dead for less than D (server defaults --retain-versions and --retain, overridden per tenant). --older-than replaces both for this run: every version deleted or superseded at least that long ago goes, and every upload idle that long (uploads active in the last 5 s are never touched: they are still sending). \`--older-than 0s\` reclaims everything that is not live now.

Safe while clients upload: a chunk nothing references is first marked, and removed only once every upload that was open at that moment has finished; chunks kept for that reason are shown as "pending" and go in a later run. A run takes at least the server's safety margin (10 s) when it marks chunks.

--dry-run reports what the run would reclaim and changes nothing; contents that only the removal of versions would free are counted by the run that removes those versions.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Collect every tenant by its retention", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "See what removing everything deleted or replaced over a week ago would reclaim",
      command: "<%= config.bin %> <%= command.id %> --older-than 7d --dry-run",
    },
    {
      description: "Reclaim everything that is not live, in one tenant, as JSON",
      command:
        "<%= config.bin %> <%= command.id %> -t 5b3c2d4e-0000-4000-8000-000000000001 --older-than 0s --json",
    },
  ];

  static override flags = {
    tenant: Flags.string({
      char: "t",
      summary: "Collect only this tenant, by ID or label (default: every tenant).",
      helpValue: "<tenant>",
    }),
    "older-than": Flags.string({
      summary:
        "Override retention for this run: reclaim what was deleted or replaced at least this long ago.",
      description: "A duration such as 0s, 90m, 36h, 7d.",
      helpValue: "<duration>",
    }),
    "dry-run": Flags.boolean({ summary: "Report what would be reclaimed; change nothing." }),
  };

  public async run(): Promise<GcTenantJson[]> {
    const tenantId =
      this.flags.tenant === undefined ? "" : await this.tenantId(this.flags.tenant, "-t/--tenant");
    const olderThan = this.flags["older-than"];
    const ms = olderThan === undefined ? undefined : parseDurationOrZero(olderThan);
    const client = await this.client(GarbageCollection);
    const rows: GcTenantJson[] = [];
    const stream = client.collect({
      tenantId,
      dryRun: this.flags["dry-run"],
      ...(ms === undefined
        ? {}
        : {
            olderThan: create(DurationSchema, {
              seconds: BigInt(Math.floor(ms / 1000)),
              nanos: (ms % 1000) * 1_000_000,
            }),
          }),
    });
    for await (const t of stream) rows.push(gcJson(t));
    if (!this.jsonEnabled()) this.print(rows);
    const failed = rows.filter((r) => r.error);
    if (failed.length > 0) {
      throw new UserError(
        `garbage collection failed for ${failed.length} tenant(s): ${failed.map((r) => `${r.label || r.tenantId}: ${r.error}`).join("; ")}`,
        ExitCode.failure,
        ["run `cacheroach gc` again; what was reclaimed stays reclaimed"],
      );
    }
    return rows;
  }

  private print(rows: readonly GcTenantJson[]): void {
    if (rows.length === 0) {
      this.logToStderr("no tenants to collect");
      return;
    }
    const dry = rows[0]?.dryRun ?? false;
    this.log(
      table(rows, [
        { header: "Tenant", get: (r) => `${r.label || r.tenantId}${r.deleted ? " (deleted)" : ""}` },
        { header: "Versions", get: (r) => String(r.versions), right: true },
        { header: "Uploads", get: (r) => String(r.uploads), right: true },
        { header: "Contents", get: (r) => String(r.ropes), right: true },
        { header: "Chunks", get: (r) => String(r.chunks), right: true },
        { header: dry ? "Would free" : "Freed", get: (r) => formatBytes(r.bytes), right: true },
        {
          header: "Pending",
          get: (r) => (r.pendingChunks ? `${r.pendingChunks} (${formatBytes(r.pendingBytes)})` : "0"),
          right: true,
        },
      ]),
    );
    const total = rows.reduce((n, r) => n + r.bytes, 0);
    this.logToStderr(
      dry
        ? `dry run: nothing was changed; ${formatBytes(total)} would be freed`
        : `${formatBytes(total)} freed`,
    );
    if (rows.some((r) => r.pendingChunks > 0)) {
      this.logToStderr(
        "pending: unreferenced chunks kept until the uploads open when they were found have finished; a later run removes them",
      );
    }
  }
}

/** A duration; "0", "0s" and the like mean zero (parseDuration refuses zero elsewhere). */
function parseDurationOrZero(text: string): number {
  if (/^\s*0+(\.0+)?(ms|s|m|h|d|w|y)?\s*$/.test(text)) return 0;
  return parseDuration(text);
}

function gcJson(t: TenantCollection): GcTenantJson {
  return {
    tenantId: t.tenantId,
    label: t.label,
    deleted: t.deleted,
    dryRun: t.dryRun,
    versions: Number(t.versions),
    versionBytes: Number(t.versionBytes),
    uploads: Number(t.uploads),
    ropes: Number(t.ropes),
    chunks: Number(t.chunks),
    bytes: Number(t.bytes),
    pendingChunks: Number(t.pendingChunks),
    pendingBytes: Number(t.pendingBytes),
    lostRaces: Number(t.lostRaces),
    ...(t.error ? { error: t.error } : {}),
  };
}
