-- Is a rope referenced by a file version, and which files does a rope hold (garbage collection,
-- the foreign key check of deleting a rope, and scrub naming the files a damaged rope breaks).
CREATE INDEX file_versions_rope ON file_versions (tenant_id, rope_hash);
