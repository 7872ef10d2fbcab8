import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Stable codes of every error the server reports on purpose. Each maps to one Connect code and
 * one HTTP status (see {@link ERROR_TABLE}); the two boundaries (RPC, HTTP) apply that table.
 */
export type ErrorCode =
  | "ERR_BAD_REQUEST"
  | "ERR_BAD_PATH"
  | "ERR_BAD_ID"
  | "ERR_NOT_FOUND"
  | "ERR_PRECONDITION_FAILED"
  | "ERR_ALREADY_EXISTS"
  | "ERR_TOO_LARGE"
  | "ERR_UNAUTHENTICATED"
  | "ERR_PERMISSION_DENIED"
  | "ERR_BAD_UPLOAD_STATE"
  | "ERR_UPLOAD_EXPIRED"
  | "ERR_HASH_MISMATCH"
  | "ERR_VERSION_SKEW"
  | "ERR_METHOD_NOT_ALLOWED"
  | "ERR_UNAVAILABLE";

/** How each error code is reported over RPC and HTTP. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, { connect: Code; http: number }>> = {
  ERR_BAD_REQUEST: { connect: Code.InvalidArgument, http: 400 },
  ERR_BAD_PATH: { connect: Code.InvalidArgument, http: 400 },
  ERR_BAD_ID: { connect: Code.InvalidArgument, http: 400 },
  ERR_NOT_FOUND: { connect: Code.NotFound, http: 404 },
  ERR_PRECONDITION_FAILED: { connect: Code.FailedPrecondition, http: 412 },
  ERR_ALREADY_EXISTS: { connect: Code.AlreadyExists, http: 409 },
  ERR_TOO_LARGE: { connect: Code.ResourceExhausted, http: 413 },
  ERR_UNAUTHENTICATED: { connect: Code.Unauthenticated, http: 401 },
  ERR_PERMISSION_DENIED: { connect: Code.PermissionDenied, http: 403 },
  ERR_BAD_UPLOAD_STATE: { connect: Code.InvalidArgument, http: 400 },
  ERR_UPLOAD_EXPIRED: { connect: Code.FailedPrecondition, http: 410 },
  ERR_HASH_MISMATCH: { connect: Code.DataLoss, http: 422 },
  ERR_VERSION_SKEW: { connect: Code.Aborted, http: 409 },
  ERR_METHOD_NOT_ALLOWED: { connect: Code.Unimplemented, http: 405 },
  ERR_UNAVAILABLE: { connect: Code.Unavailable, http: 503 },
};

/**
 * A deliberate, user-facing failure. The message is safe to send to the client (it names the
 * problem, never a secret); `cause` is for logs only.
 */
export class StoreError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
  }
}

/** Shorthand constructors for the common cases. */
export const errors = {
  badRequest: (msg: string) => new StoreError("ERR_BAD_REQUEST", msg),
  notFound: (msg: string) => new StoreError("ERR_NOT_FOUND", msg),
  precondition: (msg: string) => new StoreError("ERR_PRECONDITION_FAILED", msg),
  denied: (msg: string) => new StoreError("ERR_PERMISSION_DENIED", msg),
  unauthenticated: (msg: string) => new StoreError("ERR_UNAUTHENTICATED", msg),
  tooLarge: (msg: string) => new StoreError("ERR_TOO_LARGE", msg),
};

/** Converts any thrown value to a ConnectError for the RPC boundary. Unknown errors stay opaque. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const known = asStoreError(err);
  if (known) return new ConnectError(known.message, ERROR_TABLE[known.code].connect);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** HTTP status and safe message for the HTTP boundary. */
export function toHttpError(err: unknown): { status: number; message: string } {
  const known = asStoreError(err);
  if (known) return { status: ERROR_TABLE[known.code].http, message: known.message };
  return { status: 500, message: "internal error" };
}

/** StoreErrors as they are; database errors with a user-facing meaning translated. */
function asStoreError(err: unknown): StoreError | undefined {
  if (err instanceof StoreError) return err;
  // 23503 foreign_key_violation: what the request refers to (usually a tenant) was deleted meanwhile.
  if ((err as { code?: string } | undefined)?.code === "23503") {
    return new StoreError(
      "ERR_NOT_FOUND",
      "the tenant (or other record) this request refers to no longer exists",
    );
  }
  return undefined;
}
