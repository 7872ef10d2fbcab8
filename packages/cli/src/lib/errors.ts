/**
 * Turning failures into clear messages with a suggested fix and a stable exit code.
 */
import type { ItemError } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { Errors } from "@oclif/core";
import { ConfigInvalidError, ConfigMissingError } from "./config.js";

/** Process exit codes of the CLI (documented in every command's help). */
export const ExitCode = {
  /** Anything else. */
  failure: 1,
  /** Bad command line or input (also oclif's own parse errors). */
  usage: 2,
  /** Not logged in, token expired/revoked, or not allowed. */
  auth: 3,
  /** A named file, tenant or other object does not exist. */
  notFound: 4,
  /** A precondition (e.g. --no-clobber) or state check failed. */
  conflict: 5,
  /** Content did not verify (hash mismatch, short read). */
  integrity: 6,
  /** The server could not be reached or is unavailable. */
  unavailable: 7,
} as const;

/** Help text explaining the exit codes; appended to command descriptions. */
export const EXIT_CODES_HELP =
  "Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 not authenticated or not allowed, " +
  "4 not found, 5 precondition failed, 6 content did not verify, 7 server unreachable.";

/** An error the CLI raises itself, already phrased for the user. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exit: number = ExitCode.usage,
    readonly suggestions: string[] = [],
    readonly code?: string,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/** A content verification failure. */
export class IntegrityError extends UserError {
  constructor(message: string) {
    super(message, ExitCode.integrity, [], "integrity");
    this.name = "IntegrityError";
  }
}

const CODE_NAMES: Record<number, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** The snake_case name of a Connect code ("not_found"). */
export function codeName(code: Code): string {
  return CODE_NAMES[code] ?? `code_${code}`;
}

/** Context for describing an RPC failure: what was being done, and to what. */
export interface FailureContext {
  /** What the command was doing, e.g. `uploading /a/b.txt`. */
  action?: string;
  /** The server URL, for "cannot reach" messages. */
  server?: string;
  /** The tenant involved, if any. */
  tenant?: string;
  /** The command being run ("tenant rm"), to name it instead of the RPC it called. */
  command?: string;
}

/** Environment variable: how many seconds a call keeps being retried (default 15; 0 = never). */
export const RETRY_SECONDS_ENV = "CACHEROACH_RETRY_SECONDS";

/**
 * Metadata key marking an error the transport's retry (retry-interceptor.ts) already retried until
 * its budget ran out, so outer retry loops do not multiply the attempts.
 */
export const GAVE_UP_HEADER = "cacheroach-retries-exhausted";

/**
 * Codes worth retrying with the same input (every retried call is idempotent); not an error the
 * transport's retry interceptor already gave up on.
 */
export function isRetryable(err: unknown): boolean {
  const ce = ConnectError.from(err);
  if (ce.metadata.has(GAVE_UP_HEADER)) return false;
  switch (ce.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Aborted:
    case Code.Unknown:
    case Code.Internal:
      return true;
    case Code.ResourceExhausted:
      // A quota or a limit stays exceeded until someone acts: retrying changes nothing.
      return !isQuotaRefusal(ce);
    default:
      return false;
  }
}

/** Server codes of refusals by a tenant's quota or limit (resource_exhausted, HTTP 507). */
export const QUOTA_CODES: ReadonlySet<string> = new Set(["ERR_QUOTA_EXCEEDED", "ERR_TOO_MANY_UPLOADS"]);

/** True when the server refused a write because of a tenant's quota or open-upload limit. */
export function isQuotaRefusal(err: unknown): boolean {
  const code = serverErrorCode(ConnectError.from(err));
  return code !== undefined && QUOTA_CODES.has(code);
}

/** Metadata key (and HTTP header) under which the server sends its stable error code. */
export const SERVER_ERROR_CODE = "cacheroach-error-code";

/**
 * The server's stable error code ("ERR_SUPER_REQUIRED", "ERR_STORAGE_FULL", ...) of an RPC
 * failure, or undefined when the server sent none (an older server, or the failure never reached
 * it). The CLI decides on this, not on message text.
 */
export function serverErrorCode(err: unknown): string | undefined {
  return err instanceof ConnectError ? (err.metadata.get(SERVER_ERROR_CODE) ?? undefined) : undefined;
}

/**
 * The failure of one item of a batch call (ItemError) as the ConnectError the single-item call
 * would have thrown: the same code, and the server's stable code in the metadata.
 */
