import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type IssueResponse, Principals, Tokens } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { sessionToJson } from "../../lib/config.js";
import { checkConfigTarget, writeConfigTarget } from "../../lib/config-out.js";
import { describeError, EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { formatTime, parseDuration } from "../../lib/format.js";
import { shellWord } from "../../lib/invocation.js";
import { type Named, namedAlike, refuseDuplicate } from "../../lib/names.js";
import { type PrincipalJson, principalJson } from "../../lib/principal-json.js";
import { allCapabilities } from "../../lib/sessions.js";

/** How long a login lasts unless --validity says otherwise (and the caller's session allows). */
const DEFAULT_VALIDITY = "365d";

/** Name of the login session `principal create` issues (as the original). */
export const SELF_SESSION_NAME = "<self>";

/** What `principal create` reports. */
export interface PrincipalCreateResult extends PrincipalJson {
  /** The login config written (null for domain principals). */
  config: string | null;
  sessionId: string | null;
  expiresAt: string | null;
  /** True when the validity was shortened to the caller's own session expiry. */
  capped: boolean;
}

const SAFE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]*$/;
const DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;

export default class PrincipalCreate extends BaseCommand<typeof PrincipalCreate> {
  static override summary = "Create a user (principal) and write a login config for them.";

  static override description =
    `Creates a principal with the claims {"name": <username>, "source": "cli principal"}, issues it a login session (scope: the new principal itself, all capabilities, named "${SELF_SESSION_NAME}", valid for --validity) and writes a CLI config for it: the same server URL as your config, the new token, no default tenant. Hand that file to the user; they use it with -c <file> or copy it to ~/.cacheroach/config. Needs a super session.

The config goes to -o/--out, default ./<username>.cfg, mode 0600. An existing file is never replaced unless --force; it is checked before anything is created on the server. The login cannot outlive your own session: without --validity it lasts ${DEFAULT_VALIDITY} or until your session ends, whichever is sooner; a longer --validity is shortened to your session's expiry, and the command says so.

Commands take a principal by its name (or email) as well as by its ID, so a name already in use (ignoring case) is refused (exit 5, nothing created); --allow-duplicate creates another one anyway, whose name may then be ambiguous (IDs always work).

A new user can do nothing with files until granted access, e.g.:
  cacheroach session delegate --for <principal id> --on tenant --id <tenant id> --capabilities read,write

With --email-domain, creates a domain principal instead: it stands for everyone whose verified email is in that domain (sign-in via OIDC). Sessions delegated to it apply to all of them. It cannot log in itself, so no config is written.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Create alice; writes ./alice.cfg", command: "<%= config.bin %> <%= command.id %> alice" },
    {
      description: "Write the config elsewhere, valid for 30 days",
      command: "<%= config.bin %> <%= command.id %> bob -o /secure/bob.cfg --validity 30d",
    },
    {
      description: "A principal for everyone at example.com",
      command: "<%= config.bin %> <%= command.id %> example-staff --email-domain example.com",
    },
  ];

  static override args = {
    username: Args.string({ required: true, description: "The user's name (its label; 1..128 characters)" }),
  };

  static override flags = {
    "email-domain": Flags.string({
      summary: "Create a domain principal for this email domain (no login config).",
      helpValue: "<domain>",
      exclusive: ["out", "force"],
    }),
    out: Flags.string({
      char: "o",
      summary: "Where to write the new user's config (default ./<username>.cfg).",
      helpValue: "<file>",
    }),
    validity: Flags.string({
      summary: `How long the login is valid (e.g. 365d, 30d, 12h; default ${DEFAULT_VALIDITY}); at most as long as your own session.`,
      helpValue: "<duration>",
    }),
    force: Flags.boolean({ summary: "Replace the --out file if it exists." }),
    "allow-duplicate": Flags.boolean({
      summary: "Create it even if a principal has that name already (IDs then tell them apart).",
    }),
  };

  public async run(): Promise<PrincipalCreateResult> {
    const username = this.args.username.trim();
    if (
      username.length < 1 ||
      username.length > 128 ||
      [...username].some((c) => c < " " || c === "\u007f")
    ) {
      throw new UserError("username must be 1 to 128 printable characters", ExitCode.usage);
    }
    const domainFlag = this.flags["email-domain"];
    const domain = domainFlag?.trim().toLowerCase();
    if (domain !== undefined && !DOMAIN.test(domain)) {
      throw new UserError(`--email-domain "${domainFlag}" is not a domain name`, ExitCode.usage, [
        "e.g. --email-domain example.com",
      ]);
    }
    const validityMs = parseDuration(this.flags.validity ?? DEFAULT_VALIDITY);
    let outPath: string | undefined;
    if (domain === undefined) {
      const out = this.flags.out ?? (SAFE_FILE_NAME.test(username) ? `${username}.cfg` : undefined);
      if (out === undefined) {
        throw new UserError(`cannot name a config file after "${username}"`, ExitCode.usage, [
          "choose the file: -o <file>",
        ]);
      }
      outPath = await checkConfigTarget(out, this.flags.force, "-o/--out");
    }
    const cfg = await this.loadCliConfig();
    const principals = await this.client(Principals);
    // Listing principals needs a super session, as creating one does: a session that is not one is
    // refused here, before anything is created.
    if (!this.flags["allow-duplicate"]) {
      const all: Named[] = [];
      for await (const q of principals.list({}))
        all.push({ id: q.id, names: [q.label, q.email].filter((n) => n !== "") });
      const retry = [
        "cacheroach principal create",
        shellWord(username),
        ...(domain !== undefined ? ["--email-domain", shellWord(domain)] : []),
        ...(this.flags.out !== undefined ? ["-o", shellWord(this.flags.out)] : []),
      ].join(" ");
      refuseDuplicate(namedAlike(all, username), username, {
        kind: "principal",
        called: "named",
        list: "cacheroach principal ls",
        retry,
      });
    }
    // For a login, learn the cap first (this also checks the config works before creating anything).
    const expiry = outPath !== undefined ? await this.cappedExpiry(validityMs) : undefined;

    const created = await principals.ensure({
      principal: {
        claimsJson: JSON.stringify({ name: username, source: "cli principal" }),
        emailDomain: domain ?? "",
      },
    });
    const p = created.principal;
    if (!p?.id) throw new UserError("the server created a principal without an ID", ExitCode.failure);

    if (outPath === undefined || expiry === undefined) {
      this.log(p.id);
      this.logToStderr(
        `Created domain principal ${p.id} ("${username}") for everyone with a verified @${p.emailDomain} email.`,
      );
      this.logToStderr(
        `It has no login of its own, so no config was written. Grant its members access with: cacheroach session delegate --for ${p.id} --on tenant --id <tenant id> --capabilities read`,
      );
      return { ...principalJson(p), config: null, sessionId: null, expiresAt: null, capped: false };
    }

    const undo = async (why: unknown, sessionId?: string): Promise<never> => {
      const ue = describeError(why, this.failureContext());
      let cleanup = "the principal was removed again";
      try {
        if (sessionId) {
          await (await this.client(Tokens)).invalidate({ kind: { case: "id", value: sessionId } });
        }
        await principals.ensure({ principal: { id: p.id, version: p.version }, delete: true });
      } catch (err) {
        cleanup = `removing the principal again failed too (${describeError(err).message}); remove it with: cacheroach principal rm ${p.id} --yes`;
      }
      throw new UserError(`${ue.message}; ${cleanup}`, ue.exit, ue.suggestions, ue.code);
    };

    let issued: IssueResponse;
    try {
      issued = await (await this.client(Tokens)).issue({
        template: {
          principalId: p.id,
          capabilities: allCapabilities(),
          scope: { kind: { case: "onPrincipal", value: p.id } },
          expiresAt: expiry.expiresAt,
          name: SELF_SESSION_NAME,
          note: "cli principal create",
        },
      });
    } catch (err) {
      return undo(err);
    }
    const session = issued.issued;
    const jwt = issued.token?.jwt;
    if (!session || !jwt)
      return undo(new UserError("the server issued no session or token", ExitCode.failure));
    try {
      await writeConfigTarget(
        outPath,
        { server: cfg.server, token: jwt, session: sessionToJson(session) },
        this.flags.force,
      );
    } catch (err) {
      return undo(err, session.id);
    }

    const expiresAt = formatTime(session.expiresAt ? timestampDate(session.expiresAt) : undefined);
    this.log(p.id);
    this.logToStderr(`Created principal ${p.id} ("${username}").`);
    // Only a --validity the user chose is worth a note; the default is documented to end with
    // the caller's session (as a login made with the operator's year-long session always does).
    if (expiry.capped && this.flags.validity !== undefined) {
      this.logToStderr(
        `Note: --validity ${this.flags.validity} would outlive your own session; the login expires with it, at ${expiresAt}.`,
      );
    }
    this.logToStderr(
      `Wrote its login config ${outPath} (mode 0600; session ${session.id}, valid until ${expiresAt}).`,
    );
    this.logToStderr(
      `Grant it access: cacheroach session delegate --for ${p.id} --on tenant --id <tenant id> --capabilities read,write`,
    );
    return {
      ...principalJson(p),
      config: outPath,
      sessionId: session.id,
      expiresAt,
      capped: expiry.capped,
    };
  }
}
