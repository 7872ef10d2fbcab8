import { WELL_KNOWN } from "@cacheroach/core";
import type { Db } from "./db/db.js";
import { BOOTSTRAP_PRINCIPAL } from "./signing-keys.js";

/** IDs of the sessions every deployment has (fixed, so several instances agree). */
export const PUBLIC_SESSIONS = {
  /** on_principal(unauthenticated), read + delegate: what anonymous HTTP requests act as. */
  publicAccess: "0f0f0f0f-0000-4000-8000-000000000001",
  /** read on the scratchpad "/*", owned by the unauthenticated principal: the scratchpad is public. */
  scratchpadRead: "0f0f0f0f-0000-4000-8000-000000000002",
} as const;

/**
 * Creates the well-known rows every deployment has, idempotently and safely when several
 * instances start at once: the "Default Scratchpad" tenant served for vhost "*", the
 * unauthenticated principal with its public session and its read grant on the scratchpad, and
 * the nil principal of bootstrap tokens. Removing the scratchpad grant makes it private.
 */
export async function ensureBootstrapData(db: Db): Promise<void> {
  const scratch = WELL_KNOWN.scratchpadTenant;
  const anon = WELL_KNOWN.unauthenticatedPrincipal;
  await db.query(
    "INSERT INTO tenants (id, label, version) VALUES ($1, 'Default Scratchpad', 1) ON CONFLICT (id) DO NOTHING",
    [scratch],
  );
  await db.query("INSERT INTO vhosts (host, tenant_id) VALUES ('*', $1) ON CONFLICT (host) DO NOTHING", [
    scratch,
  ]);
  await db.query(
    `INSERT INTO principals (id, version, claims) VALUES ($1, 1, '{"name":"Unauthenticated Principal","source":"bootstrap"}')
     ON CONFLICT (id) DO NOTHING`,
    [anon],
  );
  await db.query(
    `INSERT INTO principals (id, version, claims) VALUES ($1, 1, '{"name":"Bootstrap","source":"bootstrap"}')
     ON CONFLICT (id) DO NOTHING`,
    [BOOTSTRAP_PRINCIPAL],
  );
  await db.query(
    `INSERT INTO sessions (id, principal_id, capabilities, scope_kind, scope_principal, expires_at, name, note)
     VALUES ($1, $2, 5, 'principal', $2, now() + INTERVAL '100 years', 'public-access-v0', 'anonymous HTTP access')
     ON CONFLICT (id) DO NOTHING`,
    [PUBLIC_SESSIONS.publicAccess, anon],
  );
  await db.query(
    `INSERT INTO sessions (id, principal_id, capabilities, scope_kind, scope_tenant, scope_path, expires_at, name, note)
     VALUES ($1, $2, 1, 'location', $3, '/*', now() + INTERVAL '10 years', '<bootstrap>', 'the scratchpad is public')
     ON CONFLICT (id) DO NOTHING`,
    [PUBLIC_SESSIONS.scratchpadRead, anon, scratch],
  );
}
