import type { Db } from "../db/db.js";
import { CacheroachError } from "../errors.js";

/**
 * A tenant's own storage policy; an absent field means "the server's default" (settings
 * default-quota, max-open-uploads, retain-versions, retain).
 */
export interface TenantPolicy {
  /** Deleted or superseded versions of each path kept whatever their age. */
  readonly retainVersions?: number | undefined;
  /** Seconds a deleted or superseded version is kept. */
  readonly retainSeconds?: number | undefined;
  /** Physical bytes the tenant may store; 0 = unlimited (even if the server has a default). */
  readonly quotaBytes?: number | undefined;
  /** Uploads one principal may have open in the tenant; 0 = unlimited. */
  readonly maxOpenUploads?: number | undefined;
}

/** A stored tenant. */
export interface TenantRecord {
  readonly id: string;
  readonly label: string;
  readonly version: number;
  /** Its own storage policy (absent fields: server defaults). */
  readonly policy: TenantPolicy;
}

/** The policy columns as they come back (INT8 as strings, NULL = default). */
interface PolicyRow {
  retain_versions: string | null;
  retain_seconds: string | null;
  quota_bytes: string | null;
  max_open_uploads: string | null;
}

const POLICY_COLUMNS = "retain_versions, retain_seconds, quota_bytes, max_open_uploads";

function policyOf(row: PolicyRow): TenantPolicy {
  const n = (v: string | null) => (v === null ? undefined : Number(v));
  return {
    retainVersions: n(row.retain_versions),
    retainSeconds: n(row.retain_seconds),
    quotaBytes: n(row.quota_bytes),
    maxOpenUploads: n(row.max_open_uploads),
  };
}

/** The policy as the four column parameters (undefined → NULL). */
function policyParams(p: TenantPolicy): (number | null)[] {
  return [p.retainVersions ?? null, p.retainSeconds ?? null, p.quotaBytes ?? null, p.maxOpenUploads ?? null];
}

type TenantRow = PolicyRow & { id: string; label: string; version: string };

function recordOf(row: TenantRow): TenantRecord {
  return { id: row.id, label: row.label, version: Number(row.version), policy: policyOf(row) };
}

/** Tenants with optimistic-concurrency versions. */
export class TenantStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates (version 0) or updates (version = stored version) a tenant; returns it with its new
   * version. `policy` replaces the stored policy whole (on create: absent = all defaults; on
   * update: absent = unchanged). A stale version is ERR_VERSION_SKEW and changes nothing.
   */
  async ensure(id: string, label: string, version: number, policy?: TenantPolicy): Promise<TenantRecord> {
    type Row = PolicyRow & { version: string };
    const r =
      version === 0
        ? await this.db.query<Row>(
            `INSERT INTO tenants (id, label, version, ${POLICY_COLUMNS}) VALUES ($1, $2, 1, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING RETURNING version, ${POLICY_COLUMNS}`,
            [id, label, ...policyParams(policy ?? {})],
          )
        : policy === undefined
          ? await this.db.query<Row>(
              `UPDATE tenants SET label = $2, version = version + 1 WHERE id = $1 AND version = $3 AND deleted_at IS NULL
               RETURNING version, ${POLICY_COLUMNS}`,
              [id, label, version],
            )
          : await this.db.query<Row>(
              `UPDATE tenants SET label = $2, version = version + 1,
                 retain_versions = $4, retain_seconds = $5, quota_bytes = $6, max_open_uploads = $7
               WHERE id = $1 AND version = $3 AND deleted_at IS NULL RETURNING version, ${POLICY_COLUMNS}`,
              [id, label, version, ...policyParams(policy)],
            );
    const row = r.rows[0];
    if (!row)
      throw new CacheroachError(
        "ERR_VERSION_SKEW",
        `tenant ${id} ${version === 0 ? "already exists" : `is not at version ${version}`}`,
      );
    return { id, label, version: Number(row.version), policy: policyOf(row) };
  }

  /**
   * A tenant's own storage policy (absent fields: the server's defaults), or undefined when there
   * is no such tenant. For garbage collection and quota checks.
   */
  async policy(id: string): Promise<TenantPolicy | undefined> {
    const r = await this.db.query<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM tenants WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row ? policyOf(row) : undefined;
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
    const r = await this.db.query<TenantRow>(
      `SELECT id, label, version, ${POLICY_COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL`,
      [id],
    );
    const row = r.rows[0];
    return row ? recordOf(row) : undefined;
  }

  /** Every tenant, ordered by label. */
  async list(): Promise<TenantRecord[]> {
    const r = await this.db.query<TenantRow>(
      `SELECT id, label, version, ${POLICY_COLUMNS} FROM tenants WHERE deleted_at IS NULL ORDER BY label, id`,
    );
    return r.rows.map(recordOf);
  }
}
