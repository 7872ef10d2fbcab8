import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { WELL_KNOWN } from "@cacheroach/core";
import { Principals, Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, normalizeServerUrl } from "../lib/base-command.js";
import { saveConfig, sessionToJson } from "../lib/config.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../lib/errors.js";
import { formatTime, parseDuration } from "../lib/format.js";
import { parseSigningKeyArgs, SIGNING_KEY_ENV, signingKeyArgs } from "../lib/signing-key.js";

/** The well-known scratchpad tenant every server creates. */
export const SCRATCHPAD_TENANT = WELL_KNOWN.scratchpadTenant;

/** Name of the super session bootstrap issues. */
export const BOOTSTRAP_SESSION_NAME = "<bootstrap-super>";

/** Validity of the local, ephemeral token used only for the bootstrap calls. */
const EPHEMERAL_SECONDS = 60;

/** What `bootstrap` reports. */
export interface BootstrapResult {
  server: string;
  principalId: string;
  sessionId: string;
  expiresAt: string;
  config: string;
  defaultTenant: string;
}

export default class Bootstrap extends BaseCommand<typeof Bootstrap> {
  static override summary =
    "Create the first admin principal and a CLI config, using the server's signing key.";

  static override description =
    `For the operator of a new server. With the server's HMAC signing key (read from its data directory with --data-dir, or given with --signing-key) this command mints a one-minute super token locally, creates a principal named "root" on the server, issues it a super session (all capabilities, valid for --validity) and writes a CLI config holding the server URL, the session's token and the scratchpad tenant (${SCRATCHPAD_TENANT}) as default tenant.

The config goes to -c/--config (default ~/.cacheroach/config), mode 0600, replacing any config already there. Keep it private: it is a super token. Run it again any time to get a new one.

With neither --signing-key nor --data-dir, ./.cacheroach-data (the default data dir of \`cacheroach start\`) is used if it exists.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "On the machine running `cacheroach start` with its default data dir",
      command: "<%= config.bin %> <%= command.id %> --data-dir .cacheroach-data http://127.0.0.1:13013",
    },
    {
      description: "With the key the server was started with, writing a separate config",
      command:
        "<%= config.bin %> <%= command.id %> --signing-key @/run/secrets/hmac -c ./admin.config https://files.example.com",
    },
  ];

  static override args = {
    "server-url": Args.string({
      required: true,
      description: "The server's URL, e.g. http://127.0.0.1:13013",
    }),
  };

  static override flags = {
    "data-dir": Flags.string({
      env: "CACHEROACH_DATA_DIR",
      summary: "The server's data directory, to read its signing key from.",
      helpValue: "<dir>",
    }),
    "signing-key": Flags.string({
      summary: `The server's signing key, base64 or @file (also ${SIGNING_KEY_ENV}).`,
      helpValue: "<base64|@file>",
    }),
    validity: Flags.string({
      summary: "How long the issued super session is valid (e.g. 365d, 30d, 12h).",
      default: "365d",
    }),
  };

  public async run(): Promise<BootstrapResult> {
    const serverUrl = normalizeServerUrl(this.args["server-url"]);
    const validityMs = parseDuration(this.flags.validity);
    const server = await import("@cacheroach/server");

    let key: Uint8Array | undefined;
    const keyArgs = signingKeyArgs(this.flags["signing-key"] ? [this.flags["signing-key"]] : undefined);
    if (keyArgs.length > 0) {
      key = (await parseSigningKeyArgs(keyArgs.slice(0, 1), server.parseSigningKey))[0];
    } else {
      let dataDir = this.flags["data-dir"];
      if (dataDir === undefined) {
        const fallback = ".cacheroach-data";
        const exists = await access(fallback).then(
          () => true,
          () => false,
        );
        if (!exists) {
          throw new UserError("a signing key is required to bootstrap", ExitCode.usage, [
            "on the server machine: cacheroach bootstrap --data-dir <the server's --data-dir> <server-url>",
            "or: cacheroach bootstrap --signing-key <base64|@file> <server-url>",
          ]);
        }
        dataDir = fallback;
      }
      let keys: Uint8Array[];
      try {
        keys = await server.readSigningKeys(resolve(dataDir));
      } catch (err) {
        throw new UserError(
          `cannot read the signing key from data dir "${dataDir}": ${(err as Error).message}`,
          ExitCode.usage,
          ["point --data-dir at the directory `cacheroach start` uses, or pass --signing-key"],
        );
      }
      key = keys[0];
      if (!key) throw new UserError(`no signing key in data dir "${dataDir}"`, ExitCode.usage);
    }
    if (!key) throw new UserError("no signing key given", ExitCode.usage);

    const ephemeral = await server.mintBootstrapToken(key, EPHEMERAL_SECONDS);
    const principals = this.clientFor(Principals, serverUrl, ephemeral);
    const tokens = this.clientFor(Tokens, serverUrl, ephemeral);
    const action = (what: string) => ({ action: what, server: serverUrl });
    let principalId: string;
    try {
      const res = await principals.ensure({
        principal: { claimsJson: JSON.stringify({ name: "root", source: "cli bootstrap" }) },
      });
      principalId = res.principal?.id ?? "";
      if (!principalId) throw new UserError("the server created a principal without an ID", ExitCode.failure);
    } catch (err) {
      throw this.bootstrapError(err, action("creating the root principal"));
    }
    let issued: Awaited<ReturnType<typeof tokens.issue>>;
    try {
      issued = await tokens.issue({
        template: {
          principalId,
          capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
          scope: { kind: { case: "superToken", value: true } },
          expiresAt: timestampFromDate(new Date(Date.now() + validityMs)),
          note: "cli bootstrap",
          name: BOOTSTRAP_SESSION_NAME,
        },
      });
    } catch (err) {
      throw this.bootstrapError(err, action("issuing the super session"));
    }
    const session = issued.issued;
    const jwt = issued.token?.jwt;
    if (!session || !jwt) throw new UserError("the server issued no session or token", ExitCode.failure);

    const configPath = this.configPath;
    await saveConfig(configPath, {
      server: serverUrl,
      token: jwt,
      session: sessionToJson(session),
      defaultTenant: SCRATCHPAD_TENANT,
    });
    const expiresAt = formatTime(session.expiresAt ? timestampDate(session.expiresAt) : undefined);
    const result: BootstrapResult = {
      server: serverUrl,
      principalId,
      sessionId: session.id,
      expiresAt,
      config: configPath,
      defaultTenant: SCRATCHPAD_TENANT,
    };
    this.log(`Created principal ${principalId} ("root") on ${serverUrl}.`);
    this.log(`Issued super session ${session.id}, valid until ${expiresAt}.`);
    this.log(`Wrote config ${configPath} (mode 0600; default tenant ${SCRATCHPAD_TENANT}).`);
    this.log("");
    this.log("Try it: cacheroach file put / ./some-file && cacheroach file ls -w");
    return result;
  }

  private bootstrapError(err: unknown, ctx: { action: string; server: string }): UserError {
    return describeBootstrap(err, ctx);
  }
}

/** Bootstrap failures are usually a key mismatch or a wrong URL: say so. */
function describeBootstrap(err: unknown, ctx: { action: string; server: string }): UserError {
  if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
    return new UserError(
      `${ctx.action}: the server at ${ctx.server} rejected the bootstrap token (${err.rawMessage})`,
      ExitCode.auth,
      [
        "the signing key must be the one the server uses: check --data-dir / --signing-key and the server URL",
      ],
      "unauthenticated",
    );
  }
  return describeError(err, ctx);
}
