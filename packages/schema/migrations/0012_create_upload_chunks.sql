-- Chunk lists of uploads in progress, kept apart from committed ropes so nothing committed is
-- ever rewritten. The foreign key to chunks keeps in-flight data safe from garbage collection.
CREATE TABLE upload_chunks (
  upload_id UUID NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
  off INT8 NOT NULL CHECK (off >= 0),
  tenant_id UUID NOT NULL,
  chunk_hash BYTEA NOT NULL,
  length INT4 NOT NULL CHECK (length > 0),
  PRIMARY KEY (upload_id, off),
  FOREIGN KEY (tenant_id, chunk_hash) REFERENCES chunks (tenant_id, hash)
);
