import { Tokens } from "@cacheroach/proto";
import { BaseCommand } from "../../lib/base-command.js";
import { saveConfig } from "../../lib/config.js";
import { describeError, EXIT_CODES_HELP } from "../../lib/errors.js";

/** What `auth logout` reports. */
export interface LogoutResult {
  config: string;
  server: string;
  /** True when the server revoked the session; false when that failed (see warning). */
  revoked: boolean;
  warning: string | null;
}

export default class AuthLogout extends BaseCommand<typeof AuthLogout> {
  static override summary = "Revoke the config's session and remove its token from the config.";

  static override description =
    `Asks the server to revoke the session the config's token presents (Tokens.Invalidate with current), so copies of the token stop working too, then removes the token and session from the config. The server URL and default tenant stay, so \`cacheroach auth set\` can log in again.

If the server cannot revoke the session (unreachable, token already expired or revoked, or an ephemeral token), a warning says so and the token is removed from the config anyway.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Log out", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Log out of another config",
      command: "<%= config.bin %> <%= command.id %> -c ./alice.cfg",
    },
  ];

  public async run(): Promise<LogoutResult> {
    const cfg = await this.loadCliConfig();
    const configPath = this.configPath;
    if (cfg.token === "") {
      this.log(`Already logged out: ${configPath} holds no token.`);
      return { config: configPath, server: cfg.server, revoked: false, warning: "no token in the config" };
    }
    let warning: string | null = null;
    try {
      await (await this.client(Tokens)).invalidate({ kind: { case: "current", value: true } });
    } catch (err) {
      const ue = describeError(err, { action: "revoking the session", server: cfg.server });
      warning = `${ue.message}. The token was removed from the config, but the server may still accept copies of it until it expires.`;
      this.logToStderr(`warning: ${warning}`);
    }
    const next = {
      server: cfg.server,
      token: "",
      ...(cfg.defaultTenant ? { defaultTenant: cfg.defaultTenant } : {}),
    };
    await saveConfig(configPath, next);
    this.log(
      `${warning ? "Removed the token" : "Revoked the session and removed its token"} from ${configPath}.`,
    );
    return { config: configPath, server: cfg.server, revoked: warning === null, warning };
  }
}
