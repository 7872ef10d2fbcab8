import { Tenants } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { saveConfig } from "../../lib/config.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type TenantJson, tenantJson } from "../../lib/tenant-json.js";

/** What `tenant create` reports. */
export interface TenantCreateResult extends TenantJson {
  /** True when --default made it the config's default tenant. */
  default: boolean;
}

export default class TenantCreate extends BaseCommand<typeof TenantCreate> {
  static override summary = "Create a tenant (a separate file tree) and print its ID.";

  static override description =
    `Creates a new, empty tenant with a human label (1 to 256 characters; labels need not be unique) and prints its ID on stdout. Needs a super session (the config written by \`cacheroach bootstrap\`).

With --default the new tenant also becomes the config's default tenant for file commands.

Give others access with \`cacheroach session delegate --for <principal> --on tenant --id <tenant id> --capabilities read,write\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Create a tenant", command: '<%= config.bin %> <%= command.id %> "Team A"' },
    {
      description: "Create it and make it the default for file commands",
      command: '<%= config.bin %> <%= command.id %> --default "Team A"',
    },
    {
      description: "Keep the ID in a variable",
      command: 'T=$(<%= config.bin %> <%= command.id %> "Team A")',
    },
  ];

  static override args = {
    label: Args.string({ required: true, description: "A human label for the tenant (1..256 characters)" }),
  };

  static override flags = {
    default: Flags.boolean({ summary: "Also make it the config's default tenant." }),
  };

  public async run(): Promise<TenantCreateResult> {
    const label = this.args.label.trim();
    if (label.length < 1 || label.length > 256) {
      throw new UserError(`tenant label must be 1 to 256 characters (got ${label.length})`, ExitCode.usage);
    }
    const cfg = await this.loadCliConfig();
    const res = await (await this.client(Tenants)).ensure({ tenant: { label, version: 0n } });
    const t = res.tenant;
    if (!t?.id) throw new UserError("the server created a tenant without an ID", ExitCode.failure);
    if (this.flags.default) {
      await saveConfig(this.configPath, { ...cfg, defaultTenant: t.id });
      this.logToStderr(`Tenant ${t.id} ("${t.label}") is now the default tenant of ${this.configPath}.`);
    }
    this.log(t.id);
    return { ...tenantJson(t), default: this.flags.default };
  }
}
