import type { Db } from "../db/db.js";
import { isForeignKeyViolation } from "../db/sqlstate.js";
import { CacheroachError } from "../errors.js";

/** A host name → tenant mapping. */
export interface VHostRecord {
  readonly host: string;
  readonly tenantId: string;
}

/** Validates and normalises a host name: lower-case, no port, or "*" for every other host. */
export function normalizeHost(host: string): string {
  const h = host.trim().toLowerCase();
  if (h === "*") return h;
  if (
    h.length === 0 ||
    h.length > 253 ||
    !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(h)
  ) {
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `vhost ${JSON.stringify(host.slice(0, 64))} is not a host name (no port, no scheme) or "*"`,
    );
  }
  return h;
}

/** Virtual hosts: one tenant per host name. */
export class VHostStore {
  constructor(private readonly db: Db) {}

  /** Maps a host to a tenant (replacing an earlier mapping of that host). */
  async ensure(host: string, tenantId: string): Promise<void> {
    try {
      await this.db.query(
        "INSERT INTO vhosts (host, tenant_id) VALUES ($1, $2) ON CONFLICT (host) DO UPDATE SET tenant_id = excluded.tenant_id",
        [host, tenantId],
      );
    } catch (err) {
      if (isForeignKeyViolation(err))
        throw new CacheroachError("ERR_NOT_FOUND", `tenant ${tenantId} does not exist`);
      throw err;
    }
  }

  /** Maps a host to a tenant unless the host is mapped already. */
  async insertIfAbsent(host: string, tenantId: string): Promise<void> {
    await this.db.query(
      "INSERT INTO vhosts (host, tenant_id) VALUES ($1, $2) ON CONFLICT (host) DO NOTHING",
      [host, tenantId],
    );
  }

  /** Removes a mapping if host and tenant both match (idempotent). */
  async delete(host: string, tenantId: string): Promise<void> {
    await this.db.query("DELETE FROM vhosts WHERE host = $1 AND tenant_id = $2", [host, tenantId]);
  }

  /** Every mapping, by host. */
  async list(): Promise<VHostRecord[]> {
    const r = await this.db.query<{ host: string; tenant_id: string }>(
      "SELECT host, tenant_id FROM vhosts ORDER BY host",
    );
    return r.rows.map((row) => ({ host: row.host, tenantId: row.tenant_id }));
  }
}
