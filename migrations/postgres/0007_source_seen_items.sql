-- The items a feed had when it was added as a source, recorded as seen so
-- that polls do not import them: adding a feed does not mail its back
-- catalogue. Removing the source deletes its rows.
CREATE TABLE source_seen_items (
    source_id BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    guid      TEXT NOT NULL,
    PRIMARY KEY (source_id, guid)
);
