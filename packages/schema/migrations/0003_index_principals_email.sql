-- At most one principal per verified email address.
CREATE UNIQUE INDEX principals_email ON principals (email) WHERE email <> '';
