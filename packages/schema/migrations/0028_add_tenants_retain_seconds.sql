-- Per-tenant retention override: how long a deleted or superseded version is kept, in seconds
-- (NULL: the server's default).
ALTER TABLE tenants ADD COLUMN retain_seconds INT8 CHECK (retain_seconds >= 0);
