-- Usage of the chunks stored before tenant_usage existed (shard 0).
INSERT INTO tenant_usage (tenant_id, shard, chunks, bytes)
SELECT tenant_id, 0, count(*), sum(length(data)) FROM chunks GROUP BY tenant_id
ON CONFLICT (tenant_id, shard) DO UPDATE SET chunks = excluded.chunks, bytes = excluded.bytes;
