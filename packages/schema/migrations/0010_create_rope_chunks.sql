-- The ordered chunk list of each rope. The foreign key to chunks keeps referenced chunks alive.
CREATE TABLE rope_chunks (
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  rope_hash BYTEA NOT NULL,
  off INT8 NOT NULL CHECK (off >= 0),
  chunk_hash BYTEA NOT NULL,
  length INT4 NOT NULL CHECK (length > 0),
  PRIMARY KEY (tenant_id, rope_hash, off),
  FOREIGN KEY (tenant_id, chunk_hash) REFERENCES chunks (tenant_id, hash)
);
