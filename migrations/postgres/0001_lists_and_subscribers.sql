-- Lists, subscribers, their subscriptions with consent, and suppressions.

CREATE TABLE lists (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    opt_in      TEXT NOT NULL CHECK (opt_in IN ('double', 'single')),
    public      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscribers (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      TEXT NOT NULL,
    email_key  TEXT NOT NULL UNIQUE,
    -- SHA-256 of email_key, as in suppressions: lets SQL leave suppressed addresses out.
    email_hash TEXT NOT NULL,
    name       TEXT,
    attributes JSONB NOT NULL DEFAULT '{}',
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocklisted')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id         BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'unsubscribed')),
    consent_at      TIMESTAMPTZ NOT NULL,
    consent_method  TEXT NOT NULL CHECK (consent_method IN ('form', 'email', 'import', 'admin')),
    consent_ip      TEXT,
    consent_wording TEXT NOT NULL,
    confirmed_at    TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ,
    PRIMARY KEY (subscriber_id, list_id)
);
CREATE INDEX subscriptions_by_list ON subscriptions (list_id, status);

CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard-bounce', 'complaint', 'erased')),
    created_at TIMESTAMPTZ NOT NULL
);
