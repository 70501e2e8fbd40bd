-- Self-service through the web: the confirmation a subscription awaits, and
-- the confirmation emails sent, for the per-address limit.

-- The issued_at (unix seconds) of the confirmation an unconfirmed
-- subscription awaits: a new sign-up re-stamps it and confirming clears it,
-- so only the latest confirmation link works, and only once.
ALTER TABLE subscriptions ADD COLUMN confirm_issued_at BIGINT;

-- One row per confirmation email sent, by the address's suppression hash (so
-- no address is stored for people who never confirm); rows older than the
-- limit's window are pruned.
CREATE TABLE confirmation_emails (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_hash TEXT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX confirmation_emails_by_address ON confirmation_emails (email_hash, sent_at);
CREATE INDEX confirmation_emails_by_time ON confirmation_emails (sent_at);
