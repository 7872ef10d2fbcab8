import { Tokens } from "@cacheroach/proto";
import { Args } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, UserError } from "../../lib/errors.js";
import { table } from "../../lib/format.js";
import { checkUuid } from "../../lib/sessions.js";

/** One line of `session rm` output. */
export interface SessionRmResult {
  id: string;
  status: "revoked" | "error";
  principalId?: string;
  /** Sessions this revoked: the session and those issued under it that were still unrevoked. */
  revoked?: number;
  error?: string;
  code?: string;
}

export default class SessionRm extends BaseCommand<typeof SessionRm> {
  static override summary = "Revoke sessions.";

  static override description =
    `Revokes each session (Tokens.Invalidate) and everything issued under it, at any depth: its token, the sessions delegated from it (and from them), and every signed URL minted under any of them stop working on every server within seconds. You may revoke your own sessions, sessions of principals you have delegate authority over, and grants at locations where you may delegate.

Each ID is looked up first, so an unknown ID is reported as not found. Every ID is attempted; the command exits non-zero if any failed. Revoking the session this config uses logs the config out (see \`cacheroach auth logout\`).

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Revoke a grant",
      command: "<%= config.bin %> <%= command.id %> 9a8b7c6d-0000-4000-8000-000000000003",
    },
  ];

  static override strict = false;

  static override usage = "<%= command.id %> SESSION-ID... [--json]";

  static override args = {
    "session-id": Args.string({ required: true, description: "Session IDs (see `cacheroach session ls`)" }),
  };

  public async run(): Promise<SessionRmResult[] | undefined> {
    const ids = this.positionals.map((p) =>
      checkUuid(p, "session ID", ["list sessions with `cacheroach session ls`"]),
    );
    const tokens = await this.client(Tokens);
    const me = await this.currentSession();
    const items = this.itemResults<SessionRmResult, SessionRmResult>(ids.length);
    for (const [i, id] of ids.entries()) {
      try {
        const s = await tokens.load({ kind: { case: "id", value: id } });
        const { revoked } = await tokens.invalidate({ kind: { case: "id", value: id } });
        items.ok(i, { id, status: "revoked", principalId: s.principalId, revoked });
      } catch (err) {
        const failure = await this.describeItemFailure(err);
        const r: SessionRmResult = { id, status: "error", error: failure.described.message };
        if (failure.described.code) r.code = failure.described.code;
        items.fail(i, r, failure);
      }
    }
    if (me.id && items.succeeded.some((r) => r.id === me.id)) {
      this.logToStderr(
        `warning: ${me.id} was this config's own session; ${this.configPath} no longer works.`,
      );
    }
    if (!this.jsonEnabled()) {
      const single = ids.length === 1 ? items.first?.failure : undefined;
      if (single) throw single.described;
      this.log(
        table(items.results, [
          { header: "Session", get: (r) => r.id },
          {
            header: "Status",
            get: (r) =>
              r.status === "error"
                ? `error: ${r.error}`
                : (r.revoked ?? 0) > 1
                  ? `revoked, with ${(r.revoked ?? 1) - 1} issued under it`
                  : "revoked",
          },
        ]),
      );
    }
    return items.finish(
      (failed, _first, exit) =>
        new UserError(`${failed} of ${ids.length} sessions could not be revoked`, exit),
    );
  }
}
