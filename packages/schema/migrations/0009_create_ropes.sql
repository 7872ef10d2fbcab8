-- Ropes: committed, immutable contents. The key is the BLAKE3 Merkle root of the ordered chunk
-- list (see rope-hash.ts). A header row exists only once every rope_chunks row is written, so a
-- visible rope is always complete.
CREATE TABLE ropes (
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  hash BYTEA NOT NULL CHECK (length(hash) = 32),
  size INT8 NOT NULL CHECK (size >= 0),
  chunk_count INT8 NOT NULL CHECK (chunk_count >= 0),
  chunk_size INT4 NOT NULL CHECK (chunk_size > 0),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, hash)
);
