-- The head of each path: the highest version ever written (live or deleted) and a copy of its
-- row, so listings are one ordered range scan and version numbers are never reused.
CREATE TABLE files (
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
  PRIMARY KEY (tenant_id, path)
);
