-- Per-tenant limit on uploads one principal may have open at once; NULL: the server's default.
ALTER TABLE tenants ADD COLUMN max_open_uploads INT8 CHECK (max_open_uploads >= 0);
