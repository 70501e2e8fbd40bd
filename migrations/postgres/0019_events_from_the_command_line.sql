-- What an admin does with `necmail …` on the command line is recorded as
-- events with the source 'cli', as the web admin's are with 'admin'.

ALTER TABLE subscriber_events DROP CONSTRAINT subscriber_events_source_check;
ALTER TABLE subscriber_events ADD CONSTRAINT subscriber_events_source_check
    CHECK (source IN ('web', 'email', 'mailbox', 'admin', 'cli'));
