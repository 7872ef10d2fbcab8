-- A deleted tenant is hidden at once and its data reclaimed by garbage collection in bounded
-- batches; the row itself goes last.
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMPTZ;
