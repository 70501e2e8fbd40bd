-- Lists, subscribers, their subscriptions with consent, and suppressions.
-- Timestamps are RFC 3339 text written by necmail (never SQL defaults), so
-- that they compare correctly as text.

CREATE TABLE lists (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    opt_in      TEXT NOT NULL CHECK (opt_in IN ('double', 'single')),
    public      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE subscribers (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL,
    email_key  TEXT NOT NULL UNIQUE,
    -- SHA-256 of email_key, as in suppressions: lets SQL leave suppressed addresses out.
    email_hash TEXT NOT NULL,
    name       TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocklisted')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id         INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'unsubscribed')),
    consent_at      TEXT NOT NULL,
    consent_method  TEXT NOT NULL CHECK (consent_method IN ('form', 'email', 'import', 'admin')),
    consent_ip      TEXT,
    consent_wording TEXT NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    PRIMARY KEY (subscriber_id, list_id)
);
CREATE INDEX subscriptions_by_list ON subscriptions (list_id, status);

CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard-bounce', 'complaint', 'erased')),
    created_at TEXT NOT NULL
);
