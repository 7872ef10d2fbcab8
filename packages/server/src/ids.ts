import { randomUUID } from "node:crypto";
import { isUuid } from "@cacheroach/core";
import { CacheroachError } from "./errors.js";

/** Validates a UUID string and returns it lower-cased; `what` names the field in the error. */
export function parseId(id: string, what: string): string {
  if (typeof id !== "string" || id === "") throw new CacheroachError("ERR_BAD_ID", `${what} is required`);
  if (!isUuid(id))
    throw new CacheroachError("ERR_BAD_ID", `${what} ${JSON.stringify(id.slice(0, 64))} is not a UUID`);
  return id.toLowerCase();
}

/** A new random ID. */
export function newId(): string {
  return randomUUID();
}
