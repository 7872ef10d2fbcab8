import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { WELL_KNOWN } from "@cacheroach/core";
import { Principals, Tokens } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, normalizeServerUrl } from "../lib/base-command.js";
import { saveConfig, sessionToJson } from "../lib/config.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../lib/errors.js";
import { formatTime, parseDuration } from "../lib/format.js";
import { selfCommand, shellWord } from "../lib/invocation.js";
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
  /** True when an existing "root" principal got the new session (an earlier bootstrap made it). */
  reusedPrincipal: boolean;
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

The config goes to -c/--config (default ~/.cacheroach/config), mode 0600. An existing config there is never replaced unless --force (exit 5 before anything is done on the server): it may hold someone's only login. Keep the config private: it is a super token.

Run it again any time to get a new super session: the existing "root" principal (the one an earlier bootstrap created) is reused, never duplicated; only the session and the config are new.

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
    force: Flags.boolean({ summary: "Replace the config file if it exists." }),
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

    const configPath = this.configPath;
    if (!this.flags.force && (await exists(configPath))) {
      throw new UserError(`the config ${configPath} already exists; it was not changed`, ExitCode.conflict, [
        `write another one: ${selfCommand()} bootstrap -c <new file> ${shellWord(this.args["server-url"])} …`,
        "or pass --force to replace it (its login is lost unless saved elsewhere)",
      ]);
    }

    const ephemeral = await server.mintBootstrapToken(key, EPHEMERAL_SECONDS);
    const principals = this.clientFor(Principals, serverUrl, ephemeral);
    const tokens = this.clientFor(Tokens, serverUrl, ephemeral);
    const action = (what: string) => ({ action: what, server: serverUrl });
    let principalId = "";
    try {
      principalId = (await findRoot(principals)) ?? "";
    } catch (err) {
      throw this.bootstrapError(err, action("looking for the root principal"));
    }
    const reused = principalId !== "";
    if (!reused) {
      try {
        const res = await principals.ensure({
          principal: { claimsJson: JSON.stringify({ name: ROOT_NAME, source: ROOT_SOURCE }) },
        });
        principalId = res.principal?.id ?? "";
        if (!principalId)
          throw new UserError("the server created a principal without an ID", ExitCode.failure);
      } catch (err) {
        throw this.bootstrapError(err, action("creating the root principal"));
      }
    }
    const issue = (name: string) =>
      tokens.issue({
        template: {
          principalId,
          capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
          scope: { kind: { case: "superToken", value: true } },
          expiresAt: timestampFromDate(new Date(Date.now() + validityMs)),
          note: "cli bootstrap",
          name,
        },
      });
    let issued: Awaited<ReturnType<typeof tokens.issue>>;
    try {
      try {
        issued = await issue(BOOTSTRAP_SESSION_NAME);
      } catch (err) {
        // Session names are unique per principal: a reused root already has one of this name
        // (its earlier sessions stay valid; revoke them with `session rm` if they are not wanted).
        if (!(err instanceof ConnectError) || err.code !== Code.AlreadyExists) throw err;
        issued = await issue(`${BOOTSTRAP_SESSION_NAME} ${new Date().toISOString()}`);
      }
    } catch (err) {
      throw this.bootstrapError(err, action("issuing the super session"));
    }
    const session = issued.issued;
    const jwt = issued.token?.jwt;
    if (!session || !jwt) throw new UserError("the server issued no session or token", ExitCode.failure);

    try {
      await saveConfig(
        configPath,
        { server: serverUrl, token: jwt, session: sessionToJson(session), defaultTenant: SCRATCHPAD_TENANT },
        { exclusive: !this.flags.force },
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      throw new UserError(
        `${configPath} appeared while bootstrap ran; it was not changed`,
        ExitCode.conflict,
        ["pass --force to replace it"],
      );
    }
    const expiresAt = formatTime(session.expiresAt ? timestampDate(session.expiresAt) : undefined);
    const result: BootstrapResult = {
      server: serverUrl,
      principalId,
      reusedPrincipal: reused,
      sessionId: session.id,
      expiresAt,
      config: configPath,
      defaultTenant: SCRATCHPAD_TENANT,
    };
    this.log(`${reused ? "Reused" : "Created"} principal ${principalId} ("root") on ${serverUrl}.`);
    this.log(`Issued super session ${session.id}, valid until ${expiresAt}.`);
    this.log(`Wrote config ${configPath} (mode 0600; default tenant ${SCRATCHPAD_TENANT}).`);
    this.log("");
    const self = selfCommand();
    this.log(`Try it: ${self} file put / ./some-file && ${self} file ls -w`);
    return result;
  }

  private bootstrapError(err: unknown, ctx: { action: string; server: string }): UserError {
    return describeBootstrap(err, ctx);
  }
}

/** The claims of the principal bootstrap creates. */
const ROOT_NAME = "root";
const ROOT_SOURCE = "cli bootstrap";

/**
 * The existing "root" principal (a user principal named "root"), or undefined. One an earlier
 * bootstrap created (source "cli bootstrap") is preferred; among several, the lowest ID.
 */
async function findRoot(principals: Client<typeof Principals>): Promise<string | undefined> {
  const ours: string[] = [];
  const others: string[] = [];
  for await (const p of principals.list({})) {
    if (p.emailDomain !== "") continue;
    let claims: { name?: unknown; source?: unknown } = {};
    try {
      claims = JSON.parse(p.claimsJson || "{}") as typeof claims;
    } catch {}
    if (claims.name !== ROOT_NAME) continue;
    (claims.source === ROOT_SOURCE ? ours : others).push(p.id);
  }
  return ours.sort()[0] ?? others.sort()[0];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
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