export function itemConnectError(item: Pick<ItemError, "code" | "message" | "errorCode">): ConnectError {
  return new ConnectError(
    item.message,
    codeFromString(item.code) ?? Code.Unknown,
    item.errorCode ? { [SERVER_ERROR_CODE]: item.errorCode } : undefined,
  );
}

/** The server's database conditions (its stable codes), as the CLI says them. */
const DATABASE_CONDITIONS: Record<string, string> = {
  ERR_DATABASE_UNAVAILABLE: "is unavailable",
  ERR_DATABASE_READ_ONLY: "refuses writes for now",
  ERR_STORAGE_FULL: "is out of disk space",
};

/** What to do about an unavailable server, by what it said. */
function unavailableAdvice(err: ConnectError): string[] {
  if (isNetworkError(err))
    return ["check that the server is running (cacheroach start) and the URL in the config is right"];
  const code = serverErrorCode(err);
  if (code === "ERR_STORAGE_FULL")
    return ["the server's database is out of disk space: ask its operator to free space, then retry"];
  if (code === "ERR_DATABASE_READ_ONLY")
    return ["the server's database refuses writes for now (reads still work): retry later"];
  if (code === "ERR_DATABASE_UNAVAILABLE")
    return [
      `the server runs but cannot reach its database (its /readyz says so): retry in a while; ${RETRY_SECONDS_ENV} sets how long each call keeps retrying (default 15 s)`,
    ];
  return [`retry in a moment (${RETRY_SECONDS_ENV} sets how long each call keeps retrying; default 15 s)`];
}

function isNetworkError(ce: ConnectError): boolean {
  const text = `${ce.rawMessage} ${String((ce.cause as Error | undefined)?.message ?? "")}`;
  return /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT|socket hang up|fetch failed/i.test(
    text,
  );
}

/**
 * The refusal of something only a super session may do (exit 3); `what` says what needs it
 * ("`cacheroach tenant rm` needs a super session"). Commands that can tell beforehand use it too.
 */
export function superSessionRequired(what: string, prefix = ""): UserError {
  return new UserError(
    `${prefix}permission denied: ${what}; this config's session is not one`,
    ExitCode.auth,
    [
      "only a super session may do this: run it with the operator's config (written by `cacheroach bootstrap`), e.g. -c <admin config>",
    ],
    "permission_denied",
  );
}

/**
 * Describes any error as a {@link UserError}: ConnectErrors get a message naming the problem,
 * a suggested fix and an exit code; UserErrors pass through; anything else is wrapped.
 */
