-- Session names are unique per principal (e.g. "<self>").
CREATE UNIQUE INDEX sessions_principal_name ON sessions (principal_id, name) WHERE name <> '';
