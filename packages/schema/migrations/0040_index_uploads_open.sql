-- Open uploads of one principal in a tenant: Begin counts them against the tenant's limit on open
-- uploads (committed uploads are not in the index; expired ones are skipped by expires_at).
CREATE INDEX uploads_open ON uploads (tenant_id, principal_id, expires_at) WHERE committed_version IS NULL;
