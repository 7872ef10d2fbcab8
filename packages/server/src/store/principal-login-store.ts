import type { Db } from "../db/db.js";

/**
 * Where an OIDC principal's login stands (principals.refresh_status). A principal without a
 * refresh token (created by an operator or the CLI) is never re-validated.
 */
export const REFRESH_STATUS = {
  /** Valid until refresh_after; then its refresh token is used at the provider. */
  valid: 0,
  /** An instance is refreshing it; the others accept it until refresh_after (the grace window). */
  refreshing: 1,
  /** The provider refused the refresh token: only a new login helps. */
  needsLogin: 2,
} as const;

/** The refresh data of one principal (the token as stored: sealed, see auth/secret-box.ts). */
export interface RefreshState {
  readonly version: number;
  readonly sealedRefreshToken: string;
  readonly refreshAfter: Date;
  readonly status: number;
}

/** What an OIDC login stores about its principal. */
export interface LoginRecord {
  /** The id a new principal gets (an existing one keeps its own). */
  readonly newId: string;
  /** The ID token's claims, stored only when the principal is created. */
  readonly claims: Record<string, unknown>;
  /** Verified, lower-cased email: the principal's identity across logins. */
  readonly email: string;
  readonly sealedRefreshToken: string;
  readonly refreshAfter: Date;
}

/**
 * The OIDC side of the principals table: creating or updating a principal at login, found by its
 * verified email, and the refresh state machine (valid → refreshing → valid | needs-login). Each
 * step is one statement, guarded by the row's version where it must not overwrite a change made
 * meanwhile by another instance.
 */
export class PrincipalLoginStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates the principal of a verified email, or (one already has it) updates only its refresh
   * token, refresh time and status: one statement, so concurrent first logins of one user make
   * one principal. Returns its id and whether it was created.
   */
  async upsertByEmail(r: LoginRecord): Promise<{ id: string; created: boolean }> {
    const res = await this.db.query<{ id: string }>(
      `INSERT INTO principals (id, version, claims, email, refresh_token, refresh_after, refresh_status)
       VALUES ($1, 1, $2, $3, $4, $5, ${REFRESH_STATUS.valid})
       ON CONFLICT (email) WHERE email <> '' DO UPDATE
         SET refresh_token = excluded.refresh_token, refresh_after = excluded.refresh_after,
             refresh_status = excluded.refresh_status, version = principals.version + 1
       RETURNING id`,
      [r.newId, JSON.stringify(r.claims), r.email, r.sealedRefreshToken, r.refreshAfter],
    );
    const id = res.rows[0]!.id;
    return { id, created: id === r.newId };
  }

  /** The refresh data of a principal, or undefined when it does not exist. */
  async state(id: string): Promise<RefreshState | undefined> {
    const r = await this.db.query<{
      version: string;
      refresh_token: string;
      refresh_after: Date;
      refresh_status: string;
    }>("SELECT version, refresh_token, refresh_after, refresh_status FROM principals WHERE id = $1", [id]);
    const row = r.rows[0];
    return row
      ? {
          version: Number(row.version),
          sealedRefreshToken: row.refresh_token,
          refreshAfter: row.refresh_after,
          status: Number(row.refresh_status),
        }
      : undefined;
  }

  /**
   * Claims the refresh of a principal still at `version`: marks it refreshing until `graceUntil`
   * (other instances accept it meanwhile). Returns the new version, or undefined when another
   * instance changed it first (it refreshes, or a login did).
   */
  async claim(id: string, version: number, graceUntil: Date): Promise<number | undefined> {
    return this.versioned(
      `UPDATE principals SET refresh_status = ${REFRESH_STATUS.refreshing}, refresh_after = $3, version = version + 1
        WHERE id = $1 AND version = $2 RETURNING version`,
      [id, version, graceUntil],
    );
  }

  /**
   * Records a successful refresh of a principal still at `version` (the claim's): valid until
   * `refreshAfter`, with the provider's new refresh token when it rotated it.
   */
  async refreshed(
    id: string,
    version: number,
    refreshAfter: Date,
    sealedRefreshToken: string | undefined,
  ): Promise<number | undefined> {
    return this.versioned(
      `UPDATE principals SET refresh_status = ${REFRESH_STATUS.valid}, refresh_after = $3,
              refresh_token = COALESCE($4, refresh_token), version = version + 1
        WHERE id = $1 AND version = $2 RETURNING version`,
      [id, version, refreshAfter, sealedRefreshToken ?? null],
    );
  }

  /** Marks a principal still at `version` as needing a new login (its refresh token is dropped). */
  async needsLogin(id: string, version: number): Promise<number | undefined> {
    return this.versioned(
      `UPDATE principals SET refresh_status = ${REFRESH_STATUS.needsLogin}, refresh_token = '', version = version + 1
        WHERE id = $1 AND version = $2 RETURNING version`,
      [id, version],
    );
  }

  private async versioned(sql: string, params: unknown[]): Promise<number | undefined> {
    const r = await this.db.query<{ version: string }>(sql, params);
    const row = r.rows[0];
    return row ? Number(row.version) : undefined;
  }
}
