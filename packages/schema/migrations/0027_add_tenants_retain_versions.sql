-- Per-tenant retention override: how many deleted or superseded versions of each path to keep
-- whatever their age (NULL: the server's default).
ALTER TABLE tenants ADD COLUMN retain_versions INT8 CHECK (retain_versions >= 0);
