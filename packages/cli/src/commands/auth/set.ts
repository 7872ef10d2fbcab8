import { Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, normalizeServerUrl } from "../../lib/base-command.js";
import {
  type CliConfig,
  ConfigMissingError,
  loadConfig,
  saveConfig,
  sessionToJson,
} from "../../lib/config.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { BAD_SERVER_URL } from "../../lib/server-probe.js";
import {
  capabilityText,
  expiryText,
  type SessionJson,
  scopeTenant,
  scopeText,
  sessionExpiry,
  sessionJson,
} from "../../lib/sessions.js";

/** What `auth set` reports. */
export interface AuthSetResult {
  server: string;
  config: string;
  session: SessionJson;
  defaultTenant: string | null;
}

/** Splits `http(s)://<token>@host:port/path` into a server URL and the token. */
export function parseTokenUrl(text: string): { server: string; token: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // No scheme ("<token>@host:port" or "host:port"): no server is reachable at that (exit 7).
    const shown = text.replace(/^(\w+:\/\/)?[^@/]*@/, "$1…@");
    const bare = text.replace(/^[^@/]*@/, "").replace(/\/.*$/, "");
    throw new UserError(
      `"${shown}" is not a URL (no scheme)`,
      ExitCode.unavailable,
      [
        `cacheroach auth set http://<token>@${bare}/`,
        `or: cacheroach auth set --server http://${bare} --token <token>`,
      ],
      BAD_SERVER_URL,
    );
  }
  if (url.password) {
    throw new UserError("put the token in the user part of the URL, without a password", ExitCode.usage, [
      "cacheroach auth set http(s)://<token>@host:port/",
    ]);
  }
  const token = decodeURIComponent(url.username);
  url.username = "";
  return { server: normalizeServerUrl(url.toString()), token };
}

export default class AuthSet extends BaseCommand<typeof AuthSet> {
  static override summary = "Log in with a token someone issued to you.";

  static override description =
    `Takes a server URL with the token in its user part, http(s)://<token>@host:port/ (the form \`cacheroach session delegate\` users share), or --server and --token. The token is checked with the server (Tokens.Current) before anything is saved; then the server URL, the token and the session it presents are written to the config (-c/--config, default ~/.cacheroach/config; mode 0600), replacing the login stored there.

The default tenant becomes the session's tenant when the token is scoped to one tenant; otherwise the config's previous default tenant is kept if it was for the same server. A rejected token changes nothing.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Use a token embedded in the URL",
      command: "<%= config.bin %> <%= command.id %> https://eyJhbGciOi...@files.example.com/",
    },
    {
      description: "Token and server separately (keeps the token out of the URL)",
      command: '<%= config.bin %> <%= command.id %> --server http://127.0.0.1:13013 --token "$TOKEN"',
    },
    {
      description: "Write a separate config instead of the default one",
      command: "<%= config.bin %> <%= command.id %> -c ./bob.cfg https://eyJhbGciOi...@files.example.com/",
    },
  ];

  static override args = {
    url: Args.string({
      description: "http(s)://<token>@host:port/ — the server URL with the token as its user part",
    }),
  };

  static override flags = {
    server: Flags.string({
      summary: "Server URL (instead of the URL argument).",
      helpValue: "<url>",
    }),
    token: Flags.string({
      env: "CACHEROACH_TOKEN",
      summary: "The token (JWT), when it is not in the URL.",
      helpValue: "<jwt>",
    }),
  };

  public async run(): Promise<AuthSetResult> {
    const { server, token } = this.serverAndToken();
    const tokens = this.clientFor(Tokens, server, token);
    let session: Awaited<ReturnType<typeof tokens.current>>;
    try {
      session = await tokens.current({});
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
        throw new UserError(
          `the server at ${server} rejected this token (${err.rawMessage}); the config was not changed`,
          ExitCode.auth,
          [
            "check that the token is complete and was issued by this server",
            "ask whoever issued it for a new one (cacheroach session delegate -o <file>)",
          ],
          "unauthenticated",
        );
      }
      throw describeError(err, { action: "checking the token", server });
    }

    const configPath = this.configPath;
    let previous: CliConfig | undefined;
    try {
      previous = await loadConfig(configPath);
    } catch (err) {
      if (!(err instanceof ConfigMissingError)) {
        this.logToStderr(`warning: replacing unusable config ${configPath} (${(err as Error).message})`);
      }
    }
    const tenant = scopeTenant(session.scope);
    const defaultTenant = tenant ?? (previous?.server === server ? previous.defaultTenant : undefined);
    const cfg: CliConfig = { server, token, session: sessionToJson(session) };
    if (defaultTenant) cfg.defaultTenant = defaultTenant;
    await saveConfig(configPath, cfg);

    this.log(`Logged in to ${server} as principal ${session.principalId}.`);
    this.log(
      `Session ${session.id || "(ephemeral)"}${session.name ? ` "${session.name}"` : ""}: ${capabilityText(session.capabilities)} on ${scopeText(session.scope)}, expires ${expiryText(sessionExpiry(session))}.`,
    );
    this.log(
      `Wrote config ${configPath} (mode 0600; ${defaultTenant ? `default tenant ${defaultTenant}` : "no default tenant"}).`,
    );
    if (!defaultTenant) {
      this.logToStderr(
        "Pick a tenant for file commands: cacheroach tenant ls, then cacheroach tenant default <id>",
      );
    }
    return {
      server,
      config: configPath,
      session: sessionJson(session),
      defaultTenant: defaultTenant ?? null,
    };
  }

  private serverAndToken(): { server: string; token: string } {
    const { url } = this.args;
    const flagServer = this.flags.server;
    const flagToken = this.flags.token;
    let server: string | undefined;
    let token: string | undefined;
    if (url !== undefined) {
      if (flagServer !== undefined) {
        throw new UserError(
          "give the server either as the URL argument or with --server, not both",
          ExitCode.usage,
        );
      }
      ({ server, token } = parseTokenUrl(url));
      if (token === "") token = undefined;
      if (token !== undefined && flagToken !== undefined && flagToken !== token) {
        throw new UserError(
          "the URL carries a token and --token gives another one; use one of them",
          ExitCode.usage,
        );
      }
    } else if (flagServer !== undefined) {
      server = normalizeServerUrl(flagServer);
    }
    token ??= flagToken;
    if (server === undefined) {
      throw new UserError("no server given", ExitCode.usage, [
        "cacheroach auth set http(s)://<token>@host:port/",
        "or: cacheroach auth set --server http(s)://host:port --token <token>",
      ]);
    }
    if (token === undefined || token.trim() === "") {
      throw new UserError(`no token given for ${server}`, ExitCode.usage, [
        `put it in the URL: cacheroach auth set ${server.replace("://", "://<token>@")}/`,
        "or pass --token <token> (or set CACHEROACH_TOKEN)",
        "no token yet? ask an operator: cacheroach principal create <you> (writes a config) or session delegate -o <file>",
      ]);
    }
    return { server, token: token.trim() };
  }
}
