-- Every version of every file. Paths are stored as their UTF-8 bytes so ordering and prefix
-- ranges are bytewise on PostgreSQL (any collation) and CockroachDB alike.
CREATE TABLE file_versions (
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  path BYTEA NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
  version INT8 NOT NULL CHECK (version > 0),
  rope_hash BYTEA NOT NULL,
  size INT8 NOT NULL CHECK (size >= 0),
  chunk_size INT4 NOT NULL,
  content_type TEXT NOT NULL DEFAULT '',
  meta JSONB NOT NULL DEFAULT '{}',
  ctime TIMESTAMPTZ NOT NULL,
  mtime TIMESTAMPTZ NOT NULL,
  dtime TIMESTAMPTZ,
  PRIMARY KEY (tenant_id, path, version),
  FOREIGN KEY (tenant_id, rope_hash) REFERENCES ropes (tenant_id, hash)
);
