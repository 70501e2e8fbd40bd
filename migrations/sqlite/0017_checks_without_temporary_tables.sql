-- The same checks on events and suppressions, written so that SQLite can
-- test them cheaply. SQLite tests `x IN (three or more constants)` against a
-- temporary b-tree that it builds anew for every statement that checks it:
-- every bounce inserts two events and a suppression, and building those
-- trees cost more than writing the rows. A chain of comparisons needs none.
-- SQLite cannot alter a CHECK, so both tables are rebuilt, rows and ids kept.

CREATE TABLE subscriber_events_rebuilt (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind = 'join' OR kind = 'confirm' OR kind = 'leave'
                                       OR kind = 'bounce' OR kind = 'soft-bounce'
                                       OR kind = 'complaint' OR kind = 'suppress'
                                       OR kind = 'unsuppress' OR kind = 'auto-reply'),
    source        TEXT NOT NULL CHECK (source = 'web' OR source = 'email' OR source = 'mailbox'
                                       OR source = 'admin'),
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

CREATE TABLE suppressions_rebuilt (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL CHECK (reason = 'unsubscribed' OR reason = 'hard-bounce'
                                    OR reason = 'complaint' OR reason = 'erased'),
    created_at TEXT NOT NULL
);
INSERT INTO suppressions_rebuilt (email_hash, reason, created_at)
SELECT email_hash, reason, created_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_rebuilt RENAME TO suppressions;
CREATE INDEX suppressions_by_time ON suppressions (created_at, email_hash);
