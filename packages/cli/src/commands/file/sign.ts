import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { Files } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { absoluteUrl } from "../../lib/download.js";
import { describeError, EXIT_CODES_HELP, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { formatTime, parseDuration, table } from "../../lib/format.js";
import { checkRemotePath } from "../../lib/paths.js";
import { roughDuration } from "../../lib/sessions.js";

/** One line of `file sign` output. */
export type SignResult =
  | {
      status: "ok";
      path: string;
      url: string;
      expiresAt: string;
      /** The pinned version, or null when the URL serves whatever version is latest. */
      version: number | null;
      file: FileJson;
    }
  | { status: "error"; path: string; error: string; code: string | undefined };

export default class FileSign extends BaseCommand<typeof FileSign> {
  static override summary = "Print signed, expiring download URLs that need no login.";

  static override description =
    `Mints a signed URL for each file (Files.Retrieve): anyone holding it can GET the file over plain HTTP (curl, a browser; Range requests work) until it expires, without a token of their own. The URL is read-only and names one file; it serves the latest version at the time of the request, or with --version exactly that version.

A URL never outlives the session it was signed under, nor the server's maximum validity; when the expiry comes out earlier than --validity asked for, a note says so. Revoking your session (\`cacheroach auth logout\`, \`session rm\`) revokes its URLs too. Needs read on each path.

Every path is attempted; the command exits non-zero if any failed.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "A URL valid for a day", command: "<%= config.bin %> <%= command.id %> /docs/report.pdf" },
    {
      description: "Valid one hour, for version 3 only",
      command: "<%= config.bin %> <%= command.id %> --validity 1h --version 3 /docs/report.pdf",
    },
    {
      description: "Download with curl",
      command: 'curl -fO "$(<%= config.bin %> <%= command.id %> --json /a.txt | jq -r ".[0].url")"',
    },
  ];

  static override strict = false;

  static override usage = "<%= command.id %> PATH... [--validity 24h] [--version N] [-t <tenant>] [--json]";

  static override args = {
    path: Args.string({ required: true, description: "Absolute remote file paths (one or more)" }),
  };

  static override flags = {
    tenant: tenantFlag,
    validity: Flags.string({ summary: "How long each URL is valid (e.g. 24h, 30m, 7d).", default: "24h" }),
    version: Flags.integer({ summary: "Pin the URL to this version of the file.", min: 1 }),
  };

  public async run(): Promise<SignResult[] | undefined> {
    const paths = this.positionals.map((p) => checkRemotePath(p));
    const validityMs = parseDuration(this.flags.validity);
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const cfg = await this.loadCliConfig();
    const files = await this.client(Files);
    const version = this.flags.version !== undefined ? BigInt(this.flags.version) : 0n;
    const results: SignResult[] = [];
    let firstError: UserError | undefined;
    let shortened = false;
    for (const path of paths) {
      try {
        const res = await files.retrieve({ tenantId, path, version, validFor: durationFromMs(validityMs) });
        const expires = res.expiresAt ? timestampDate(res.expiresAt) : undefined;
        if (expires && expires.getTime() < Date.now() + validityMs - 5_000) shortened = true;
        results.push({
          status: "ok",
          path,
          url: absoluteUrl(cfg.server, res.getUri),
          expiresAt: formatTime(expires),
          version: version > 0n ? Number(version) : null,
          file: fileJson(res.file!),
        });
      } catch (e) {
        const err = await this.explainNotFound(e, tenantId);
        if (err instanceof UserError) throw err; // the tenant is missing: every path would fail
        const ue = describeError(err, { ...this.failureContext(), tenant: tenantId });
        if (paths.length === 1) throw ue;
        firstError ??= ue;
        results.push({ status: "error", path, error: ue.message, code: ue.code });
      }
    }
    if (shortened) {
      const first = results.find((r) => r.status === "ok");
      this.logToStderr(
        `Note: the URLs expire before --validity ${this.flags.validity} (at ${first?.status === "ok" ? first.expiresAt : "?"}, in ${
          first?.status === "ok" ? roughDuration(Date.parse(first.expiresAt) - Date.now()) : "?"
        }): a URL cannot outlive your session or the server's maximum.`,
      );
    }
    if (this.jsonEnabled()) {
      if (!firstError) return results;
      this.logJson(results);
      process.exitCode = firstError.exit;
      return undefined;
    }
    this.log(
      table(results, [
        { header: "Path", get: (r) => r.path },
        { header: "Expires", get: (r) => (r.status === "ok" ? r.expiresAt : "-") },
        { header: "URL", get: (r) => (r.status === "ok" ? r.url : `error: ${r.error}`) },
      ]),
    );
    if (firstError) {
      const failed = results.filter((r) => r.status === "error").length;
      throw new UserError(`${failed} of ${paths.length} paths could not be signed`, firstError.exit);
    }
    return results;
  }
}
