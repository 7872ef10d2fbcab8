import { VHosts } from "@cacheroach/proto";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { table } from "../../lib/format.js";

/** A vhost mapping as JSON. */
export interface VHostJson {
  host: string;
  tenantId: string;
}

export default class VHostLs extends BaseCommand<typeof VHostLs> {
  static override summary = "List host name → tenant mappings.";

  static override description =
    `Lists every mapping of a host name ("*" = every other host) to the tenant served for it over plain HTTP, as Host and Tenant ID columns. Needs a super session.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "List mappings", command: "<%= config.bin %> <%= command.id %>" },
  ];

  public async run(): Promise<VHostJson[]> {
    const rows: VHostJson[] = [];
    for await (const v of (await this.client(VHosts)).list({}))
      rows.push({ host: v.vhost, tenantId: v.tenantId });
    if (rows.length > 0) {
      this.log(
        table(rows, [
          { header: "Host", get: (r) => r.host },
          { header: "Tenant ID", get: (r) => r.tenantId },
        ]),
      );
    }
    return rows;
  }
}
