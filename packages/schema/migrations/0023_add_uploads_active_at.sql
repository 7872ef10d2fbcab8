-- When an upload last did something (a step touches it, at most every few seconds): garbage
-- collection expires uploads idle for longer than the retention and never those still sending.
ALTER TABLE uploads ADD COLUMN active_at TIMESTAMPTZ NOT NULL DEFAULT now();
