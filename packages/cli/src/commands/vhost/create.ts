import { VHosts } from "@cacheroach/proto";
import { Args } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { checkHost } from "../../lib/vhosts.js";

/** What `vhost create` reports. */
export interface VHostCreateResult {
  host: string;
  tenantId: string;
  /** The tenant the host served before, if it was mapped to another one. */
  replaced: string | null;
}

export default class VHostCreate extends BaseCommand<typeof VHostCreate> {
  static override summary = "Serve a tenant's files over plain HTTP for a host name.";

  static override description =
    `Maps a host name to a tenant: plain HTTP requests for that Host (port ignored) are served from the tenant's files, subject to the requester's grants (anonymous requests use the public principal's grants). "*" is the fallback for every host without its own mapping. A host maps to one tenant; mapping it again replaces the old mapping (the command says so). Every server picks up the change within seconds. Needs a super session.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Serve a tenant at files.example.com",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 files.example.com",
    },
    {
      description: "Make it the fallback for all other hosts",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 '*'",
    },
  ];

  static override args = {
    tenant: Args.string({ required: true, description: "The tenant to serve: its name (label) or ID" }),
    hostname: Args.string({ required: true, description: 'Host name without scheme or port, or "*"' }),
  };

  public async run(): Promise<VHostCreateResult> {
    const host = checkHost(this.args.hostname);
    const tenantId = await this.tenantId(this.args.tenant, "tenant");
    const vhosts = await this.client(VHosts);
    let replaced: string | null = null;
    for await (const v of vhosts.list({}))
      if (v.vhost === host && v.tenantId !== tenantId) replaced = v.tenantId;
    await vhosts.ensure({ vhost: { vhost: host, tenantId } });
    this.log(`${host} → tenant ${tenantId}${replaced ? ` (was tenant ${replaced})` : ""}`);
    return { host, tenantId, replaced };
  }
}
