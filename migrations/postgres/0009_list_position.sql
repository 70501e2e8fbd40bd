-- Where a list appears among the others on the subscribe form and the
-- preferences page: lowest first, then by slug (`necmail list set SLUG
-- --position N`).
ALTER TABLE lists ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
