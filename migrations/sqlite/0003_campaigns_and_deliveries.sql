-- Campaigns (a report sent to lists) and their deliveries: one row per
-- recipient, fixed when the campaign starts, each moving through
-- queued → sending → sent | deferred | failed | skipped.

CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    report_id    INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    subject      TEXT,
    filter       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(filter)),
    state        TEXT NOT NULL CHECK (state IN ('draft', 'scheduled', 'held', 'sending', 'paused', 'done', 'cancelled')),
    send_at      TEXT,
    pause_reason TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
);
CREATE INDEX campaigns_by_state ON campaigns (state, send_at);

CREATE TABLE campaign_lists (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    list_id     INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, list_id)
);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id          INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    ambiguous        INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    lease_until      TEXT,
    next_attempt_at  TEXT,
    first_attempt_at TEXT,
    last_error       TEXT,
    smtp_reply       TEXT,
    sent_at          TEXT,
    updated_at       TEXT NOT NULL,
    UNIQUE (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_queued ON deliveries (campaign_id, id) WHERE state = 'queued';
CREATE INDEX deliveries_deferred ON deliveries (campaign_id, next_attempt_at) WHERE state = 'deferred';
CREATE INDEX deliveries_sending ON deliveries (campaign_id, lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_by_state ON deliveries (campaign_id, state);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
