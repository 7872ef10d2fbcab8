import type { Db } from "../db/db.js";
import { CacheroachError } from "../errors.js";

/** A stored tenant. */
export interface TenantRecord {
  readonly id: string;
  readonly label: string;
  readonly version: number;
}

/** Tenants with optimistic-concurrency versions. */
export class TenantStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates (version 0) or updates (version = stored version) a tenant; returns it with its new
   * version. A stale version is ERR_VERSION_SKEW and changes nothing.
   */
  async ensure(id: string, label: string, version: number): Promise<TenantRecord> {
    const r =
      version === 0
        ? await this.db.query<{ version: string }>(
            "INSERT INTO tenants (id, label, version) VALUES ($1, $2, 1) ON CONFLICT (id) DO NOTHING RETURNING version",
            [id, label],
          )
        : await this.db.query<{ version: string }>(
            "UPDATE tenants SET label = $2, version = version + 1 WHERE id = $1 AND version = $3 AND deleted_at IS NULL RETURNING version",
            [id, label, version],
          );
    const row = r.rows[0];
    if (!row)
      throw new CacheroachError(
        "ERR_VERSION_SKEW",
        `tenant ${id} ${version === 0 ? "already exists" : `is not at version ${version}`}`,
      );
    return { id, label, version: Number(row.version) };
  }

  /** Creates a tenant (version 1) unless one with this id exists; never changes an existing one. */
  async insertIfAbsent(id: string, label: string): Promise<void> {
    await this.db.query(
      "INSERT INTO tenants (id, label, version) VALUES ($1, $2, 1) ON CONFLICT (id) DO NOTHING",
      [id, label],
    );
  }

  /**
   * Deletes a tenant at its current version: at once it is hidden, its virtual hosts are removed
   * and the sessions scoped to it revoked; its data is then purged by garbage collection in
   * bounded batches (a single cascading DELETE would be one unbounded transaction).
   */
  async delete(id: string, version: number): Promise<void> {
    await this.db.tx(async (q) => {
      const r = await q.query(
        "UPDATE tenants SET deleted_at = now(), version = version + 1 WHERE id = $1 AND version = $2 AND deleted_at IS NULL",
        [id, version],
      );
      if (r.rowCount === 0)
        throw new CacheroachError("ERR_VERSION_SKEW", `tenant ${id} does not exist at version ${version}`);
      await q.query("DELETE FROM vhosts WHERE tenant_id = $1", [id]);
      await q.query("UPDATE sessions SET revoked_at = now() WHERE scope_tenant = $1 AND revoked_at IS NULL", [
        id,
      ]);
    });
  }

  /** One tenant, or undefined. */
  async get(id: string): Promise<TenantRecord | undefined> {
    const r = await this.db.query<{ id: string; label: string; version: string }>(
      "SELECT id, label, version FROM tenants WHERE id = $1 AND deleted_at IS NULL",
      [id],
    );
    const row = r.rows[0];
    return row ? { id: row.id, label: row.label, version: Number(row.version) } : undefined;
  }

  /** Every tenant, ordered by label. */
  async list(): Promise<TenantRecord[]> {
    const r = await this.db.query<{ id: string; label: string; version: string }>(
      "SELECT id, label, version FROM tenants WHERE deleted_at IS NULL ORDER BY label, id",
    );
    return r.rows.map((row) => ({ id: row.id, label: row.label, version: Number(row.version) }));
  }
}
