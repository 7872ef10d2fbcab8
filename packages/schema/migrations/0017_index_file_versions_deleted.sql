-- Garbage collection finds deleted versions past retention by deletion time.
CREATE INDEX file_versions_deleted ON file_versions (dtime) WHERE dtime IS NOT NULL;
