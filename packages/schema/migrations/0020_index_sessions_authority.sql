-- ... and by the grant whose authority they used.
CREATE INDEX sessions_authority ON sessions (authority_id);
