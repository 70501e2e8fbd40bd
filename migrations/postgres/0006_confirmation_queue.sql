-- Confirmation emails, queued: every double opt-in sign-up queues one in
-- the transaction that stores it, and the web server sends them within the
-- hourly limit NECMAIL_CONFIRMATIONS_PER_HOUR, oldest first. A row is stamped
-- sent_at when it is taken to be sent, kept an hour to count against the
-- limit, then pruned. Erasing the subscriber deletes their rows.
CREATE TABLE confirmation_queue (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    issued_at     BIGINT NOT NULL,
    queued_at     TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ
);
CREATE INDEX confirmation_queue_by_sent ON confirmation_queue (sent_at, id);
