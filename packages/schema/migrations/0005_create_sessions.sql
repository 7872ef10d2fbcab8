-- Sessions: durable grants presented as JWTs. A row is checked on use (with a short cache), so
-- setting revoked_at revokes the session everywhere. The scope is stored in full (kind, target
-- principal, tenant, path, version) so it reads back exactly as issued.
CREATE TABLE sessions (
  id UUID PRIMARY KEY,
  principal_id UUID NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
  capabilities INT8 NOT NULL CHECK (capabilities >= 0 AND capabilities < 32),
  scope_kind TEXT NOT NULL CHECK (scope_kind IN ('super', 'principal', 'location')),
  scope_principal UUID,
  scope_tenant UUID REFERENCES tenants (id) ON DELETE CASCADE,
  scope_path TEXT,
  scope_version INT8 NOT NULL DEFAULT 0,
  issued_by UUID,
  issued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NOT NULL,
  revoked_at TIMESTAMPTZ,
  name TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT ''
);
