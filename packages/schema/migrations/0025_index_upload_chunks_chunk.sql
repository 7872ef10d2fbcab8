-- Is a chunk referenced by an upload in progress? (As rope_chunks_chunk, for upload_chunks.)
CREATE INDEX upload_chunks_chunk ON upload_chunks (tenant_id, chunk_hash);
