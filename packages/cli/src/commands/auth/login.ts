import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { SessionSchema, Tokens } from "@cacheroach/proto";
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
import { parseDuration } from "../../lib/format.js";
import {
  capabilityText,
  expiryText,
  type SessionJson,
  scopeText,
  sessionExpiry,
  sessionJson,
} from "../../lib/sessions.js";

/** What `auth login` reports. */
export interface AuthLoginResult {
  server: string;
  config: string;
  session: SessionJson;
}

/** The largest form the loopback listener accepts (a CLI config). */
const MAX_FORM_BYTES = 64 * 1024;

export default class AuthLogin extends BaseCommand<typeof AuthLogin> {
  static override summary = "Log in with your company identity (OIDC) in a browser.";

  static override description =
    `For servers started with --oidc-issuer. The CLI listens on a random port of 127.0.0.1 and opens <server>/_/v0/provision?port=<port>&state=<random> in the system browser (with --no-browser, or when no browser can be started, e.g. over ssh, it prints the URL for you to open). You sign in at the identity provider; the server then issues a login session for this CLI and the browser hands it to the waiting CLI by posting it to http://127.0.0.1:<port>/ together with the random state (anything else is refused). No copy-paste: the config (-c/--config, default ~/.cacheroach/config) is written with mode 0600, keeping its default tenant when it was for the same server.

The browser must run on the same computer as the CLI (it posts to 127.0.0.1). Without a login within --timeout (default 5m) the command fails and changes nothing. \`cacheroach auth logout\` revokes the session again.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Log in (opens the browser)",
      command: "<%= config.bin %> <%= command.id %> https://files.example.com",
    },
    {
      description: "Print the URL instead (e.g. to open it in the browser of this computer yourself)",
      command: "<%= config.bin %> <%= command.id %> --no-browser https://files.example.com",
    },
  ];

  static override args = {
    url: Args.string({ description: "The server's URL, e.g. https://files.example.com", required: true }),
  };

  static override flags = {
    browser: Flags.boolean({
      summary: "Open the login page in the system browser (--no-browser prints its URL only).",
      default: true,
      allowNo: true,
    }),
    timeout: Flags.string({
      summary: "How long to wait for the login in the browser.",
      default: "5m",
      helpValue: "<duration>",
    }),
  };

  public async run(): Promise<AuthLoginResult> {
    const server = normalizeServerUrl(this.args.url);
    const timeoutMs = parseDuration(this.flags.timeout);
    if (timeoutMs < 1000)
      throw new UserError(
        `--timeout ${this.flags.timeout} is not a duration of at least 1s (e.g. 90s, 5m)`,
        ExitCode.usage,
      );
    await this.checkOidc(server);

    const state = randomBytes(24).toString("base64url");
    const waiter = await listenForLogin(state, timeoutMs, this.flags.timeout);
    let posted: { token: string; session: JsonValue | undefined };
    try {
      const url = `${server}/_/v0/provision?port=${waiter.port}&state=${state}`;
      const opened = this.flags.browser && openBrowser(url);
      this.logToStderr(
        opened
          ? `Opening the login page in your browser. If it does not open, visit:\n  ${url}`
          : `Open this URL in a browser on this computer to log in:\n  ${url}`,
      );
      this.logToStderr(`Waiting up to ${this.flags.timeout} for the login…`);
      posted = await waiter.result;
    } finally {
      waiter.close();
    }

    const tokens = this.clientFor(Tokens, server, posted.token);
    let session: Awaited<ReturnType<typeof tokens.current>>;
    try {
      session = await tokens.current({});
    } catch (err) {
      throw describeError(err, { action: "checking the new login", server });
    }
    const configPath = this.configPath;
    let previous: CliConfig | undefined;
    try {
      previous = await loadConfig(configPath);
    } catch (err) {
      if (!(err instanceof ConfigMissingError))
        this.logToStderr(`warning: replacing unusable config ${configPath} (${(err as Error).message})`);
    }
    const cfg: CliConfig = { server, token: posted.token, session: sessionToJson(session) };
    if (previous?.server === server && previous.defaultTenant) cfg.defaultTenant = previous.defaultTenant;
    await saveConfig(configPath, cfg);
    this.log(`Logged in to ${server} as principal ${session.principalId}.`);
    this.log(
      `Session ${session.id}: ${capabilityText(session.capabilities)} on ${scopeText(session.scope)}, expires ${expiryText(sessionExpiry(session))}.`,
    );
    this.log(`Wrote config ${configPath} (mode 0600).`);
    if (!cfg.defaultTenant)
      this.logToStderr(
        "Pick a tenant for file commands: cacheroach tenant ls, then cacheroach tenant default <id>",
      );
    return { server, config: configPath, session: sessionJson(session) };
  }

  /** Fails early, with the server's own words, when it has no OIDC login. */
  private async checkOidc(server: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${server}/_/oidc/login`, { redirect: "manual" });
    } catch (err) {
      throw new UserError(
        `cannot reach ${server}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`,
        ExitCode.unavailable,
        ["check the URL and that the server is running"],
      );
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 501)
      throw new UserError(
        `${server} has no OIDC login (its operator has not configured --oidc-issuer)`,
        ExitCode.auth,
        ["ask for a token instead and use it with: cacheroach auth set"],
      );
    if (res.status !== 302)
      throw new UserError(
        `${server} did not start a login (HTTP ${res.status} from /_/oidc/login): is it a cacheroach server?`,
      );
  }
}

