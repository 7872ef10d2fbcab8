/** Well-known IDs created at start-up (the same as the original system's, for compatibility). */
export const WELL_KNOWN = {
  /** The "Default Scratchpad" tenant, served for vhost "*". */
  scratchpadTenant: "0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a",
  /** The principal anonymous HTTP requests act as. */
  unauthenticatedPrincipal: "0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f",
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a UUID in its canonical 8-4-4-4-12 hex form (either case). */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}
