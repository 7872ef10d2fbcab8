-- Physical usage per tenant, kept exact by every statement that stores or deletes chunks (in the
-- same statement or transaction). Spread over a few rows per tenant (shard) so concurrent
-- writers of one tenant do not all update one row; the usage is the sum over the shards.
CREATE TABLE tenant_usage (
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  shard INT4 NOT NULL CHECK (shard >= 0),
  chunks INT8 NOT NULL DEFAULT 0,
  bytes INT8 NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, shard)
);