/** Starts `url` in the system's browser; false when none could be started. */
function openBrowser(url: string): boolean {
  const [cmd, args] =
    process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
        ? ["cmd", ["/c", "start", "", url]]
        : ["xdg-open", [url]];
  if (process.platform === "linux" && !process.env["DISPLAY"] && !process.env["WAYLAND_DISPLAY"])
    return false;
  try {
    const child = spawn(cmd as string, args as string[], { detached: true, stdio: "ignore" });
    child.on("error", () => {});
    child.unref();
    return true;
  } catch {
    return false;
  }
}

/**
 * A listener on 127.0.0.1 for the browser's hand-off: a form POST with `state` (must be ours) and
 * `config` (the CLI config the server issued). Settles with the config, or fails at the timeout.
 */
async function listenForLogin(
  state: string,
  timeoutMs: number,
  timeoutText: string,
): Promise<{
  port: number;
  result: Promise<{ token: string; session: JsonValue | undefined }>;
  close(): void;
}> {
  let settle!: (v: { token: string; session: JsonValue | undefined }) => void;
  let fail!: (e: Error) => void;
  const result = new Promise<{ token: string; session: JsonValue | undefined }>((res, rej) => {
    settle = res;
    fail = rej;
  });
  const server: Server = createServer((req, res) => {
    handleHandoff(req, res, state).then(
      (got) => {
        if (got) settle(got);
      },
      () => answer(res, 400, "The login could not be read."),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const timer = setTimeout(
    () =>
      fail(
        new UserError(
          `no login arrived within ${timeoutText}; nothing was changed`,
          ExitCode.auth,
          ["run the command again and finish the login in the browser in time (or give a longer --timeout)"],
          "timeout",
        ),
      ),
    timeoutMs,
  );
  return {
    port: (server.address() as AddressInfo).port,
    result,
    close() {
      clearTimeout(timer);
      server.closeAllConnections();
      server.close();
    },
  };
}

async function handleHandoff(
  req: IncomingMessage,
  res: ServerResponse,
  state: string,
): Promise<{ token: string; session: JsonValue | undefined } | undefined> {
  if (req.method !== "POST") {
    answer(res, 405, "This is cacheroach auth login waiting for its login; nothing to see here.");
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      answer(res, 413, "Too large.");
      return undefined;
    }
    chunks.push(chunk);
  }
  const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
  if (form.get("state") !== state) {
    answer(res, 400, "This login is not for this cacheroach auth login (wrong state); it was ignored.");
    return undefined;
  }
  const config = JSON.parse(form.get("config") ?? "") as { token?: unknown; session?: JsonValue };
  if (typeof config.token !== "string" || config.token === "") throw new Error("no token");
  if (config.session !== undefined) fromJson(SessionSchema, config.session); // validates its shape
  answer(
    res,
    200,
    "You are logged in: cacheroach auth login has its session. You can close this window now.",
  );
  return { token: config.token, session: config.session };
}

function answer(res: ServerResponse, status: number, text: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>cacheroach</title></head><body><p id="cli-result">${text}</p></body></html>\n`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(Buffer.byteLength(html)),
    "content-security-policy": "default-src 'none'",
    "cache-control": "no-store",
  });
  res.end(html);
}