export function describeError(err: unknown, ctx: FailureContext = {}): UserError {
  if (err instanceof UserError) return err;
  // A failure the CLI already explained (e.g. server-probe.ts: the URL reaches no cacheroach server).
  if (err instanceof ConnectError && err.cause instanceof UserError) return err.cause;
  if (err instanceof ConfigMissingError) {
    return new UserError(
      err.message,
      ExitCode.auth,
      ["cacheroach bootstrap <server-url> --data-dir <server data dir>"],
      "config_missing",
    );
  }
  if (err instanceof ConfigInvalidError)
    return new UserError(err.message, ExitCode.usage, [], "config_invalid");
  if (!(err instanceof ConnectError)) {
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === "object" && typeof e.code === "string" && typeof e.message === "string") {
      const exit = e.code === "ENOENT" ? ExitCode.notFound : ExitCode.failure;
      return new UserError(e.message, exit, [], e.code);
    }
    const msg = err instanceof Error ? err.message : String(err);
    return new UserError(msg, ExitCode.failure);
  }
  const prefix = ctx.action ? `${ctx.action}: ` : "";
  const where = ctx.server ? ` at ${ctx.server}` : "";
  const detail = err.rawMessage || codeName(err.code);
  const code = codeName(err.code);
  switch (err.code) {
    case Code.Unauthenticated:
      if (serverErrorCode(err) === "ERR_LOGIN_REQUIRED") {
        return new UserError(
          `${prefix}${detail}`,
          ExitCode.auth,
          [`cacheroach auth login ${ctx.server ?? "<server URL>"}`],
          code,
        );
      }
      return new UserError(
        `${prefix}not authenticated${where} (${detail}). The token in the config is missing, expired, revoked ` +
          "or signed with a key this server does not know.",
        ExitCode.auth,
        [
          "cacheroach bootstrap <server-url> --data-dir <server data dir>   (first-time setup, as the operator)",
          "cacheroach auth set <https://<token>@server/>   (use a token someone issued to you)",
        ],
        code,
      );
    case Code.PermissionDenied:
      if (serverErrorCode(err) === "ERR_NETWORK_POLICY") {
        return new UserError(
          `${prefix}permission denied: ${detail}`,
          ExitCode.auth,
          [
            "the target is not a public address; if the server's operator means it to reach private addresses, they start it with --fetch-allow-private",
          ],
          code,
        );
      }
      if (serverErrorCode(err) === "ERR_SUPER_REQUIRED") {
        // The server names its RPC ("cacheroach.v1.Tenants/Ensure needs a super session"); the
        // user ran a command.
        const what = ctx.command ? `\`cacheroach ${ctx.command}\` needs a super session` : detail;
        return superSessionRequired(what, prefix);
      }
      return new UserError(
        `${prefix}permission denied: ${detail}`,
        ExitCode.auth,
        [
          `ask an operator to delegate a session with the missing capability on ${
            ctx.tenant ? `tenant ${ctx.tenant}` : "the location"
          } (cacheroach session delegate)`,
        ],
        code,
      );
    case Code.Aborted:
      return new UserError(
        `${prefix}conflict: ${detail}`,
        ExitCode.conflict,
        [
          "it was changed or deleted meanwhile: look up its current version (tenant ls / principal ls) and retry",
        ],
        code,
      );
    case Code.NotFound:
      return new UserError(`${prefix}not found: ${detail}`, ExitCode.notFound, [], code);
    case Code.AlreadyExists:
      return new UserError(`${prefix}already exists: ${detail}`, ExitCode.conflict, [], code);
    case Code.FailedPrecondition:
      return new UserError(
        `${prefix}precondition failed: ${detail}`,
        ExitCode.conflict,
        [
          "it changed meanwhile, or was not in the state asked for: check its current version and ETag with `cacheroach file versions <path>`",
        ],
        code,
      );
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return new UserError(`${prefix}rejected by the server: ${detail}`, ExitCode.usage, [], code);
    case Code.DataLoss:
      return new UserError(`${prefix}content did not verify: ${detail}`, ExitCode.integrity, [], code);
    case Code.ResourceExhausted:
      if (serverErrorCode(err) === "ERR_QUOTA_EXCEEDED") {
        return new UserError(
          `${prefix}over quota: ${detail}`,
          ExitCode.failure,
          [
            "delete files the tenant no longer needs (space returns once garbage collection reclaims it), or ask an operator to raise the quota: cacheroach tenant set <tenant> --quota <size>",
          ],
          code,
        );
      }
      if (serverErrorCode(err) === "ERR_TOO_MANY_UPLOADS") {
        return new UserError(
          `${prefix}too many open uploads: ${detail}`,
          ExitCode.failure,
          [
            "finish or abandon uploads in progress (an abandoned one counts until it expires), or ask an operator to raise the limit: cacheroach tenant set <tenant> --max-open-uploads <n>",
          ],
          code,
        );
      }
      return new UserError(`${prefix}${code}: ${detail}`, ExitCode.failure, [], code);
    case Code.Unimplemented:
      return new UserError(
        `${prefix}the server does not implement this call (${detail})`,
        ExitCode.failure,
        ["check that the server URL points at a cacheroach server of a compatible version"],
        code,
      );
    case Code.Unavailable:
    case Code.DeadlineExceeded: {
      const db = DATABASE_CONDITIONS[serverErrorCode(err) ?? ""];
      if (db) {
        return new UserError(
          `${prefix}the server's database ${db}${where} (${detail})`,
          ExitCode.unavailable,
          unavailableAdvice(err),
          code,
        );
      }
      return new UserError(
        `${prefix}server unavailable${where}: ${detail}`,
        ExitCode.unavailable,
        unavailableAdvice(err),
        code,
      );
    }
    default:
      if (isNetworkError(err)) {
        return new UserError(
          `${prefix}cannot reach the server${where}: ${detail}`,
          ExitCode.unavailable,
          ["check that the server is running (cacheroach start) and the URL in the config is right"],
          "unavailable",
        );
      }
      return new UserError(`${prefix}${code}: ${detail}`, ExitCode.failure, [], code);
  }
}

/** Converts a {@link UserError} into oclif's printable error (message, suggestions, exit code). */
export function toCliError(err: UserError): Errors.CLIError {
  const opts: { exit: number; suggestions?: string[]; code?: string } = { exit: err.exit };
  if (err.suggestions.length > 0) opts.suggestions = err.suggestions;
  if (err.code) opts.code = err.code;
  return new Errors.CLIError(err.message, opts);
}
