-- Replaced by rope_chunks_by_chunk (0041).
DROP INDEX rope_chunks_chunk;
