-- Garbage collection marks a chunk it found unreferenced (condemns it) and deletes it in a later
-- step only if it is still unreferenced and no upload that could have relied on it is still
-- open (see docs/architecture.md, "Garbage collection"). FindMissing reports condemned chunks as
-- missing and storing a chunk again clears the mark, so no client is told to rely on one.
ALTER TABLE chunks ADD COLUMN condemned_at TIMESTAMPTZ;
