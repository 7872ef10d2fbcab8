-- Per-tenant quota on physical bytes (chunks stored); NULL: the server's default (0: none).
ALTER TABLE tenants ADD COLUMN quota_bytes INT8 CHECK (quota_bytes >= 0);
