import { WELL_KNOWN } from "@cacheroach/core";
import { CAP } from "./auth/session.js";
import { BOOTSTRAP_PRINCIPAL } from "./signing-keys.js";
import type { PrincipalStore } from "./store/principal-store.js";
import type { SessionStore } from "./store/session-store.js";
import type { TenantStore } from "./store/tenant-store.js";
import type { VHostStore } from "./store/vhost-store.js";

/** IDs of the sessions every deployment has (fixed, so several instances agree). */
export const PUBLIC_SESSIONS = {
  /** on_principal(unauthenticated), read + delegate: what anonymous HTTP requests act as. */
  publicAccess: "0f0f0f0f-0000-4000-8000-000000000001",
  /** read on the scratchpad "/*", owned by the unauthenticated principal: the scratchpad is public. */
  scratchpadRead: "0f0f0f0f-0000-4000-8000-000000000002",
} as const;

/** The stores {@link ensureBootstrapData} writes to. */
export interface BootstrapStores {
  readonly tenants: TenantStore;
  readonly vhosts: VHostStore;
  readonly principals: PrincipalStore;
  readonly sessions: SessionStore;
}

const YEAR_MS = 365.25 * 24 * 3600 * 1000;

/**
 * Creates the well-known rows every deployment has, idempotently and safely when several
 * instances start at once (each is inserted only if absent): the "Default Scratchpad" tenant
 * served for vhost "*", the unauthenticated principal with its public session and its read grant
 * on the scratchpad, and the nil principal of bootstrap tokens. Removing the scratchpad grant
 * makes it private.
 */
export async function ensureBootstrapData(stores: BootstrapStores): Promise<void> {
  const scratch = WELL_KNOWN.scratchpadTenant;
  const anon = WELL_KNOWN.unauthenticatedPrincipal;
  const now = new Date();
  await stores.tenants.insertIfAbsent(scratch, "Default Scratchpad");
  await stores.vhosts.insertIfAbsent("*", scratch);
  await stores.principals.insertIfAbsent(anon, { name: "Unauthenticated Principal", source: "bootstrap" });
  await stores.principals.insertIfAbsent(BOOTSTRAP_PRINCIPAL, { name: "Bootstrap", source: "bootstrap" });
  await stores.sessions.insertIfAbsent({
    id: PUBLIC_SESSIONS.publicAccess,
    principalId: anon,
    caps: CAP.read | CAP.delegate,
    scope: { kind: "principal", principalId: anon },
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 100 * YEAR_MS),
    name: "public-access-v0",
    note: "anonymous HTTP access",
    issuedBy: undefined,
  });
  await stores.sessions.insertIfAbsent({
    id: PUBLIC_SESSIONS.scratchpadRead,
    principalId: anon,
    caps: CAP.read,
    scope: { kind: "location", tenantId: scratch, path: "/*", version: 0 },
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 10 * YEAR_MS),
    name: "<bootstrap>",
    note: "the scratchpad is public",
    issuedBy: undefined,
  });
}
