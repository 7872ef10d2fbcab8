-- Live files by content: linking content by its hash (Uploads.Begin{content_hash}) needs read on a
-- live file that holds it, so the server looks for one among the paths the caller may read.
CREATE INDEX files_content ON files (tenant_id, rope_hash, path) WHERE dtime IS NULL;
