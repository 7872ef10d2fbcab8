-- Which versions hold a rope? (Garbage collection, scrub.) The hash leads, for the reason of 0041:
-- with (tenant_id, rope_hash), a lookup of a path's versions could be planned through this index.
CREATE INDEX file_versions_by_rope ON file_versions (rope_hash, tenant_id);
