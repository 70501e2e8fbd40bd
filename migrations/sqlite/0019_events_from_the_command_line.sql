-- What an admin does with `necmail …` on the command line is recorded as
-- events with the source 'cli', as the web admin's are with 'admin'. SQLite
-- cannot alter a CHECK, so the table is rebuilt as in 0017, rows and ids kept.

CREATE TABLE subscriber_events_rebuilt (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind = 'join' OR kind = 'confirm' OR kind = 'leave'
                                       OR kind = 'bounce' OR kind = 'soft-bounce'
                                       OR kind = 'complaint' OR kind = 'suppress'
                                       OR kind = 'unsuppress' OR kind = 'auto-reply'),
    source        TEXT NOT NULL CHECK (source = 'web' OR source = 'email' OR source = 'mailbox'
                                       OR source = 'admin' OR source = 'cli'),
    email         TEXT,
    email_hash    TEXT NOT NULL,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id       INTEGER,
    campaign_id   INTEGER,
    delivery_id   INTEGER,
    status        TEXT,
    reason        TEXT NOT NULL DEFAULT ''
);
INSERT INTO subscriber_events_rebuilt
    (id, at, kind, source, email, email_hash, subscriber_id, list_id, campaign_id, delivery_id,
     status, reason)
SELECT id, at, kind, source, email, email_hash, subscriber_id, list_id, campaign_id, delivery_id,
       status, reason
  FROM subscriber_events;
DROP TABLE subscriber_events;
ALTER TABLE subscriber_events_rebuilt RENAME TO subscriber_events;
CREATE INDEX subscriber_events_by_address ON subscriber_events (email_hash, kind, at);
CREATE INDEX subscriber_events_by_time ON subscriber_events (at);
CREATE INDEX subscriber_events_by_subscriber ON subscriber_events (subscriber_id);
CREATE INDEX subscriber_events_by_campaign ON subscriber_events (campaign_id, kind);
