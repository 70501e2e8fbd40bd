-- Campaigns (a report sent to lists) and their deliveries: one row per
-- recipient, fixed when the campaign starts, each moving through
-- queued → sending → sent | deferred | failed | skipped.

CREATE TABLE campaigns (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id    BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    subject      TEXT,
    filter       JSONB NOT NULL DEFAULT '{}',
    state        TEXT NOT NULL CHECK (state IN ('draft', 'scheduled', 'held', 'sending', 'paused', 'done', 'cancelled')),
    send_at      TIMESTAMPTZ,
    pause_reason TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX campaigns_by_state ON campaigns (state, send_at);

CREATE TABLE campaign_lists (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    list_id     BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, list_id)
);

CREATE TABLE deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id    BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id          BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    ambiguous        INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    lease_until      TIMESTAMPTZ,
    next_attempt_at  TIMESTAMPTZ,
    first_attempt_at TIMESTAMPTZ,
    last_error       TEXT,
    smtp_reply       TEXT,
    sent_at          TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_queued ON deliveries (campaign_id, id) WHERE state = 'queued';
CREATE INDEX deliveries_deferred ON deliveries (campaign_id, next_attempt_at) WHERE state = 'deferred';
CREATE INDEX deliveries_sending ON deliveries (campaign_id, lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_by_state ON deliveries (campaign_id, state);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
