import { Code, ConnectError } from "@connectrpc/connect";
import {
  clientDataProblem,
  databaseCondition,
  describeCondition,
  isForeignKeyViolation,
} from "./db/sqlstate.js";
import { ERROR_CODE_HEADER, ERROR_TABLE, type ErrorCode } from "./error-table.js";
import { errnoOf } from "./util/errno.js";

export { ERROR_CODE_HEADER, ERROR_TABLE, type ErrorCode } from "./error-table.js";

/**
 * A deliberate, user-facing failure with a stable code (ERROR_TABLE), thrown by any layer (stores,
 * auth, HTTP, config) and mapped at the two boundaries. The message is safe to send to the client
 * (it names the problem, never a secret); `cause` is for logs only.
 */
export class CacheroachError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CacheroachError";
    this.code = code;
  }
}

/** Shorthand constructors for the common cases. */
export const errors = {
  badRequest: (msg: string) => new CacheroachError("ERR_BAD_REQUEST", msg),
  notFound: (msg: string) => new CacheroachError("ERR_NOT_FOUND", msg),
  precondition: (msg: string) => new CacheroachError("ERR_PRECONDITION_FAILED", msg),
  denied: (msg: string) => new CacheroachError("ERR_PERMISSION_DENIED", msg),
  unauthenticated: (msg: string) => new CacheroachError("ERR_UNAUTHENTICATED", msg),
  tooLarge: (msg: string) => new CacheroachError("ERR_TOO_LARGE", msg),
};

/** Converts any thrown value to a ConnectError for the RPC boundary. Unknown errors stay opaque. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const known = classify(err);
  const row = ERROR_TABLE[known.code];
  return new ConnectError(known.message, row.connect, codeHeaders(known.code), undefined, err);
}

/** HTTP status, safe message and extra headers (the code, Retry-After) for the HTTP boundary. */
export function toHttpError(err: unknown): {
  status: number;
  message: string;
  code: ErrorCode;
  headers: Record<string, string>;
} {
  const known = classify(err);
  return {
    status: ERROR_TABLE[known.code].http,
    message: known.message,
    code: known.code,
    headers: codeHeaders(known.code),
  };
}

/** The stable code of any thrown value, as the boundaries report it. */
export function errorCodeOf(err: unknown): ErrorCode {
  return classify(err).code;
}

function codeHeaders(code: ErrorCode): Record<string, string> {
  const retryAfter = ERROR_TABLE[code].retryAfter;
  return retryAfter
    ? { [ERROR_CODE_HEADER]: code, "retry-after": String(retryAfter) }
    : { [ERROR_CODE_HEADER]: code };
}

/** Any thrown value as a CacheroachError: itself, a translated database error, or an internal error. */
function classify(err: unknown): CacheroachError {
  return asCacheroachError(err) ?? new CacheroachError("ERR_INTERNAL", "internal error", { cause: err });
}

/** CacheroachErrors as they are; database errors with a user-facing meaning translated. */
function asCacheroachError(err: unknown): CacheroachError | undefined {
  if (err instanceof CacheroachError) return err;
  // What the request refers to (usually a tenant) was deleted meanwhile.
  if (isForeignKeyViolation(err)) {
    return new CacheroachError(
      "ERR_NOT_FOUND",
      "the tenant (or other record) this request refers to no longer exists",
    );
  }
  // A value of the request the database cannot hold (NUL in text, a too-long string, …).
  const problem = clientDataProblem(err);
  if (problem) return new CacheroachError("ERR_BAD_REQUEST", problem, { cause: err });
  // The database, not the request, is the problem: say which, and that it will pass.
  const condition = databaseCondition(err);
  if (condition) {
    const code =
      condition === "disk-full"
        ? "ERR_STORAGE_FULL"
        : condition === "read-only"
          ? "ERR_DATABASE_READ_ONLY"
          : "ERR_DATABASE_UNAVAILABLE";
    return new CacheroachError(code, describeCondition(condition), { cause: err });
  }
  return undefined;
}

/** Node's codes for a peer that went away mid-exchange. */
const DISCONNECT_CODES = new Set([
  "ECONNRESET",
  "HPE_INVALID_EOF_STATE", // the connection ended in the middle of a request
  "EPIPE",
  "ECONNABORTED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_STREAM_DESTROYED", // a response written after the client's connection was torn down
]);

/**
 * True when `err`, raised on a client's connection or request, only says that the client went
 * away (an aborted request body, a reset or closed connection while streaming): routine on a
 * busy server, logged at info, never as an error. Callers must know the error is about the
 * client's side: a database socket reset carries the same codes.
 */
export function isClientDisconnect(err: unknown): boolean {
  // connect-node wraps a failed socket write ("write EPIPE") in an internal ConnectError.
  if (err instanceof ConnectError) return err.code === Code.Canceled || isClientDisconnect(err.cause);
  if (!(err instanceof Error)) return false;
  const code = errnoOf(err);
  return err.message === "aborted" || (code !== undefined && DISCONNECT_CODES.has(code));
}
