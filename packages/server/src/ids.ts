import { randomUUID } from "node:crypto";
import { StoreError } from "./errors.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Validates a canonical lower-case UUID string; `what` names the field in the error. */
export function parseId(id: string, what: string): string {
  if (typeof id !== "string" || id === "") throw new StoreError("ERR_BAD_ID", `${what} is required`);
  const lower = id.toLowerCase();
  if (!UUID.test(lower))
    throw new StoreError("ERR_BAD_ID", `${what} ${JSON.stringify(id.slice(0, 64))} is not a UUID`);
  return lower;
}

/** A new random ID. */
export function newId(): string {
  return randomUUID();
}

/** Well-known IDs created at start-up (same as the original system, for compatibility). */
export const WELL_KNOWN = {
  /** The "Default Scratchpad" tenant, served for vhost "*". */
  scratchpadTenant: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
  /** The principal anonymous HTTP requests act as. */
  unauthenticatedPrincipal: "0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f",
} as const;
