/** The stable error codes and how each is reported over RPC and HTTP (no database imports: the CLI loads it). */
import { Code } from "@connectrpc/connect";

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
