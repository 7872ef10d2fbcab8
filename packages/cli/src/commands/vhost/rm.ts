import { VHosts } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { checkHost } from "../../lib/vhosts.js";

export default class VHostRm extends BaseCommand<typeof VHostRm> {
  static override summary = "Stop serving a tenant for a host name.";

  static override description =
    `Removes the mapping of the host name to the tenant. Both must match the existing mapping (so a script cannot remove a mapping someone pointed elsewhere meanwhile); a host that is not mapped, or mapped to another tenant, is an error (exit 4) and nothing changes. Needs a super session.

It does not ask for confirmation (the mapping is made again with \`cacheroach vhost create\`); --yes is accepted and changes nothing, for scripts that pass it as they do to \`cacheroach tenant rm\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Stop serving files.example.com",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 files.example.com",
    },
  ];

  static override args = {
    tenant: Args.string({
      required: true,
      description: "The tenant the host maps to: its name (label) or ID",
    }),
    hostname: Args.string({ required: true, description: 'Host name, or "*"' }),
  };

  static override flags = {
    yes: Flags.boolean({
      char: "y",
      summary: "Accepted for scripts written like `tenant rm --yes`; vhost rm never asks.",
    }),
  };

  public async run(): Promise<{ host: string; tenantId: string; removed: true }> {
    const host = checkHost(this.args.hostname);
    const tenantId = await this.tenantId(this.args.tenant, "tenant");
    const vhosts = await this.client(VHosts);
    let current: string | undefined;
    for await (const v of vhosts.list({})) if (v.vhost === host) current = v.tenantId;
    if (current === undefined) {
      throw new UserError(
        `${host} is not mapped to any tenant; nothing was removed`,
        ExitCode.notFound,
        ["list mappings with `cacheroach vhost ls`"],
        "not_found",
      );
    }
    if (current !== tenantId) {
      throw new UserError(
        `${host} is mapped to tenant ${current}, not ${tenantId}; nothing was removed`,
        ExitCode.notFound,
        [`to remove it: cacheroach vhost rm ${current} ${host === "*" ? "'*'" : host}`],
        "not_found",
      );
    }
    await vhosts.ensure({ vhost: { vhost: host, tenantId }, delete: true });
    this.log(`Removed ${host} → tenant ${tenantId}.`);
    return { host, tenantId, removed: true };
  }
}
