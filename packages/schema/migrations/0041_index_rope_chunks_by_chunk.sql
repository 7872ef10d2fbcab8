-- Is a chunk referenced by a rope? (Garbage collection, scrub, and the foreign key check of deleting
-- a chunk.) The hash leads: with (tenant_id, chunk_hash), a tenant the statistics did not know yet
-- made PostgreSQL read a rope's list through this index, filtering the whole tenant per rope.
CREATE INDEX rope_chunks_by_chunk ON rope_chunks (chunk_hash, tenant_id);
