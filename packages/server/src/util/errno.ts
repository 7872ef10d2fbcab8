/**
 * The code of a Node system error (`ENOENT`, `ECONNRESET`, …: errno names, not SQLSTATEs; those
 * are db/sqlstate.ts'), or undefined for any other value.
 */
export function errnoOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}
