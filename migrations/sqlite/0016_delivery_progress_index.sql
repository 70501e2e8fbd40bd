-- A campaign's status page, the campaign list and the dashboard, each
-- answered from index ranges rather than from every delivery of a campaign.
-- The rate of the last minute: the messages sent since then, by time.
CREATE INDEX deliveries_sent ON deliveries (campaign_id, sent_at) WHERE state = 'sent';
-- The few deliveries that bounced, drew a complaint or may have arrived
-- twice: counted apart from the states (which deliveries_by_state counts
-- alone), from this index alone.
CREATE INDEX deliveries_remarkable ON deliveries (campaign_id, ambiguous, feedback)
    WHERE ambiguous > 0 OR feedback IS NOT NULL;
-- The last errors, newest first.
CREATE INDEX deliveries_errors ON deliveries (campaign_id, updated_at)
    WHERE state IN ('deferred', 'failed') AND last_error IS NOT NULL;
-- The recipients a page at a time, in id order (SQLite appends the rowid,
-- which is the id, to every index: deliveries_by_state serves a state's).
CREATE INDEX deliveries_by_campaign ON deliveries (campaign_id);
-- The dashboard's week of sign-ups and unsubscribes.
CREATE INDEX subscriptions_by_consent ON subscriptions (consent_at);
CREATE INDEX subscriptions_by_unsubscribe ON subscriptions (unsubscribed_at)
    WHERE unsubscribed_at IS NOT NULL;
