import { LRUCache } from "lru-cache";
import type { Db, Queryable } from "../db/db.js";
import { isForeignKeyViolation, isUniqueViolation } from "../db/sqlstate.js";
import { StoreError } from "../errors.js";
import type { Scope, SessionInfo } from "./session.js";

interface SessionRow {
  id: string;
  principal_id: string;
  capabilities: string;
  scope_kind: "super" | "principal" | "location";
  scope_principal: string | null;
  scope_tenant: string | null;
  scope_path: string | null;
  scope_version: string;
  issued_by: string | null;
  issued_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  name: string;
  note: string;
}

const COLUMNS =
  "id, principal_id, capabilities, scope_kind, scope_principal, scope_tenant, scope_path, scope_version, issued_by, issued_at, expires_at, revoked_at, name, note";

/**
 * Durable sessions. `isActive` and `activeFor` are cached for `cacheTtlMs` (seconds, not
 * minutes), so a revocation written by any instance takes effect everywhere within that window.
 */
export class SessionStore {
  private readonly active: LRUCache<string, { ok: boolean }>;
  private readonly byPrincipal: LRUCache<string, SessionInfo[]>;

  constructor(
    private readonly db: Db,
    cacheTtlMs: number,
  ) {
    this.active = new LRUCache({ max: 100_000, ttl: Math.max(1, cacheTtlMs) });
    this.byPrincipal = new LRUCache({ max: 10_000, ttl: Math.max(1, cacheTtlMs) });
  }

  /**
   * Inserts a session row. A name held by another unrevoked, unexpired session of the principal
   * is ERR_ALREADY_EXISTS; an expired holder of the name is revoked to free it.
   */
  async insert(s: SessionInfo, q: Queryable = this.db): Promise<void> {
    const sc = s.scope;
    try {
      if (s.name !== "") {
        await q.query(
          "UPDATE sessions SET revoked_at = now() WHERE principal_id = $1 AND name = $2 AND revoked_at IS NULL AND expires_at <= now()",
          [s.principalId, s.name],
        );
      }
      await q.query(
        `INSERT INTO sessions (id, principal_id, capabilities, scope_kind, scope_principal, scope_tenant, scope_path,
           scope_version, issued_by, issued_at, expires_at, name, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          s.id,
          s.principalId,
          s.caps,
          sc.kind,
          sc.kind === "principal" ? sc.principalId : null,
          sc.kind === "location" ? sc.tenantId : null,
          sc.kind === "location" ? sc.path : null,
          sc.kind === "location" ? sc.version : 0,
          s.issuedBy ?? null,
          s.issuedAt,
          s.expiresAt,
          s.name,
          s.note,
        ],
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError(
          "ERR_ALREADY_EXISTS",
          `a session named ${JSON.stringify(s.name)} already exists for this principal`,
        );
      if (isForeignKeyViolation(err))
        throw new StoreError("ERR_NOT_FOUND", "the session's principal or tenant does not exist");
      throw err;
    }
    this.byPrincipal.delete(s.principalId);
  }

  /** True when the session row exists, is not revoked and has not expired (cached briefly). */
  async isActive(id: string): Promise<boolean> {
    const hit = this.active.get(id);
    if (hit) return hit.ok;
    const r = await this.db.query<{ ok: boolean }>(
      "SELECT (revoked_at IS NULL AND expires_at > now()) AS ok FROM sessions WHERE id = $1",
      [id],
    );
    const ok = r.rows[0]?.ok === true;
    this.active.set(id, { ok });
    return ok;
  }

  /** Loads one session (active or not), or undefined. */
  async load(id: string): Promise<(SessionInfo & { revoked: boolean }) | undefined> {
    const r = await this.db.query<SessionRow>(`SELECT ${COLUMNS} FROM sessions WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row ? { ...fromRow(row), revoked: row.revoked_at !== null } : undefined;
  }

  /** The unrevoked, unexpired sessions owned by a principal (cached briefly). */
  async activeFor(principalId: string): Promise<SessionInfo[]> {
    const hit = this.byPrincipal.get(principalId);
    if (hit) return hit;
    const r = await this.db.query<SessionRow>(
      `SELECT ${COLUMNS} FROM sessions WHERE principal_id = $1 AND revoked_at IS NULL AND expires_at > now()`,
      [principalId],
    );
    const list = r.rows.map(fromRow);
    this.byPrincipal.set(principalId, list);
    return list;
  }

  /** Revokes `old` and inserts `next` atomically (Tokens.Refresh). */
  async replace(old: string, next: SessionInfo): Promise<void> {
    await this.db.tx(async (q) => {
      const r = await q.query(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()",
        [old],
      );
      if (r.rowCount === 0)
        throw new StoreError("ERR_UNAUTHENTICATED", "session has been revoked or has expired");
      await this.insert(next, q);
    });
    this.active.delete(old);
    this.byPrincipal.delete(next.principalId);
  }

  /** Finds a principal's unrevoked session by name. */
  async byName(principalId: string, name: string): Promise<SessionInfo | undefined> {
    const r = await this.db.query<SessionRow>(
      `SELECT ${COLUMNS} FROM sessions WHERE principal_id = $1 AND name = $2 AND revoked_at IS NULL`,
      [principalId, name],
    );
    const row = r.rows[0];
    return row ? fromRow(row) : undefined;
  }

  /** Revokes a session; returns false when it does not exist. */
  async revoke(id: string): Promise<boolean> {
    const r = await this.db.query<{ principal_id: string }>(
      "UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING principal_id",
      [id],
    );
    this.active.delete(id);
    const p = r.rows[0]?.principal_id;
    if (p) this.byPrincipal.delete(p);
    return p !== undefined;
  }
}

function fromRow(r: SessionRow): SessionInfo {
  let scope: Scope;
  if (r.scope_kind === "super") scope = { kind: "super" };
  else if (r.scope_kind === "principal") scope = { kind: "principal", principalId: r.scope_principal! };
  else
    scope = {
      kind: "location",
      tenantId: r.scope_tenant!,
      path: r.scope_path!,
      version: Number(r.scope_version),
    };
  return {
    id: r.id,
    principalId: r.principal_id,
    caps: Number(r.capabilities),
    scope,
    expiresAt: r.expires_at,
    issuedAt: r.issued_at,
    name: r.name,
    note: r.note,
    issuedBy: r.issued_by ?? undefined,
  };
}
