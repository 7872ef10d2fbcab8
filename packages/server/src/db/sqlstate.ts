import pg from "pg";
import { errnoOf } from "../util/errno.js";

/** The SQLSTATEs the server acts on, by name (PostgreSQL and CockroachDB share them). */
export const SqlState = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  readOnlyTransaction: "25006",
  serializationFailure: "40001",
  statementCompletionUnknown: "40003",
  deadlockDetected: "40P01",
  diskFull: "53100",
  outOfMemory: "53200",
  tooManyConnections: "53300",
  configurationLimitExceeded: "53400",
  queryCanceled: "57014",
  adminShutdown: "57P01",
  crashShutdown: "57P02",
  cannotConnectNow: "57P03",
  stringDataRightTruncation: "22001",
  numericValueOutOfRange: "22003",
  invalidDatetimeFormat: "22007",
  datetimeFieldOverflow: "22008",
  characterNotInRepertoire: "22021",
  invalidTextRepresentation: "22P02",
  untranslatableCharacter: "22P05",
  invalidJsonText: "22032",
} as const;

/** The SQLSTATE of an error the database sent, or undefined for any other error. */
export function sqlStateOf(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError ? err.code : undefined;
}

export const isUniqueViolation = (err: unknown): boolean => sqlStateOf(err) === SqlState.uniqueViolation;
export const isForeignKeyViolation = (err: unknown): boolean =>
  sqlStateOf(err) === SqlState.foreignKeyViolation;

/**
 * What a failure says about the database itself rather than about the request:
 * - `unreachable`: no connection, the connection was lost, or the database is restarting;
 * - `read-only`: the database refuses writes (read-only mode, a standby);
 * - `disk-full`: the database could not write for lack of space;
 * - `overloaded`: out of connections or memory, or no pooled connection became free in time;
 * - `contention`: transactions kept conflicting after every retry;
 * - `timeout`: a statement was cancelled (statement_timeout, an operator's pg_cancel_backend).
 */
export type DatabaseCondition =
  | "unreachable"
  | "read-only"
  | "disk-full"
  | "overloaded"
  | "contention"
  | "timeout";

/** Errors of the socket under a connection (node's codes, not SQLSTATEs). */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * pg and pg-pool report a lost or unobtainable connection as plain Errors, told apart only by
 * their text: the server closed the socket, a client already broken, a connect timeout.
 */
const LOST_CONNECTION =
  /Connection terminated|connection is closed|encountered a connection error and is not queryable|Client was closed and is not queryable|Connection terminated due to connection timeout/i;
/** pg-pool's "timeout exceeded when trying to connect": every pooled connection stayed busy. */
const POOL_TIMEOUT = /timeout exceeded when trying to connect/i;

/** The condition of the database that `err` reveals, or undefined when it is about the request. */
export function databaseCondition(err: unknown): DatabaseCondition | undefined {
  const state = sqlStateOf(err);
  if (state !== undefined) {
    if (state.startsWith("08")) return "unreachable"; // connection_exception class
    switch (state) {
      case SqlState.adminShutdown:
      case SqlState.crashShutdown:
      case SqlState.cannotConnectNow:
        return "unreachable";
      case SqlState.readOnlyTransaction:
        return "read-only";
      case SqlState.diskFull:
        return "disk-full";
      case SqlState.outOfMemory:
      case SqlState.tooManyConnections:
      case SqlState.configurationLimitExceeded:
        return "overloaded";
      case SqlState.serializationFailure:
      case SqlState.statementCompletionUnknown:
      case SqlState.deadlockDetected:
        return "contention";
      case SqlState.queryCanceled:
        return "timeout";
      default:
        return undefined;
    }
  }
  if (!(err instanceof Error)) return undefined;
  const code = errnoOf(err);
  if (code !== undefined && SOCKET_CODES.has(code)) return "unreachable";
  if (POOL_TIMEOUT.test(err.message)) return "overloaded";
  if (LOST_CONNECTION.test(err.message)) return "unreachable";
  return undefined;
}

/**
 * True when the connection the error happened on must not be used again: it is gone, or its
 * session is stuck in a state a new session would not have (a session that started while the
 * database was read-only keeps refusing writes after the database is writable again).
 */
export function isConnectionLevel(err: unknown): boolean {
  const c = databaseCondition(err);
  return c === "unreachable" || c === "read-only";
}

/**
 * True when the whole unit of work may be repeated from scratch, on another connection:
 * serialization failures, lost connections, a restarting or read-only database, no free
 * connection slot. Never a disk-full or cancelled statement: repeating those at once only
 * repeats the failure.
 */
export function isRetryable(err: unknown): boolean {
  const c = databaseCondition(err);
  return (
    c === "unreachable" ||
    c === "read-only" ||
    c === "contention" ||
    sqlStateOf(err) === SqlState.tooManyConnections
  );
}

/** A database condition in words for an operator or a client; never names hosts or credentials. */
export function describeCondition(condition: DatabaseCondition): string {
  switch (condition) {
    case "unreachable":
      return "database unavailable: cannot connect, or the connection was lost (is it restarting?)";
    case "read-only":
      return "database is read-only: writes are refused until it accepts them again";
    case "disk-full":
      return "database disk full: writes are refused until space is freed";
    case "overloaded":
      return "database overloaded: out of connections or memory, retry shortly";
    case "contention":
      return "database busy: the transaction kept conflicting with others";
    case "timeout":
      return "database statement was cancelled (timeout)";
  }
}

/**
 * Data exceptions (SQLSTATE class 22) that only a value sent by the client can cause: a character
 * the database cannot store (NUL in text: 22021; `\u0000` or a lone surrogate in JSON: 22P05), a
 * value too long or out of range, a malformed number, time or JSON. Anything else of class 22
 * (division by zero, …) would be the server's own bug and stays an internal error.
 */
const CLIENT_DATA_EXCEPTIONS: ReadonlyMap<string, string> = new Map([
  [SqlState.characterNotInRepertoire, "a value contains a character the database cannot store (NUL?)"],
  [
    SqlState.untranslatableCharacter,
    "a value contains a character the database cannot store (NUL or an unpaired surrogate?)",
  ],
  [SqlState.stringDataRightTruncation, "a value is longer than the database allows"],
  [SqlState.numericValueOutOfRange, "a number is out of range"],
  [
    SqlState.invalidTextRepresentation,
    "a value is malformed (not a number, id or boolean where one is expected)",
  ],
  [SqlState.invalidDatetimeFormat, "a time value is malformed"],
  [SqlState.datetimeFieldOverflow, "a time value is out of range"],
  [SqlState.invalidJsonText, "a value is not valid JSON text"],
]);

/**
 * When `err` is a data exception caused by a client-supplied value, a message saying so (never
 * the value itself); otherwise undefined.
 */
export function clientDataProblem(err: unknown): string | undefined {
  const state = sqlStateOf(err);
  return state === undefined ? undefined : CLIENT_DATA_EXCEPTIONS.get(state);
}
