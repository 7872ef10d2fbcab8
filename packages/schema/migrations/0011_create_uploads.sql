-- Uploads in progress (and, once committed, the version they produced, so a retried Commit
-- returns the same result instead of writing again).
CREATE TABLE uploads (
  id UUID PRIMARY KEY,
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  principal_id UUID,
  session_id UUID,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NOT NULL,
  committed_version INT8,
  committed_at TIMESTAMPTZ
);
