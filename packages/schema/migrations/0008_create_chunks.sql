-- Chunks: content-addressed blocks, keyed per tenant by BLAKE3-256 of their bytes, so
-- deduplication never crosses tenants. Writing an existing chunk is ON CONFLICT DO NOTHING.
CREATE TABLE chunks (
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  hash BYTEA NOT NULL CHECK (length(hash) = 32),
  data BYTEA NOT NULL CHECK (length(data) > 0),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, hash)
);
