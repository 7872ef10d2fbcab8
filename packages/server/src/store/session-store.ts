import { LRUCache } from "lru-cache";
import type { Db, Queryable } from "../db/db.js";
import { isForeignKeyViolation, isUniqueViolation } from "../db/sqlstate.js";
import { CacheroachError } from "../errors.js";

/** Where a session applies. */
export type Scope =
  | { readonly kind: "super" }
  | { readonly kind: "principal"; readonly principalId: string }
  | { readonly kind: "location"; readonly tenantId: string; readonly path: string; readonly version: number };

/** A durable session, as stored (auth/session.ts's SessionInfo is what any token presents). */
export interface SessionRecord {
  readonly id: string;
  readonly principalId: string;
  /** Capability bits (auth/session.ts CAP). */
  readonly caps: number;
  readonly scope: Scope;
  readonly expiresAt: Date;
  readonly issuedAt: Date;
  readonly name: string;
  readonly note: string;
  /** The session that issued this one (the caller of Tokens.Issue or Files.Retrieve). */
  readonly issuedBy: string | undefined;
  /**
   * The grant whose authority the issuer used, when that was not the issuer itself: a login
   * session acts through grants its principal holds. With `issuedBy`, the links of the chain of
   * authority; a session is valid only while every session up the chain is.
   */
  readonly authorityId?: string | undefined;
}

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
  authority_id: string | null;
  issued_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  name: string;
  note: string;
}

const COLUMNS =
  "id, principal_id, capabilities, scope_kind, scope_principal, scope_tenant, scope_path, scope_version, issued_by, authority_id, issued_at, expires_at, revoked_at, name, note";

/** Chains longer than this are refused as broken (issuing never builds one; a cycle cannot loop). */
const MAX_CHAIN = 32;

/**
 * `chain (start, id, depth)`: for every session `start` selected by `startSql` (which must select
 * `id`), itself and every session up its chain of authority (issued_by and authority_id links).
 */
const chainCte = (startSql: string) => `chain (start, id, depth) AS (
    SELECT st.id, st.id, 0 FROM (${startSql}) AS st
    UNION ALL
    SELECT c.start, CASE k.k WHEN 1 THEN s.issued_by ELSE s.authority_id END, c.depth + 1
      FROM chain AS c
      JOIN sessions AS s ON s.id = c.id
      CROSS JOIN (VALUES (1), (2)) AS k (k)
     WHERE c.depth < ${MAX_CHAIN} AND CASE k.k WHEN 1 THEN s.issued_by ELSE s.authority_id END IS NOT NULL
  )`;

/**
 * The starts whose whole chain is live: every link exists (a deleted principal takes its
 * sessions with it), is unrevoked and unexpired.
 */
const LIVE_STARTS = `SELECT c.start FROM chain AS c LEFT JOIN sessions AS s ON s.id = c.id
  GROUP BY c.start
  HAVING count(*) = sum(CASE WHEN s.revoked_at IS NULL AND s.expires_at > now() THEN 1 ELSE 0 END)`;

/** `tree (id, depth)`: the sessions selected by `startSql` and everything issued under them. */
const treeCte = (startSql: string) => `tree (id, depth) AS (
    SELECT st.id, 0 FROM (${startSql}) AS st
    UNION ALL
    SELECT s.id, t.depth + 1 FROM tree AS t
      JOIN sessions AS s ON s.issued_by = t.id OR s.authority_id = t.id
     WHERE t.depth < ${MAX_CHAIN}
  )`;

/**
 * Sessions for operators ({@link SessionStore.list}): issued under $1 (a session, or any session of
 * a principal; NULL: no such filter) at any depth (the roots themselves are not "issued under"
 * them: depth > 0), and owned by $2 (NULL: anyone); at most $3, with whether each one's chain is live.
 */
const LIST = `WITH RECURSIVE ${treeCte("SELECT id FROM sessions WHERE id = $1::UUID OR principal_id = $1::UUID")},
  picked AS (
    SELECT s.id FROM sessions AS s
    WHERE ($1::UUID IS NULL OR s.id IN (SELECT id FROM tree WHERE depth > 0))
      AND ($2::UUID IS NULL OR s.principal_id = $2::UUID)
    ORDER BY s.issued_at, s.id LIMIT $3
  ), ${chainCte("SELECT id FROM picked")}
  SELECT ${COLUMNS.split(", ")
    .map((c) => `s.${c}`)
    .join(", ")}, s.id IN (${LIVE_STARTS}) AS live_chain
    FROM sessions AS s WHERE s.id IN (SELECT id FROM picked) ORDER BY s.issued_at, s.id`;

