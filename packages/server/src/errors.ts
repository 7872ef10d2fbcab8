import { Code, ConnectError } from "@connectrpc/connect";
import {
  clientDataProblem,
  databaseCondition,
  describeCondition,
  isForeignKeyViolation,
} from "./db/sqlstate.js";
import { errnoOf } from "./util/errno.js";

/**
 * Stable codes of every error the server reports. Each maps to one Connect code and one HTTP
 * status (see {@link ERROR_TABLE}); the two boundaries (RPC, HTTP) apply that table and send the
 * code itself along ({@link ERROR_CODE_HEADER}), so clients switch on it, never on message text.
 */
export type ErrorCode =
  | "ERR_BAD_REQUEST"
  | "ERR_BAD_PATH"
  | "ERR_BAD_ID"
  | "ERR_NOT_FOUND"
  | "ERR_PRECONDITION_FAILED"
  | "ERR_RANGE_NOT_SATISFIABLE"
  | "ERR_ALREADY_EXISTS"
  | "ERR_TOO_LARGE"
  | "ERR_UNAUTHENTICATED"
  | "ERR_PERMISSION_DENIED"
  | "ERR_BAD_UPLOAD_STATE"
  | "ERR_UPLOAD_EXPIRED"
  | "ERR_HASH_MISMATCH"
  | "ERR_VERSION_SKEW"
  | "ERR_CONTENT_COLLECTED"
  | "ERR_METHOD_NOT_ALLOWED"
  | "ERR_UNAVAILABLE"
  | "ERR_DATA_LOSS"
  | "ERR_DATABASE_UNAVAILABLE"
  | "ERR_DATABASE_READ_ONLY"
  | "ERR_STORAGE_FULL"
  | "ERR_QUOTA_EXCEEDED"
  | "ERR_TOO_MANY_UPLOADS"
  | "ERR_SUPER_REQUIRED"
  | "ERR_NETWORK_POLICY"
  | "ERR_UNKNOWN_METHOD"
  | "ERR_LOGIN_REQUIRED"
  | "ERR_OIDC_OFF"
  | "ERR_INTERNAL";

/**
 * How each error code is reported over RPC and HTTP; `retryAfter` (seconds) is sent as a
 * Retry-After header (HTTP) or metadata (RPC) with failures that go away by themselves.
 */
export const ERROR_TABLE: Readonly<Record<ErrorCode, { connect: Code; http: number; retryAfter?: number }>> =
  {
    ERR_BAD_REQUEST: { connect: Code.InvalidArgument, http: 400 },
    ERR_BAD_PATH: { connect: Code.InvalidArgument, http: 400 },
    ERR_BAD_ID: { connect: Code.InvalidArgument, http: 400 },
    ERR_NOT_FOUND: { connect: Code.NotFound, http: 404 },
    ERR_PRECONDITION_FAILED: { connect: Code.FailedPrecondition, http: 412 },
    // A byte range entirely past the end of the file (HTTP Range).
    ERR_RANGE_NOT_SATISFIABLE: { connect: Code.OutOfRange, http: 416 },
    ERR_ALREADY_EXISTS: { connect: Code.AlreadyExists, http: 409 },
    ERR_TOO_LARGE: { connect: Code.ResourceExhausted, http: 413 },
    ERR_UNAUTHENTICATED: { connect: Code.Unauthenticated, http: 401 },
    ERR_PERMISSION_DENIED: { connect: Code.PermissionDenied, http: 403 },
    ERR_BAD_UPLOAD_STATE: { connect: Code.InvalidArgument, http: 400 },
    ERR_UPLOAD_EXPIRED: { connect: Code.FailedPrecondition, http: 410 },
    ERR_HASH_MISMATCH: { connect: Code.DataLoss, http: 422 },
    ERR_VERSION_SKEW: { connect: Code.Aborted, http: 409 },
    // A write's content was collected (or found incomplete) under it; writers retry internally,
    // so this reaches a client only when that kept happening.
    ERR_CONTENT_COLLECTED: { connect: Code.Aborted, http: 409 },
    ERR_METHOD_NOT_ALLOWED: { connect: Code.Unimplemented, http: 405 },
    ERR_UNAVAILABLE: { connect: Code.Unavailable, http: 503 },
    // Stored content is damaged (a chunk missing or shorter than its rope says): permanent, so
    // neither Unavailable nor 503, which clients retry.
    ERR_DATA_LOSS: { connect: Code.DataLoss, http: 500 },
    ERR_DATABASE_UNAVAILABLE: { connect: Code.Unavailable, http: 503, retryAfter: 2 },
    ERR_DATABASE_READ_ONLY: { connect: Code.Unavailable, http: 503, retryAfter: 2 },
    // Unavailable over RPC (clients retry later, the CLI exits 7); 507 says what it is over HTTP.
    ERR_STORAGE_FULL: { connect: Code.Unavailable, http: 507, retryAfter: 30 },
    // A write that would store more than the tenant's quota of physical bytes; nothing was written.
    // Not retried by clients (it stays so until data is deleted and collected, or the quota raised).
    ERR_QUOTA_EXCEEDED: { connect: Code.ResourceExhausted, http: 507 },
    // Begin of an upload while its principal already has the tenant's limit of open uploads.
    ERR_TOO_MANY_UPLOADS: { connect: Code.ResourceExhausted, http: 507 },
    // A permission that only a super session has (not one a delegation could grant).
    ERR_SUPER_REQUIRED: { connect: Code.PermissionDenied, http: 403 },
    // A server-side fetch to a target the network policy refuses (not a missing capability).
    ERR_NETWORK_POLICY: { connect: Code.PermissionDenied, http: 403 },
    // An RPC-typed request to a path that is no method of the server (Connect answers it 404).
    ERR_UNKNOWN_METHOD: { connect: Code.Unimplemented, http: 404 },
    // An OIDC principal's provider no longer accepts its login (refresh refused): log in again.
    ERR_LOGIN_REQUIRED: { connect: Code.Unauthenticated, http: 401 },
    // A login route of a server started without an OIDC provider (not a missing page).
    ERR_OIDC_OFF: { connect: Code.FailedPrecondition, http: 501 },
    // Anything not reported on purpose: the client sees "internal error", the log the cause.
    ERR_INTERNAL: { connect: Code.Internal, http: 500 },
  };

/** Header (HTTP) and metadata key (RPC) carrying an error's stable code. */
export const ERROR_CODE_HEADER = "cacheroach-error-code";

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
