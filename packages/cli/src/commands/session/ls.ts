import { type Session, Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { formatTime, table } from "../../lib/format.js";
import {
  capabilityText,
  type SessionJson,
  scopeText,
  sessionExpiry,
  sessionJson,
} from "../../lib/sessions.js";

export default class SessionLs extends BaseCommand<typeof SessionLs> {
  static override summary = "List your principal's active sessions: logins and grants.";

  static override description =
    `Lists the unexpired, unrevoked sessions owned by your principal and by its email-domain principal (Tokens.Find): your logins (scope: your principal) and the grants others gave you (scope: a tenant and path), with capabilities and expiry. The session this config uses is marked with "*". Needs a login session (one scoped to your principal, with delegate), not a tenant-scoped token.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "What may I do, and until when?", command: "<%= config.bin %> <%= command.id %>" },
    { description: "As JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];

  public async run(): Promise<(SessionJson & { current: boolean })[]> {
    const tokens = await this.client(Tokens);
    const sessions: Session[] = [];
    try {
      for await (const s of tokens.find({})) sessions.push(s);
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.PermissionDenied) {
        throw new UserError(
          `cannot list sessions with this config: ${err.rawMessage}`,
          ExitCode.auth,
          [
            "`cacheroach auth whoami` shows the session this config presents",
            "listing needs a login config (from `cacheroach principal create` or `auth set` with a login token)",
          ],
          "permission_denied",
        );
      }
      throw err;
    }
    const me = await this.currentSession();
    sessions.sort((a, b) => (sessionExpiry(a)?.getTime() ?? 0) - (sessionExpiry(b)?.getTime() ?? 0));
    const rows = sessions.map((s) => ({ s, current: s.id !== "" && s.id === me.id }));
    if (rows.length > 0) {
      this.log(
        table(rows, [
          { header: "ID", get: (r) => `${r.s.id}${r.current ? " *" : ""}` },
          { header: "Principal", get: (r) => r.s.principalId },
          { header: "Name", get: (r) => r.s.name },
          { header: "Capabilities", get: (r) => capabilityText(r.s.capabilities) },
          { header: "Scope", get: (r) => scopeText(r.s.scope) },
          { header: "Expires", get: (r) => formatTime(sessionExpiry(r.s)) },
        ]),
      );
    }
    return rows.map((r) => ({ ...sessionJson(r.s), current: r.current }));
  }
}
