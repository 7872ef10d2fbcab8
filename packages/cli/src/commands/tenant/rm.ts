import { Tenants } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { saveConfig } from "../../lib/config.js";
import { ensureConfirmable, requireConfirmation } from "../../lib/confirm.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { shellWord } from "../../lib/invocation.js";
import { requireSuperSession } from "../../lib/super-only.js";

/** What `tenant rm` reports. */
export interface TenantRmResult {
  id: string;
  label: string | null;
  version: number;
  deleted: true;
  /** True when it was the config's default tenant (which was then cleared). */
  wasDefault: boolean;
}

export default class TenantRm extends BaseCommand<typeof TenantRm> {
  static override summary = "Delete a tenant and ALL of its files.";

  static override description =
    `Deletes the tenant with every file, version and chunk stored in it. This cannot be undone. Needs a super session. The tenant disappears at once; its storage is reclaimed by the server's garbage collection in bounded batches right after (see \`cacheroach gc\`).

The delete is guarded by the tenant's version: without --version the current one is looked up first (Tenants.Get); with --version the delete fails (exit 5, nothing deleted) if the tenant changed since you read that version (see \`cacheroach tenant ls\`).

Asks for confirmation on a terminal; --yes skips the question, and is required when there is no terminal (scripts). A session that is not super is refused (exit 3) before it is asked. If it was the config's default tenant, the default is cleared.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Delete a tenant, confirming on the terminal",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001",
    },
    {
      description: "In a script, only if it is still at version 1",
      command: "<%= config.bin %> <%= command.id %> --yes --version 1 5b3c2d4e-0000-4000-8000-000000000001",
    },
  ];

  static override args = {
    tenant: Args.string({
      required: true,
      description: "The tenant: its name (label) or ID (see `cacheroach tenant ls`)",
    }),
  };

  static override flags = {
    version: Flags.integer({
      summary: "Delete only if the tenant is at this version (default: its current version).",
      min: 1,
    }),
    yes: Flags.boolean({ char: "y", summary: "Do not ask for confirmation." }),
  };

  public async run(): Promise<TenantRmResult> {
    const named = shellWord(this.args.tenant);
    const retry = `cacheroach tenant rm ${named}${this.flags.version ? ` --version ${this.flags.version}` : ""}`;
    // Asking for a confirmation the server would make pointless helps no one (with --yes the
    // server's own refusal says the same).
    if (!this.flags.yes) requireSuperSession(await this.currentSession(), "tenant rm");
    ensureConfirmable(`delete tenant ${named} and ALL its files`, this.flags.yes, retry); // before any change
    const id = await this.tenantId(this.args.tenant, "tenant");
    const cfg = await this.loadCliConfig();
    const tenants = await this.client(Tenants);
    let label: string | null = null;
    let version = this.flags.version;
    if (version === undefined) {
      try {
        const t = (await tenants.get({ id })).tenant!;
        label = t.label;
        version = Number(t.version);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.NotFound) {
          throw new UserError(
            `tenant ${id} does not exist (or is not visible to this session); nothing was deleted`,
            ExitCode.notFound,
            ["list tenants with `cacheroach tenant ls`"],
            "tenant_not_found",
          );
        }
        throw err;
      }
    }
    await requireConfirmation(
      `delete tenant ${id}${label ? ` ("${label}")` : ""} and ALL its files`,
      this.flags.yes,
      retry,
    );
    try {
      await tenants.ensure({ tenant: { id, version: BigInt(version) }, delete: true });
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Aborted) {
        throw new UserError(
          `tenant ${id} is not at version ${version} (it changed, or does not exist); nothing was deleted`,
          ExitCode.conflict,
          ["look up its current version with `cacheroach tenant ls`, or omit --version"],
          "version_mismatch",
        );
      }
      throw err;
    }
    const wasDefault = cfg.defaultTenant === id;
    if (wasDefault) {
      const { defaultTenant: _, ...rest } = cfg;
      await saveConfig(this.configPath, rest);
    }
    this.log(`Deleted tenant ${id}${label ? ` ("${label}")` : ""} at version ${version}.`);
    if (wasDefault) this.logToStderr(`It was the default tenant; ${this.configPath} now has none.`);
    return { id, label, version, deleted: true, wasDefault };
  }
}