/** Where a listed session stands. */
export type SessionStatus = "active" | "revoked" | "expired" | "orphaned";

/** A session with where it stands (listings for operators). */
export interface SessionListing extends SessionRecord {
  readonly status: SessionStatus;
}

/**
 * Durable sessions. `isActive` and `activeFor` are cached for `cacheTtlMs` (seconds, not
 * minutes), so a revocation written by any instance takes effect everywhere within that window.
 */
export class SessionStore {
  private readonly active: LRUCache<string, { ok: boolean }>;
  private readonly byPrincipal: LRUCache<string, SessionRecord[]>;

  constructor(
    private readonly db: Db,
    cacheTtlMs: number,
  ) {
    this.active = new LRUCache({ max: 100_000, ttl: Math.max(1, cacheTtlMs) });
    this.byPrincipal = new LRUCache({ max: 10_000, ttl: Math.max(1, cacheTtlMs) });
  }

  /** Inserts a session row unless one with its id exists (well-known sessions every deployment has). */
  async insertIfAbsent(s: SessionRecord): Promise<void> {
    await this.db.query(`${INSERT} ON CONFLICT (id) DO NOTHING`, sessionValues(s));
  }

  /**
   * Inserts a session row. A name held by another unrevoked, unexpired session of the principal
   * is ERR_ALREADY_EXISTS; an expired holder of the name is revoked to free it.
   */
  async insert(s: SessionRecord, q: Queryable = this.db): Promise<void> {
    try {
      if (s.name !== "") {
        await q.query(
          "UPDATE sessions SET revoked_at = now() WHERE principal_id = $1 AND name = $2 AND revoked_at IS NULL AND expires_at <= now()",
          [s.principalId, s.name],
        );
      }
      await q.query(INSERT, sessionValues(s));
    } catch (err) {
      if (isUniqueViolation(err))
        throw new CacheroachError(
          "ERR_ALREADY_EXISTS",
          `a session named ${JSON.stringify(s.name)} already exists for this principal`,
        );
      if (isForeignKeyViolation(err))
        throw new CacheroachError("ERR_NOT_FOUND", "the session's principal or tenant does not exist");
      throw err;
    }
    this.byPrincipal.delete(s.principalId);
  }

  /**
   * True when the session and every session up its chain of authority exist, are not revoked
   * and have not expired (cached briefly: one query per session per cache period, however many
   * requests present it).
   */
  async isActive(id: string): Promise<boolean> {
    const hit = this.active.get(id);
    if (hit) return hit.ok;
    const r = await this.db.query<{ start: string }>(
      `WITH RECURSIVE ${chainCte("SELECT $1::UUID AS id")} ${LIVE_STARTS}`,
      [id],
    );
    const ok = r.rows.length === 1;
    this.active.set(id, { ok });
    return ok;
  }

