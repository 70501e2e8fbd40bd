-- Reports, and the feeds they are polled from.

CREATE TABLE reports (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    meeting_date  DATE,
    summary       TEXT,
    body_markdown TEXT NOT NULL,
    source_kind   TEXT NOT NULL CHECK (source_kind IN ('file', 'paste', 'url', 'feed')),
    source_ref    TEXT,
    source_guid   TEXT,
    source_link   TEXT,
    content_hash  TEXT NOT NULL UNIQUE,
    published_at  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX reports_by_feed_item ON reports (source_ref, source_guid) WHERE source_guid IS NOT NULL;
CREATE INDEX reports_by_date ON reports (published_at);

CREATE TABLE sources (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,
    category        TEXT,
    etag            TEXT,
    last_modified   TEXT,
    last_checked_at TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE source_lists (
    source_id BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    list_id   BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    PRIMARY KEY (source_id, list_id)
);
