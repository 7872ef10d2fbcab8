import { type Tenant, Tenants } from "@cacheroach/proto";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { table } from "../../lib/format.js";
import { type TenantJson, tenantJson } from "../../lib/tenant-json.js";

export default class TenantLs extends BaseCommand<typeof TenantLs> {
  static override summary = "List the tenants you can read.";

  static override description =
    `Lists every tenant this session may read something in (all of them for a super session), with its ID, version (needed to delete it) and label. The config's default tenant is marked with "*".

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "List tenants", command: "<%= config.bin %> <%= command.id %>" },
    { description: "As JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];

  public async run(): Promise<(TenantJson & { default: boolean })[]> {
    const cfg = await this.loadCliConfig();
    const tenants: Tenant[] = [];
    for await (const t of (await this.client(Tenants)).list({})) tenants.push(t);
    const rows = tenants.map((t) => ({ ...tenantJson(t), default: t.id === cfg.defaultTenant }));
    if (rows.length === 0) {
      this.logToStderr(
        "no tenants are visible to this session (ask for access: cacheroach session delegate)",
      );
    } else {
      this.log(
        table(rows, [
          { header: "ID", get: (r) => `${r.id}${r.default ? " *" : ""}` },
          { header: "Version", get: (r) => String(r.version), right: true },
          { header: "Label", get: (r) => r.label },
        ]),
      );
    }
    return rows;
  }
}