  /** One session (active or not), or undefined. */
  async get(id: string): Promise<(SessionRecord & { revoked: boolean }) | undefined> {
    const r = await this.db.query<SessionRow>(`SELECT ${COLUMNS} FROM sessions WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row ? { ...fromRow(row), revoked: row.revoked_at !== null } : undefined;
  }

  /** The sessions owned by a principal whose whole chain is live (cached briefly). */
  async activeFor(principalId: string): Promise<SessionRecord[]> {
    const hit = this.byPrincipal.get(principalId);
    if (hit) return hit;
    const r = await this.db.query<SessionRow>(
      `WITH RECURSIVE ${chainCte(
        "SELECT id FROM sessions WHERE principal_id = $1 AND revoked_at IS NULL AND expires_at > now()",
      )}
       SELECT ${COLUMNS} FROM sessions WHERE id IN (${LIVE_STARTS})`,
      [principalId],
    );
    const list = r.rows.map(fromRow);
    this.byPrincipal.set(principalId, list);
    return list;
  }

  /**
   * Sessions for operators, with where each stands: those owned by `owner`, and/or those issued
   * under `issuedUnder` (a session, or any session of a principal) at any depth. At most `limit`.
   */
  async list(filter: { owner?: string; issuedUnder?: string }, limit: number): Promise<SessionListing[]> {
    const r = await this.db.query<SessionRow & { live_chain: boolean }>(LIST, [
      filter.issuedUnder ?? null,
      filter.owner ?? null,
      limit,
    ]);
    const now = Date.now();
    return r.rows.map((row) => {
      const status: SessionStatus =
        row.revoked_at !== null
          ? "revoked"
          : row.expires_at.getTime() <= now
            ? "expired"
            : row.live_chain
              ? "active"
              : "orphaned";
      return { ...fromRow(row), status };
    });
  }

  /**
   * Revokes `old` and inserts `next` atomically (Tokens.Refresh); what was issued under `old` is
   * issued under `next` from now on, so a refresh does not orphan it.
   */
  async replace(old: string, next: SessionRecord): Promise<void> {
    await this.db.tx(async (q) => {
      const r = await q.query(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()",
        [old],
      );
      if (r.rowCount === 0)
        throw new CacheroachError("ERR_UNAUTHENTICATED", "session has been revoked or has expired");
      await this.insert(next, q);
      await q.query("UPDATE sessions SET issued_by = $2 WHERE issued_by = $1", [old, next.id]);
      await q.query("UPDATE sessions SET authority_id = $2 WHERE authority_id = $1", [old, next.id]);
    });
    this.active.delete(old);
    this.byPrincipal.delete(next.principalId);
  }

  /** Finds a principal's unrevoked session by name. */
  async byName(principalId: string, name: string): Promise<SessionRecord | undefined> {
    const r = await this.db.query<SessionRow>(
      `SELECT ${COLUMNS} FROM sessions WHERE principal_id = $1 AND name = $2 AND revoked_at IS NULL`,
      [principalId, name],
    );
    const row = r.rows[0];
    return row ? fromRow(row) : undefined;
  }

  /**
   * Revokes a session and everything issued under it, at any depth (sessions it issued, and
   * sessions issued through the authority of a grant). Returns how many sessions that were
   * still unrevoked it revoked; 0 when the session does not exist or all were revoked already.
   */
  async revoke(id: string, q: Queryable = this.db): Promise<number> {
    return this.revokeTrees("SELECT $1::UUID AS id", [id], q);
  }

  /** Revokes every session of a principal and everything issued under them (before it is deleted). */
  async revokeAllOf(principalId: string, q: Queryable = this.db): Promise<number> {
    return this.revokeTrees("SELECT id FROM sessions WHERE principal_id = $1", [principalId], q);
  }

  private async revokeTrees(startSql: string, params: unknown[], q: Queryable): Promise<number> {
    const r = await q.query<{ id: string; principal_id: string; fresh: boolean }>(
      `WITH RECURSIVE ${treeCte(startSql)},
         hit AS (SELECT id, revoked_at IS NULL AS fresh FROM sessions WHERE id IN (SELECT id FROM tree))
       UPDATE sessions AS s SET revoked_at = COALESCE(s.revoked_at, now())
         FROM hit WHERE s.id = hit.id
       RETURNING s.id, s.principal_id, hit.fresh`,
      params,
    );
    for (const row of r.rows) {
      this.active.delete(row.id);
      this.byPrincipal.delete(row.principal_id);
    }
    return r.rows.filter((row) => row.fresh).length;
  }
}

/** Inserts a session row: the values of {@link sessionValues}. */
const INSERT = `INSERT INTO sessions (id, principal_id, capabilities, scope_kind, scope_principal, scope_tenant, scope_path,
    scope_version, issued_by, authority_id, issued_at, expires_at, name, note)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`;

function sessionValues(s: SessionRecord): unknown[] {
  const sc = s.scope;
  return [
    s.id,
    s.principalId,
    s.caps,
    sc.kind,
    sc.kind === "principal" ? sc.principalId : null,
    sc.kind === "location" ? sc.tenantId : null,
    sc.kind === "location" ? sc.path : null,
    sc.kind === "location" ? sc.version : 0,
    s.issuedBy ?? null,
    s.authorityId ?? null,
    s.issuedAt,
    s.expiresAt,
    s.name,
    s.note,
  ];
}

function fromRow(r: SessionRow): SessionRecord {
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
    authorityId: r.authority_id ?? undefined,
  };
}
