-- Replaced by files_by_content (0045).
DROP INDEX files_content;
