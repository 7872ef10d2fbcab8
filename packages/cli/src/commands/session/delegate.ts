import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type IssueResponse, type ScopeSchema, Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { configSession, sessionToJson } from "../../lib/config.js";
import { checkConfigTarget, writeConfigTarget } from "../../lib/config-out.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { formatTime, parseDuration } from "../../lib/format.js";
import {
  capabilityText,
  checkPathPattern,
  parseCapabilities,
  type SessionJson,
  scopeText,
  sessionJson,
} from "../../lib/sessions.js";

/** What `session delegate` reports. */
export interface DelegateResult extends SessionJson {
  /** The config written with --out, if any. */
  config: string | null;
  /** True when the duration was shortened to the caller's own session expiry. */
  capped: boolean;
}

export default class SessionDelegate extends BaseCommand<typeof SessionDelegate> {
  static override summary =
    "Grant a principal capabilities on a tenant path (or a principal, or everything).";

  static override description =
    `Issues a session (Tokens.Issue) owned by --for, with --capabilities on a scope:
  --on tenant     a location: tenant --id (default: the config's default tenant) and --path (default "/*", the whole tenant; "/dir/*" is everything below /dir/; an exact path is just that file)
  --on principal  acting for principal --id (default: --for): a login-like session
  --on super      everything (only a super session may issue one)

A session owned by someone else is a grant: it extends what that principal's own logins may do, so they need no new token. It cannot exceed your own authority (capabilities, scope) and cannot outlive your session: a longer --duration is shortened to your session's expiry, and the command says so.

Prints the new session's ID. With -o/--out it also writes a CLI config presenting the new session's token (the same server URL; default tenant = its tenant for --on tenant) — e.g. a read-only token for a CI job. The file is never replaced unless --force. Revoke with \`cacheroach session rm <id>\`.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Let alice read and write everything in a tenant",
      command:
        "<%= config.bin %> <%= command.id %> --for 6f1d2c3b-0000-4000-8000-000000000002 --on tenant --id 5b3c2d4e-0000-4000-8000-000000000001 --capabilities read,write",
    },
    {
      description: "A read-only config for /reports/ in the default tenant, valid one week",
      command:
        '<%= config.bin %> <%= command.id %> --path "/reports/*" --duration 7d --name ci-reports -o ci.cfg',
    },
    {
      description: "Make a tenant public (the well-known unauthenticated principal may read it over HTTP)",
      command:
        "<%= config.bin %> <%= command.id %> --for 0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f --on tenant --id 5b3c2d4e-0000-4000-8000-000000000001",
    },
  ];

  static override flags = {
    for: Flags.string({
      summary: "The principal that will own the session: its ID, name or email (default: yours).",
      helpValue: "<principal>",
    }),
    on: Flags.string({
      summary: "What the session applies to.",
      options: ["tenant", "principal", "super"],
      default: "tenant",
    }),
    id: Flags.string({
      summary:
        "The tenant (--on tenant; default: the config's default tenant) or principal (--on principal; default: --for): an ID or a name.",
      helpValue: "<id|name>",
    }),
    path: Flags.string({
      summary: 'Path in the tenant: "/*", "/dir/*" or an exact file path (--on tenant only).',
      default: "/*",
    }),
    capabilities: Flags.string({
      summary: "Comma-separated read, write, delegate, pii, fetch — or all.",
      default: "read",
      helpValue: "<list|all>",
    }),
    duration: Flags.string({
      summary: "How long the session is valid (e.g. 24h, 7d); at most as long as your own session.",
      default: "24h",
    }),
    name: Flags.string({ summary: "A name, unique among the owner's active sessions.", default: "" }),
    note: Flags.string({ summary: "A note for humans.", default: "" }),
    out: Flags.string({
      char: "o",
      summary: "Also write a CLI config for the new session to this file.",
      helpValue: "<file>",
    }),
    force: Flags.boolean({ summary: "Replace the --out file if it exists." }),
  };

  public async run(): Promise<DelegateResult> {
    const f = this.flags;
    const caps = parseCapabilities(f.capabilities);
    const durationMs = parseDuration(f.duration);
    if (f.on !== "tenant" && f.path !== "/*") {
      throw new UserError(`--path applies to --on tenant only (not --on ${f.on})`, ExitCode.usage);
    }
    if (f.on === "super" && f.id !== undefined) {
      throw new UserError("--on super takes no --id: it covers everything", ExitCode.usage);
    }
    const path = checkPathPattern(f.path);
    if (f.name.length > 128 || f.note.length > 1024) {
      throw new UserError("--name may have at most 128 characters and --note 1024", ExitCode.usage);
    }
    const outPath = f.out !== undefined ? await checkConfigTarget(f.out, f.force, "-o/--out") : undefined;

    let tenantId: string | undefined;
    if (f.on === "tenant") {
      if (f.id !== undefined) tenantId = await this.tenantId(f.id, "--id");
      else {
        const cfg = await this.loadCliConfig();
        const sc = configSession(cfg)?.scope?.kind;
        tenantId = cfg.defaultTenant ?? (sc?.case === "onLocation" ? sc.value.tenantId : undefined);
        if (!tenantId) {
          throw new UserError("--id <tenant id> required: the config has no default tenant", ExitCode.usage, [
            "list tenants with `cacheroach tenant ls`",
            "or set a default: cacheroach tenant default <tenant id>",
          ]);
        }
      }
    }

    const forId = f.for !== undefined ? await this.principalId(f.for, "--for") : undefined;
    const cfg = await this.loadCliConfig();
    const me = await this.currentSession();
    const owner = forId ?? me.principalId;
    let scope: MessageInitShape<typeof ScopeSchema>;
    if (f.on === "tenant") scope = { kind: { case: "onLocation", value: { tenantId: tenantId!, path } } };
    else if (f.on === "principal") {
      const target = f.id !== undefined ? await this.principalId(f.id, "--id") : owner;
      scope = { kind: { case: "onPrincipal", value: target } };
    } else scope = { kind: { case: "superToken", value: true } };

    const expiry = await this.cappedExpiry(durationMs);
    let issued: IssueResponse;
    try {
      issued = await (await this.client(Tokens)).issue({
        template: {
          principalId: owner,
          capabilities: caps,
          scope,
          expiresAt: expiry.expiresAt,
          name: f.name.trim(),
          note: f.note,
        },
        // Never longer than the authority it comes from: the server shortens it if need be.
        capExpiry: true,
      });
    } catch (err) {
      throw await this.explainIssue(err, owner, tenantId);
    }
    const session = issued.issued;
    if (!session) throw new UserError("the server issued no session", ExitCode.failure);

    if (outPath !== undefined) {
      const jwt = issued.token?.jwt;
      if (!jwt)
        throw new UserError(`the server returned no token for session ${session.id}`, ExitCode.failure);
      try {
        await writeConfigTarget(
          outPath,
          {
            server: cfg.server,
            token: jwt,
            session: sessionToJson(session),
            ...(tenantId ? { defaultTenant: tenantId } : {}),
          },
          f.force,
        );
      } catch (err) {
        // Nobody holds the token now: revoke the session rather than leave it dangling.
        await (await this.client(Tokens))
          .invalidate({ kind: { case: "id", value: session.id } })
          .catch(() => {});
        throw err;
      }
    }

    const expiresAt = formatTime(session.expiresAt ? timestampDate(session.expiresAt) : undefined);
    this.log(session.id);
    this.logToStderr(
      `Issued session ${session.id} to principal ${session.principalId}: ${capabilityText(session.capabilities)} on ${scopeText(session.scope)}, until ${expiresAt}.`,
    );
    // Shortened by this command (to the caller's own expiry) or by the server (to the grant the
    // caller delegates from, which may end earlier).
    const shortened =
      session.expiresAt !== undefined &&
      timestampDate(session.expiresAt).getTime() < timestampDate(expiry.expiresAt).getTime();
    if (expiry.capped && !shortened) {
      this.logToStderr(
        `Note: --duration ${f.duration} would outlive your own session; it expires with it, at ${expiresAt}.`,
      );
    } else if (shortened) {
      this.logToStderr(
        `Note: --duration ${f.duration} would outlive the grant you delegate from (session ${session.authorityId || session.issuedBy}); it expires with it, at ${expiresAt}.`,
      );
    }
    if (outPath !== undefined) this.logToStderr(`Wrote config ${outPath} (mode 0600).`);
    return { ...sessionJson(session), config: outPath ?? null, capped: expiry.capped || shortened };
  }

  /** Turns Issue failures into messages that say which input was wrong. */
  private async explainIssue(err: unknown, owner: string, tenantId: string | undefined): Promise<unknown> {
    if (!(err instanceof ConnectError)) return err;
    if (err.code === Code.AlreadyExists) {
      return new UserError(
        `${err.rawMessage}; nothing was issued`,
        ExitCode.conflict,
        [
          "choose another --name",
          "or revoke the old session first: cacheroach session ls, then cacheroach session rm <id>",
        ],
        "already_exists",
      );
    }
    if (err.code === Code.NotFound) {
      if (tenantId && (await this.tenantProblem(tenantId))) {
        return new UserError(
          `tenant ${tenantId} does not exist; nothing was issued`,
          ExitCode.notFound,
          ["list tenants with `cacheroach tenant ls`"],
          "tenant_not_found",
        );
      }
      return new UserError(
        `principal ${owner} (or the tenant) does not exist; nothing was issued`,
        ExitCode.notFound,
        ["list principals with `cacheroach principal ls`"],
        "not_found",
      );
    }
    return err;
  }
}
