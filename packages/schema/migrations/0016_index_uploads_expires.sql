-- Garbage collection finds expired uploads by expiry.
CREATE INDEX uploads_expires ON uploads (expires_at);
