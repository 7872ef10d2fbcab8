/**
 * Every failure in words: a Connect error's message (the server's own sentence, naming the path or
 * object), its stable code, and a hint at what to do. Nothing is ever shown as a blank page.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** A failure as the UI shows it. */
export interface Problem {
  /** What the user was doing, e.g. "Uploading /a.txt". */
  readonly doing: string;
  /** The server's (or browser's) message. */
  readonly message: string;
  /** The server's stable code (ERR_*) or the Connect code name, when known. */
  readonly code: string | undefined;
  /** What might help. */
  readonly hint: string | undefined;
}

const HINTS: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: "Your token is invalid, expired or revoked: log in again.",
  [Code.PermissionDenied]: "Your session is not allowed to do this here; ask for a grant.",
  [Code.NotFound]: "It may have been deleted or moved: refresh the listing.",
  [Code.FailedPrecondition]: "Someone changed it meanwhile: refresh and try again.",
  [Code.Unavailable]: "The server or its database is unavailable; try again shortly.",
  [Code.ResourceExhausted]: "The server refused the size or rate of this request.",
  [Code.DataLoss]: "The stored content is damaged; tell the operator.",
};

/** The Connect code's name ("permission_denied"). */
function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Describes `err`, raised while `doing`. */
export function describe(doing: string, err: unknown): Problem {
  if (err instanceof ConnectError) {
    const stable = err.metadata.get("cacheroach-error-code") ?? undefined;
    return {
      doing,
      message: err.rawMessage || codeName(err.code),
      code: stable ?? codeName(err.code),
      hint: HINTS[err.code],
    };
  }
  if (err instanceof HttpError) return { doing, message: err.message, code: err.code, hint: undefined };
  if (err instanceof Error) {
    const offline = err instanceof TypeError && /fetch|network/i.test(err.message);
    return {
      doing,
      message: err.message,
      code: undefined,
      hint: offline ? "The server could not be reached: check your connection." : undefined,
    };
  }
  return { doing, message: String(err), code: undefined, hint: undefined };
}

/** A plain-HTTP failure: the status, the server's one-line message and its Cacheroach-Error-Code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "HttpError";
  }

  /** The error a failed response carries (its body is the server's message). */
  static async of(res: Response): Promise<HttpError> {
    const text = (await res.text().catch(() => "")).trim();
    return new HttpError(
      res.status,
      text || `HTTP ${res.status} ${res.statusText}`,
      res.headers.get("cacheroach-error-code") ?? undefined,
    );
  }
}

/** True when `err` is the end of a cancelled operation (not a failure to report). */
export function isAbort(err: unknown): boolean {
  if (err instanceof ConnectError) return err.code === Code.Canceled;
  return err instanceof DOMException && err.name === "AbortError";
}

/**
 * True when `err` may pass if the same request is sent again: the server or its database was
 * unavailable, or the request never reached it (a dropped connection).
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof ConnectError)
    return err.code === Code.Unavailable || (err.code === Code.Unknown && err.cause instanceof TypeError);
  return err instanceof TypeError;
}

/** Waits before each retry of a read that failed transiently (then the failure is shown). */
const RETRY_DELAYS_MS = [300, 1000, 3000];

/**
 * Runs the read `fn`, again after a short wait each time it fails transiently (up to three
 * retries), unless `stale()` says its answer is no longer wanted. Only for reads: a write that
 * failed may have happened.
 */
export async function withTransientRetries<T>(fn: () => Promise<T>, stale: () => boolean): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const delay = RETRY_DELAYS_MS[attempt];
      if (delay === undefined || !isTransient(err) || stale()) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
