-- Session names are unique per principal among unrevoked sessions (e.g. "<self>"); a refresh
-- revokes the old session and reuses its name.
CREATE UNIQUE INDEX sessions_principal_name ON sessions (principal_id, name) WHERE name <> '' AND revoked_at IS NULL;
