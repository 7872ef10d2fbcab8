import { Tenants } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { saveConfig } from "../../lib/config.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type TenantJson, tenantJson } from "../../lib/tenant-json.js";

export default class TenantDefault extends BaseCommand<typeof TenantDefault> {
  static override summary = "Set the tenant file commands use when -t is not given.";

  static override description =
    `Checks with the server that the tenant exists and is visible to this session (Tenants.Get), then stores it as defaultTenant in the config. File commands use it unless -t/--tenant (or CACHEROACH_TENANT) says otherwise.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Work in a tenant by default",
      command: "<%= config.bin %> <%= command.id %> 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
    },
  ];

  static override args = {
    tenant: Args.string({
      required: true,
      description: "The tenant: its name (label) or ID (see `cacheroach tenant ls`)",
    }),
  };

  public async run(): Promise<TenantJson & { config: string }> {
    const id = await this.tenantId(this.args.tenant, "tenant");
    const cfg = await this.loadCliConfig();
    let tenant: TenantJson;
    try {
      const res = await (await this.client(Tenants)).get({ id });
      tenant = tenantJson(res.tenant!);
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) {
        throw new UserError(
          `tenant ${id} does not exist (or is not visible to this session); the default was not changed`,
          ExitCode.notFound,
          ["list the tenants you can use: cacheroach tenant ls"],
          "tenant_not_found",
        );
      }
      throw err;
    }
    await saveConfig(this.configPath, { ...cfg, defaultTenant: id });
    this.log(`Default tenant of ${this.configPath} is now ${id} ("${tenant.label}").`);
    return { ...tenant, config: this.configPath };
  }
}
