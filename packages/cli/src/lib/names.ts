/**
 * Tenants and principals by name: `-t "Team files"`, `--for alice`, `tenant rm "Team files"`.
 * A UUID is taken as an ID; anything else is looked up among the names the caller can see: the
 * exact name first, then ignoring case. No match is "not found" (exit 4); several are ambiguous
 * (exit 2, listing them, so the user can pass the ID instead).
 */
import { ExitCode, UserError } from "./errors.js";
import { isUuid } from "./paths.js";

/** Something with an ID and the names it may be called by. */
export interface Named {
  readonly id: string;
  /** What it is called: a tenant's label; a principal's label (claims.name) and email. */
  readonly names: readonly string[];
  /** How to show it in an error ("Team files (version 2)"). */
  readonly describe?: string;
}

/** The kind of thing looked up, for messages: "tenant", "principal". */
export interface NameKind {
  readonly kind: string;
  /** The flag or argument it came from ("-t/--tenant", "--for"). */
  readonly source: string;
  /** The command that lists them ("cacheroach tenant ls"). */
  readonly list: string;
}

/** The ID `text` stands for, if it is a UUID (lower-cased); else undefined. */
export function asId(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  return isUuid(t) ? t : undefined;
}

/**
 * The one item called `name`: an exact match of one of its names, else a match ignoring case.
 * Throws a {@link UserError}: exit 4 when nothing matches, exit 2 when several do.
 */
export function pickByName<T extends Named>(items: readonly T[], name: string, what: NameKind): T {
  const exact = items.filter((i) => i.names.includes(name));
  const lower = name.toLowerCase();
  const found =
    exact.length > 0 ? exact : items.filter((i) => i.names.some((n) => n.toLowerCase() === lower));
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new UserError(
      `${what.source}: no ${what.kind} named "${name}" is visible to this session (and it is not an ID)`,
      ExitCode.notFound,
      [`list them with \`${what.list}\`, then pass a name or the ID`],
      `${what.kind}_not_found`,
    );
  }
  throw new UserError(
    `${what.source}: "${name}" is ambiguous: ${found.length} ${what.kind}s are called that (${found
      .map((f) => f.describe ?? f.id)
      .join(", ")})`,
    ExitCode.usage,
    [`pass the ID of the one you mean (see \`${what.list}\`)`],
    `${what.kind}_ambiguous`,
  );
}

/**
 * The items `name` would pick out besides a new one called so: those with a name equal to it
 * ignoring case (the widest match {@link pickByName} makes). `create` commands refuse to add
 * another, since a second one would make the name ambiguous.
 */
export function namedAlike<T extends Named>(items: readonly T[], name: string): T[] {
  const lower = name.toLowerCase();
  return items.filter((i) => i.names.some((n) => n.toLowerCase() === lower));
}

/**
 * Refuses to create another `what.kind` called `name` when `existing` already are (exit 5, nothing
 * created): names are for picking one, and a second would make this one ambiguous.
 */
export function refuseDuplicate(
  existing: readonly Named[],
  name: string,
  what: { kind: string; called: string; list: string; retry: string },
): void {
  if (existing.length === 0) return;
  const ids = existing.map((e) => e.describe ?? e.id).join(", ");
  throw new UserError(
    `a ${what.kind} ${what.called} "${name}" already exists (${existing.length > 1 ? "IDs" : "ID"} ${ids}); nothing was created`,
    ExitCode.conflict,
    [
      `use the existing one by its name or ID (see \`${what.list}\`)`,
      `or create another one anyway (the name may then be ambiguous; IDs always work): ${what.retry} --allow-duplicate`,
    ],
    "already_exists",
  );
}
