import { type Tenant, Tenants } from "@cacheroach/proto";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { formatBytes, table } from "../../lib/format.js";
import {
  quotaText,
  type TenantJson,
  type TenantWideJson,
  tenantJson,
  tenantWideJson,
} from "../../lib/tenant-json.js";

/** One row of `tenant ls`. */
type Row = (TenantJson | TenantWideJson) & { default: boolean };

export default class TenantLs extends BaseCommand<typeof TenantLs> {
  static override summary = "List the tenants you can read.";

  static override description =
    `Lists every tenant this session may read something in (all of them for a super session), with its ID, version (needed to delete it) and label. The config's default tenant is marked with "*".

With --wide it also shows what each tenant stores: Files (live files), Logical (the sum of their sizes: what users see), Physical (the distinct chunks stored: what the database holds and the quota limits), Dedup (logical ÷ physical: how much deduplication saves; "-" when nothing is stored) and Quota (its quota on physical bytes; "(default)" when the tenant has none of its own and the server's --default-quota applies). Deleted files still count as physical until garbage collection reclaims their chunks. --wide costs the server a scan of each tenant's file heads (about one page read per 10 000 paths).

With --json, --wide adds raw numbers: policy (the tenant's own values; null = the server's default), effectivePolicy (the values in force; 0 = unlimited) and usage (files, logicalBytes, chunks, physicalBytes, dedupRatio).

Change a tenant's quota, limits or retention with \`cacheroach tenant set\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "List tenants", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "With usage, dedup ratio and quota",
      command: "<%= config.bin %> <%= command.id %> --wide",
    },
    { description: "As JSON", command: "<%= config.bin %> <%= command.id %> --json" },
    {
      description: "Tenants over 90 % of their quota (jq)",
      command:
        "<%= config.bin %> <%= command.id %> --wide --json | jq '.[] | select(.effectivePolicy.quotaBytes > 0 and .usage.physicalBytes > 0.9 * .effectivePolicy.quotaBytes) | .id'",
    },
  ];

  static override flags = {
    wide: Flags.boolean({
      char: "w",
      summary: "Also show files, logical and physical bytes, the dedup ratio and the quota.",
    }),
  };

  public async run(): Promise<Row[]> {
    const cfg = await this.loadCliConfig();
    const wide = this.flags.wide;
    const tenants: Tenant[] = [];
    for await (const t of (await this.client(Tenants)).list({ withUsage: wide })) tenants.push(t);
    const rows: Row[] = tenants.map((t) => ({
      ...(wide ? tenantWideJson(t) : tenantJson(t)),
      default: t.id === cfg.defaultTenant,
    }));
    if (rows.length === 0) {
      this.logToStderr(
        "no tenants are visible to this session (ask for access: cacheroach session delegate)",
      );
      return rows;
    }
    const columns = [
      { header: "ID", get: (r: Row) => `${r.id}${r.default ? " *" : ""}` },
      { header: "Version", get: (r: Row) => String(r.version), right: true },
      { header: "Label", get: (r: Row) => r.label },
    ];
    if (wide) {
      const u = (r: Row) => (r as TenantWideJson).usage;
      columns.push(
        { header: "Files", get: (r) => String(u(r)?.files ?? ""), right: true },
        { header: "Logical", get: (r) => formatBytes(u(r)?.logicalBytes ?? 0), right: true },
        { header: "Physical", get: (r) => formatBytes(u(r)?.physicalBytes ?? 0), right: true },
        {
          header: "Dedup",
          get: (r) => (u(r)?.physicalBytes ? `${(u(r)?.dedupRatio ?? 0).toFixed(2)}x` : "-"),
          right: true,
        },
        { header: "Quota", get: (r) => quotaText(r as TenantWideJson) },
      );
    }
    this.log(table(rows, columns));
    return rows;
  }
}
