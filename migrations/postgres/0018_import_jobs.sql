-- The web admin's CSV imports, so that one survives a restart: the daemon
-- resumes a running import from the offset its last batch committed (each
-- batch's transaction advances its row). The newest finished ones are kept.
CREATE TABLE import_jobs (
    token       TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    -- The target lists' slugs, a JSON array.
    lists       JSONB NOT NULL,
    confirmed   BOOLEAN NOT NULL,
    -- Who started it, for the audit log's line at its end.
    actor       TEXT NOT NULL,
    actor_ip    TEXT,
    -- The process running it (host, process id and start time).
    worker      TEXT NOT NULL,
    -- The spooled upload and its rejects file.
    upload      TEXT NOT NULL,
    rejects     TEXT NOT NULL,
    size        BIGINT NOT NULL,
    -- How far into the (CRLF-folded) upload the committed batches reach.
    bytes       BIGINT NOT NULL DEFAULT 0,
    imported    BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    unchanged   BIGINT NOT NULL DEFAULT 0,
    suppressed  BIGINT NOT NULL DEFAULT 0,
    rejected    BIGINT NOT NULL DEFAULT 0,
    unconfirmed BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
-- One import runs at a time.
CREATE UNIQUE INDEX import_jobs_one_running ON import_jobs (state) WHERE state = 'running';
-- The finished ones, newest first, to forget the oldest.
CREATE INDEX import_jobs_by_start ON import_jobs (started_at);
