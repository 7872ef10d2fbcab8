import { type Session, Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { formatTime, table } from "../../lib/format.js";
import {
  capabilityText,
  type SessionJson,
  scopeText,
  sessionExpiry,
  sessionJson,
  statusText,
} from "../../lib/sessions.js";

/** One listed session, and whether it is the one this config presents. */
type Row = { s: Session; current: boolean };

export default class SessionLs extends BaseCommand<typeof SessionLs> {
  static override summary = "List sessions: your logins and grants, or (as an operator) anyone's.";

  static override description =
    `Without flags, lists the active sessions owned by your principal and by its email-domain principal (Tokens.Find): your logins (scope: your principal) and the grants others gave you (scope: a tenant and path), with capabilities and expiry. The session this config uses is marked with "*". Needs a login session (one scoped to your principal, with delegate), not a tenant-scoped token.

--for lists another principal's sessions (needs a super session or delegate over that principal); --issued-by lists every session issued under a session, or under any session of a principal, at any depth (needs a super session, unless it is your own principal or session); --all adds revoked, expired and orphaned sessions (orphaned: unrevoked itself, but something up its chain of authority was revoked, expired or deleted, so it no longer works). Revoking a session (cacheroach session rm) revokes everything issued under it.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "What may I do, and until when?", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Everything issued under alice's sessions, revoked ones too (operator)",
      command: "<%= config.bin %> <%= command.id %> --issued-by <alice's principal id> --all",
    },
    {
      description: "Bob's sessions (operator)",
      command: "<%= config.bin %> <%= command.id %> --for <bob's principal id>",
    },
    { description: "As JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];

  static override flags = {
    for: Flags.string({
      summary: "List the sessions of this principal (ID, name or email) instead of yours.",
      helpValue: "<principal>",
    }),
    "issued-by": Flags.string({
      summary:
        "List the sessions issued under this session (ID) or principal (ID, name or email), at any depth.",
      helpValue: "<session-id|principal>",
    }),
    all: Flags.boolean({
      char: "a",
      summary: "Include revoked, expired and orphaned sessions, with their status.",
    }),
  };

  public async run(): Promise<(SessionJson & { current: boolean })[]> {
    const owner = this.flags.for ? await this.principalId(this.flags.for, "--for") : "";
    const issuedBy = this.flags["issued-by"]
      ? await this.principalId(this.flags["issued-by"], "--issued-by")
      : "";
    const filtered = owner !== "" || issuedBy !== "" || this.flags.all;
    const tokens = await this.client(Tokens);
    const sessions: Session[] = [];
    try {
      for await (const s of tokens.find({ owner, issuedBy, includeInactive: this.flags.all }))
        sessions.push(s);
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.PermissionDenied) {
        throw new UserError(
          `cannot list these sessions with this config: ${err.rawMessage}`,
          ExitCode.auth,
          [
            "`cacheroach auth whoami` shows the session this config presents",
            filtered
              ? "--for and --issued-by on other principals need an operator's (super) config: -c <admin config>"
              : "listing needs a login config (from `cacheroach principal create` or `auth set` with a login token)",
          ],
          "permission_denied",
        );
      }
      throw err;
    }
    const me = await this.currentSession();
    sessions.sort((a, b) => (sessionExpiry(a)?.getTime() ?? 0) - (sessionExpiry(b)?.getTime() ?? 0));
    const rows: Row[] = sessions.map((s) => ({ s, current: s.id !== "" && s.id === me.id }));
    if (rows.length > 0) {
      this.log(
        table(rows, [
          { header: "ID", get: (r) => `${r.s.id}${r.current ? " *" : ""}` },
          { header: "Principal", get: (r) => r.s.principalId },
          { header: "Name", get: (r) => r.s.name },
          { header: "Capabilities", get: (r) => capabilityText(r.s.capabilities) },
          { header: "Scope", get: (r) => scopeText(r.s.scope) },
          { header: "Expires", get: (r) => formatTime(sessionExpiry(r.s)) },
          ...(filtered
            ? [
                { header: "Status", get: (r: Row) => statusText(r.s) },
                { header: "Issued by", get: (r: Row) => r.s.issuedBy },
              ]
            : []),
        ]),
      );
    } else if (filtered) {
      this.logToStderr("no sessions match");
    }
    return rows.map((r) => ({ ...sessionJson(r.s), current: r.current }));
  }
}
