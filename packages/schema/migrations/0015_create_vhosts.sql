-- Virtual hosts: HTTP host name (lower-cased, no port, or "*") to tenant.
CREATE TABLE vhosts (
  host TEXT PRIMARY KEY CHECK (length(host) BETWEEN 1 AND 253),
  tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
);
