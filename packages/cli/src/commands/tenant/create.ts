import { Tenants } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { saveConfig } from "../../lib/config.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { shellWord } from "../../lib/invocation.js";
import { type Named, namedAlike, refuseDuplicate } from "../../lib/names.js";
import { type TenantJson, tenantJson } from "../../lib/tenant-json.js";

/** What `tenant create` reports. */
export interface TenantCreateResult extends TenantJson {
  /** True when --default made it the config's default tenant. */
  default: boolean;
}

export default class TenantCreate extends BaseCommand<typeof TenantCreate> {
  static override summary = "Create a tenant (a separate file tree) and print its ID.";

  static override description =
    `Creates a new, empty tenant with a human label (1 to 256 characters) and prints its ID on stdout. Needs a super session (the config written by \`cacheroach bootstrap\`).

Commands take a tenant by its label as well as by its ID, so a label already in use (ignoring case) is refused (exit 5, nothing created); --allow-duplicate creates another one anyway, whose name may then be ambiguous (IDs always work).

With --default the new tenant also becomes the config's default tenant for file commands.

Give others access with \`cacheroach session delegate --for <principal> --on tenant --id <tenant id> --capabilities read,write\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Create a tenant", command: '<%= config.bin %> <%= command.id %> "Team A"' },
    {
      description: "Create it and make it the default for file commands",
      command: '<%= config.bin %> <%= command.id %> --default "Team B"',
    },
    {
      description: "Keep the ID in a variable",
      command: 'T=$(<%= config.bin %> <%= command.id %> "Team C")',
    },
  ];

  static override args = {
    label: Args.string({ required: true, description: "A human label for the tenant (1..256 characters)" }),
  };

  static override flags = {
    default: Flags.boolean({ summary: "Also make it the config's default tenant." }),
    "allow-duplicate": Flags.boolean({
      summary: "Create it even if a tenant has that label already (IDs then tell them apart).",
    }),
  };

  public async run(): Promise<TenantCreateResult> {
    const label = this.args.label.trim();
    if (label.length < 1 || label.length > 256) {
      throw new UserError(`tenant label must be 1 to 256 characters (got ${label.length})`, ExitCode.usage);
    }
    const cfg = await this.loadCliConfig();
    const tenants = await this.client(Tenants);
    if (!this.flags["allow-duplicate"]) {
      const all: Named[] = [];
      for await (const t of tenants.list({})) all.push({ id: t.id, names: [t.label] });
      refuseDuplicate(namedAlike(all, label), label, {
        kind: "tenant",
        called: "labelled",
        list: "cacheroach tenant ls",
        retry: `cacheroach tenant create${this.flags.default ? " --default" : ""} ${shellWord(label)}`,
      });
    }
    const res = await tenants.ensure({ tenant: { label, version: 0n } });
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
