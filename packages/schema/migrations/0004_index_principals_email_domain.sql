-- At most one domain principal per email domain.
CREATE UNIQUE INDEX principals_email_domain ON principals (email_domain) WHERE email_domain <> '';
