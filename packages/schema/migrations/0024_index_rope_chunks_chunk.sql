-- Is a chunk referenced by a rope? Garbage collection asks for every chunk it considers, and the
-- foreign key check of deleting a chunk asks it too (without this index: a scan of rope_chunks).
CREATE INDEX rope_chunks_chunk ON rope_chunks (tenant_id, chunk_hash);
