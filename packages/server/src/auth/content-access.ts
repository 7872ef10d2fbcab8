import type { FileStore } from "../store/file-store.js";
import type { Authorizer } from "./authorizer.js";
import { CAP, type SessionInfo } from "./session.js";

/** Live files holding the content checked per request, at most (each against the Authorizer). */
const CANDIDATES = 16;

/**
 * Decides whether a session may link content by its hash (Uploads.Begin{content_hash}): knowing a
 * hash is not read access (docs/security.md, guarantee 4), so it needs read on a live file of the tenant that holds the
 * content. The database is asked only among the paths the session may read (its read grants in
 * the tenant, as {@link Authorizer.may} applies them), so content that exists but is unreadable is
 * found no more than content that does not exist; each path found is confirmed with
 * {@link Authorizer.may}, so a pattern derived too widely can only refuse, never grant.
 */
export class ContentAccess {
  constructor(
    private readonly authz: Authorizer,
    private readonly files: FileStore,
  ) {}

  /** May `s` read some live file of `tenantId` whose content hash is `hash`? */
  async mayLink(s: SessionInfo, tenantId: string, hash: Buffer): Promise<boolean> {
    const within = await this.readablePatterns(s, tenantId);
    const holders = await this.files.liveHolders(tenantId, hash, within, CANDIDATES);
    for (const path of holders) {
      if (await this.authz.may(s, { caps: CAP.read, tenantId, path })) return true;
    }
    return false;
  }

  /**
   * The exact paths and "/dir/*" patterns under which `s` may read in `tenantId`, or "all".
   * Mirrors {@link Authorizer.may}: the session's own location scope, or, for a principal session
   * with read, every super or location grant its principal holds; version-pinned scopes grant no
   * read of a file's latest version, so they add nothing.
   */
  private async readablePatterns(s: SessionInfo, tenantId: string): Promise<"all" | string[]> {
    if (s.scope.kind === "super") return "all";
    if (!(s.caps & CAP.read)) return [];
    const grants = s.scope.kind === "location" ? [s] : await this.authz.grantsOf(s.scope.principalId);
    const out: string[] = [];
    for (const g of grants) {
      if (g.scope.kind === "super") return "all";
      if (g.scope.kind !== "location" || g.scope.tenantId !== tenantId || g.scope.version !== 0) continue;
      if (g.caps & CAP.read) out.push(g.scope.path);
    }
    return out;
  }
}
