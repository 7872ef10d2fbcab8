import type { Db, Queryable } from "../db/db.js";
import { isUniqueViolation } from "../db/sqlstate.js";
import { CacheroachError } from "../errors.js";

/** A stored principal (refresh data stays inside the server and is not part of this record). */
export interface PrincipalRecord {
  readonly id: string;
  readonly version: number;
  readonly claims: Record<string, unknown>;
  readonly email: string;
  readonly emailDomain: string;
}

/** Principals with optimistic-concurrency versions. */
export class PrincipalStore {
  constructor(private readonly db: Db) {}

  /** Creates (version 0) or updates a principal's claims; email_domain is set only on create. */
  async ensure(
    id: string,
    version: number,
    claims: Record<string, unknown>,
    emailDomain: string,
  ): Promise<PrincipalRecord> {
    const email =
      typeof claims["email"] === "string" && claims["email_verified"] === true
        ? claims["email"].toLowerCase()
        : "";
    let r: { rows: { version: string; email_domain: string }[] };
    try {
      r =
        version === 0
          ? await this.db.query(
              `INSERT INTO principals (id, version, claims, email, email_domain) VALUES ($1, 1, $2, $3, $4)
               ON CONFLICT (id) DO NOTHING RETURNING version, email_domain`,
              [id, JSON.stringify(claims), email, emailDomain.toLowerCase()],
            )
          : await this.db.query(
              `UPDATE principals SET claims = $2, email = $3, version = version + 1 WHERE id = $1 AND version = $4
               RETURNING version, email_domain`,
              [id, JSON.stringify(claims), email, version],
            );
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new CacheroachError(
          "ERR_ALREADY_EXISTS",
          "another principal already has that email or email domain",
        );
      }
      throw err;
    }
    const row = r.rows[0];
    if (!row)
      throw new CacheroachError(
        "ERR_VERSION_SKEW",
        `principal ${id} ${version === 0 ? "already exists" : `is not at version ${version}`}`,
      );
    return { id, version: Number(row.version), claims, email, emailDomain: row.email_domain };
  }

  /** Creates a principal (version 1, no email) unless one with this id exists. */
  async insertIfAbsent(id: string, claims: Record<string, unknown>): Promise<void> {
    await this.db.query(
      "INSERT INTO principals (id, version, claims) VALUES ($1, 1, $2) ON CONFLICT (id) DO NOTHING",
      [id, JSON.stringify(claims)],
    );
  }

  /**
   * Deletes a principal at its current version, with its sessions; `first` runs in the same
   * transaction before the delete (e.g. revoking what was issued under those sessions), and is
   * undone if the delete fails.
   */
  async delete(id: string, version: number, first?: (q: Queryable) => Promise<unknown>): Promise<void> {
    await this.db.tx(async (q) => {
      await first?.(q);
      const r = await q.query("DELETE FROM principals WHERE id = $1 AND version = $2", [id, version]);
      if (r.rowCount === 0)
        throw new CacheroachError("ERR_VERSION_SKEW", `principal ${id} does not exist at version ${version}`);
    });
  }

  /** One principal by ID, or undefined. */
  async get(id: string): Promise<PrincipalRecord | undefined> {
    return (await this.select("id = $1", [id]))[0];
  }

  /** The principal with this verified (lower-cased) email, or undefined. */
  async byEmail(email: string): Promise<PrincipalRecord | undefined> {
    return email === "" ? undefined : (await this.select("email = $1", [email]))[0];
  }

  /** The domain principal of this (lower-cased) email domain, or undefined. */
  async byEmailDomain(domain: string): Promise<PrincipalRecord | undefined> {
    return domain === "" ? undefined : (await this.select("email_domain = $1", [domain]))[0];
  }

  /** Every principal. */
  async list(): Promise<PrincipalRecord[]> {
    return this.select("true ORDER BY created_at, id", []);
  }

  private async select(where: string, params: unknown[]): Promise<PrincipalRecord[]> {
    const r = await this.db.query<{
      id: string;
      version: string;
      claims: Record<string, unknown>;
      email: string;
      email_domain: string;
    }>(`SELECT id, version, claims, email, email_domain FROM principals WHERE ${where}`, params);
    return r.rows.map((row) => ({
      id: row.id,
      version: Number(row.version),
      claims: row.claims,
      email: row.email,
      emailDomain: row.email_domain,
    }));
  }
}
