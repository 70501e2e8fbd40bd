-- The web admin's subscriber search and its paged lists.
-- A search matches the start of an address or of a name, case-insensitively,
-- as a range in byte order (COLLATE "C"), which these indexes serve whatever
-- the database's collation.
CREATE INDEX subscribers_by_email_prefix ON subscribers ((email_key COLLATE "C"));
CREATE INDEX subscribers_by_name ON subscribers ((lower(name) COLLATE "C"));
-- The suppressions page, newest first, a page at a time.
CREATE INDEX suppressions_by_time ON suppressions (created_at, email_hash);
-- The blocklisted subscribers, who are few: the lists' counts leave them out.
CREATE INDEX subscribers_blocklisted ON subscribers (id) WHERE status = 'blocklisted';
-- A suppression's subscriber, by the address's hash, for the suppressions page.
CREATE INDEX subscribers_by_hash ON subscribers (email_hash);
