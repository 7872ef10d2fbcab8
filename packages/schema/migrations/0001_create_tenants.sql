-- Tenants: separate file trees. Versions implement optimistic concurrency for Ensure.
CREATE TABLE tenants (
  id UUID PRIMARY KEY,
  label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 256),
  version INT8 NOT NULL CHECK (version > 0),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
