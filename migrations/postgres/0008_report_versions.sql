-- Earlier versions of reports: the text each correction replaced, kept for
-- the record of what a campaign sent.

CREATE TABLE report_versions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id     BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    meeting_date  DATE,
    summary       TEXT,
    body_markdown TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    replaced_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX report_versions_by_report ON report_versions (report_id);
