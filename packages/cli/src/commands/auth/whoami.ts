import { Principals, type Session, Tokens } from "@cacheroach/proto";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import {
  capabilityText,
  expiryText,
  type SessionJson,
  scopeText,
  sessionExpiry,
  sessionJson,
} from "../../lib/sessions.js";

/** What `auth whoami` reports. */
export interface WhoamiResult extends SessionJson {
  server: string;
  config: string;
  /** The principal's display name, when this session may read it. */
  principalLabel: string | null;
  defaultTenant: string | null;
}

export default class AuthWhoami extends BaseCommand<typeof AuthWhoami> {
  static override summary = "Show who the config's token logs you in as.";

  static override description =
    `Asks the server (Tokens.Current) which session the config's token presents and prints its principal, session ID and name, expiry, scope (super; a principal, for login sessions; or a tenant and path, for grants) and capabilities, plus the config's server and default tenant.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Who am I?", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "As JSON, for another config",
      command: "<%= config.bin %> <%= command.id %> --json -c ./alice.cfg",
    },
  ];

  public async run(): Promise<WhoamiResult> {
    const cfg = await this.loadCliConfig();
    const current = await this.currentSession();
    // The token states capabilities, scope and name; the stored session adds note and issue time.
    let s: Session = current;
    if (current.id) {
      try {
        const stored = await (await this.client(Tokens)).load({ kind: { case: "id", value: current.id } });
        s = { ...current, note: stored.note, issuedAt: stored.issuedAt, issuedBy: stored.issuedBy };
      } catch {
        // best effort
      }
    }
    let label: string | null = null;
    try {
      const p = await (await this.client(Principals)).load({ kind: { case: "id", value: s.principalId } });
      if (p.label && p.label !== p.id) label = p.label;
    } catch {
      // a grant scoped to a location may not read its principal; the ID is enough
    }
    const rows: [string, string][] = [
      ["Server", cfg.server],
      ["Principal", `${s.principalId}${label ? ` (${label})` : ""}`],
      ["Session", s.id || "(ephemeral token: cannot be revoked, expires by itself)"],
      ["Name", s.name || "-"],
      ["Expires", expiryText(sessionExpiry(s))],
      ["Scope", scopeText(s.scope)],
      ["Capabilities", capabilityText(s.capabilities)],
    ];
    if (s.note) rows.push(["Note", s.note]);
    rows.push(["Default tenant", cfg.defaultTenant ?? "-"]);
    const w = Math.max(...rows.map(([k]) => k.length)) + 1;
    this.log(rows.map(([k, v]) => `${`${k}:`.padEnd(w)} ${v}`).join("\n"));
    return {
      server: cfg.server,
      config: this.configPath,
      ...sessionJson(s),
      principalLabel: label,
      defaultTenant: cfg.defaultTenant ?? null,
    };
  }
}
