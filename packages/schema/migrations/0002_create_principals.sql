-- Principals: identities. email/email_domain are derived (lower-cased) by the application on
-- write rather than computed columns, so both databases store exactly the same thing.
CREATE TABLE principals (
  id UUID PRIMARY KEY,
  version INT8 NOT NULL CHECK (version > 0),
  claims JSONB NOT NULL DEFAULT '{}',
  email TEXT NOT NULL DEFAULT '',
  email_domain TEXT NOT NULL DEFAULT '',
  refresh_token TEXT NOT NULL DEFAULT '',
  refresh_after TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z',
  refresh_status INT8 NOT NULL DEFAULT 0,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
