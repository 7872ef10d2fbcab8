-- Replaced by file_versions_by_rope (0043).
DROP INDEX file_versions_rope;
