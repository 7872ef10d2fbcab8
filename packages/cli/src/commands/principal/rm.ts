import { Principals } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { ensureConfirmable, requireConfirmation } from "../../lib/confirm.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { shellWord } from "../../lib/invocation.js";
import { requireSuperSession } from "../../lib/super-only.js";

/** What `principal rm` reports. */
export interface PrincipalRmResult {
  id: string;
  label: string | null;
  version: number;
  deleted: true;
}

export default class PrincipalRm extends BaseCommand<typeof PrincipalRm> {
  static override summary = "Delete a principal and all its sessions.";

  static override description =
    `Deletes the principal; every session it owns (its logins and the grants given to it) goes with it, so its configs stop working at once. Needs a super session.

The delete is guarded by the principal's version: without --version the current one is looked up first; with --version the delete fails (exit 5, nothing deleted) if the principal changed since (see \`cacheroach principal ls\`).

Asks for confirmation on a terminal; --yes skips the question and is required without a terminal. A session that is not super is refused (exit 3) before it is asked.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Delete a principal",
      command: "<%= config.bin %> <%= command.id %> --yes 6f1d2c3b-0000-4000-8000-000000000002",
    },
    {
      description: "Only if it is still at version 1",
      command: "<%= config.bin %> <%= command.id %> --yes --version 1 6f1d2c3b-0000-4000-8000-000000000002",
    },
  ];

  static override args = {
    principal: Args.string({
      required: true,
      description: "The principal: its name, email or ID (see `cacheroach principal ls`)",
    }),
  };

  static override flags = {
    version: Flags.integer({
      summary: "Delete only if the principal is at this version (default: its current version).",
      min: 1,
    }),
    yes: Flags.boolean({ char: "y", summary: "Do not ask for confirmation." }),
  };

  public async run(): Promise<PrincipalRmResult> {
    const named = shellWord(this.args.principal);
    const retry = `cacheroach principal rm ${named}${this.flags.version ? ` --version ${this.flags.version}` : ""}`;
    // Asking for a confirmation the server would make pointless helps no one.
    if (!this.flags.yes) requireSuperSession(await this.currentSession(), "principal rm");
    ensureConfirmable(`delete principal ${named} and its sessions`, this.flags.yes, retry);
    const id = await this.principalId(this.args.principal, "principal");
    const principals = await this.client(Principals);
    let label: string | null = null;
    let version = this.flags.version;
    if (version === undefined) {
      try {
        const p = await principals.load({ kind: { case: "id", value: id } });
        label = p.label !== p.id ? p.label : null;
        version = Number(p.version);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.NotFound) {
          throw new UserError(`principal ${id} does not exist; nothing was deleted`, ExitCode.notFound, [
            "list principals with `cacheroach principal ls`",
          ]);
        }
        throw err;
      }
    }
    const me = await this.currentSession();
    const self = me.principalId === id ? " — it is YOUR OWN principal: this config will stop working" : "";
    await requireConfirmation(
      `delete principal ${id}${label ? ` ("${label}")` : ""} and all its sessions${self}`,
      this.flags.yes,
      retry,
    );
    try {
      await principals.ensure({ principal: { id, version: BigInt(version) }, delete: true });
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Aborted) {
        throw new UserError(
          `principal ${id} is not at version ${version} (it changed, or does not exist); nothing was deleted`,
          ExitCode.conflict,
          ["look up its current version with `cacheroach principal ls`, or omit --version"],
          "version_mismatch",
        );
      }
      throw err;
    }
    this.log(`Deleted principal ${id}${label ? ` ("${label}")` : ""} at version ${version}.`);
    return { id, label, version, deleted: true };
  }
}
