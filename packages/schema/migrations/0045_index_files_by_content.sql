-- Live files by content (linking content by its hash, Uploads.Begin{content_hash}, needs a live
-- file holding it that the caller may read). The hash leads, for the reason of 0041: with
-- (tenant_id, rope_hash, path), a lookup of a tenant's live paths could be planned through it.
CREATE INDEX files_by_content ON files (rope_hash, tenant_id, path) WHERE dtime IS NULL;
