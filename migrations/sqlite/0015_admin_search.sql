-- The web admin's subscriber search and its paged lists.
-- A search matches the start of an address or of a name, case-insensitively:
-- the address by its key (already lower-case, and indexed by its UNIQUE
-- constraint, whose BINARY order is byte order), the name by lower(name).
CREATE INDEX subscribers_by_name ON subscribers (lower(name));
-- The suppressions page, newest first, a page at a time.
CREATE INDEX suppressions_by_time ON suppressions (created_at, email_hash);
-- The blocklisted subscribers, who are few: the lists' counts leave them out.
CREATE INDEX subscribers_blocklisted ON subscribers (id) WHERE status = 'blocklisted';
-- A suppression's subscriber, by the address's hash, for the suppressions page.
CREATE INDEX subscribers_by_hash ON subscribers (email_hash);
