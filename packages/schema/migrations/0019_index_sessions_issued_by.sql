-- Revoking a session revokes what was issued under it: find the children by issuer.
CREATE INDEX sessions_issued_by ON sessions (issued_by);
