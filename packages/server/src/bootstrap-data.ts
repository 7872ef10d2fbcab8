import type { Db } from "./db/db.js";
import { WELL_KNOWN } from "./ids.js";

/**
 * Creates the well-known rows every deployment has, idempotently and safely when several
 * instances start at once: the "Default Scratchpad" tenant served for vhost "*", the
 * unauthenticated principal and the nil principal of bootstrap tokens.
 */
export async function ensureBootstrapData(db: Db): Promise<void> {
  await db.query(
    "INSERT INTO tenants (id, label, version) VALUES ($1, 'Default Scratchpad', 1) ON CONFLICT (id) DO NOTHING",
    [WELL_KNOWN.scratchpadTenant],
  );
  await db.query("INSERT INTO vhosts (host, tenant_id) VALUES ('*', $1) ON CONFLICT (host) DO NOTHING", [
    WELL_KNOWN.scratchpadTenant,
  ]);
  await db.query(
    `INSERT INTO principals (id, version, claims) VALUES ($1, 1, '{"name":"Unauthenticated Principal","source":"bootstrap"}')
     ON CONFLICT (id) DO NOTHING`,
    [WELL_KNOWN.unauthenticatedPrincipal],
  );
  await db.query(
    `INSERT INTO principals (id, version, claims) VALUES ('00000000-0000-0000-0000-000000000000', 1, '{"name":"Bootstrap","source":"bootstrap"}')
     ON CONFLICT (id) DO NOTHING`,
  );
}
