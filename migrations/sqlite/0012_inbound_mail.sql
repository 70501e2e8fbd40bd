-- Inbound mail: what happened to each address (a join or leave by email, a
-- bounce, a complaint, a suppression added or lifted), and the feedback a
-- delivery got. An event keeps the address in `email` until the subscriber
-- is removed; the hash (as in suppressions) stays, so the record of a
-- suppression outlives the person's data. The list, campaign and delivery
-- are plain ids, not keys: removing a campaign keeps its bounces' record.

CREATE TABLE subscriber_events (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('join', 'confirm', 'leave', 'bounce', 'soft-bounce',
                                                'complaint', 'suppress', 'unsuppress', 'auto-reply')),
    source        TEXT NOT NULL CHECK (source IN ('web', 'email', 'mailbox', 'admin')),
    email         TEXT,
    email_hash    TEXT NOT NULL,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id       INTEGER,
    campaign_id   INTEGER,
    delivery_id   INTEGER,
    status        TEXT,
    reason        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscriber_events_by_address ON subscriber_events (email_hash, kind, at);
CREATE INDEX subscriber_events_by_time ON subscriber_events (at);
CREATE INDEX subscriber_events_by_subscriber ON subscriber_events (subscriber_id);
CREATE INDEX subscriber_events_by_campaign ON subscriber_events (campaign_id, kind);

ALTER TABLE deliveries ADD COLUMN feedback TEXT
    CHECK (feedback IN ('bounced', 'soft-bounce', 'complained'));
