-- Find/delegation lookups list a principal's sessions.
CREATE INDEX sessions_principal ON sessions (principal_id, expires_at);
