-- Each delivery's claim and outcome moved it out of one of these and into
-- the other. They hold nothing that deliveries_by_state (campaign_id,
-- state, and the id SQLite appends) does not: the walk of the queue finds
-- its first and last queued id there, and the few deliveries being sent
-- are found there, their leases checked one by one.
DROP INDEX deliveries_queued;
DROP INDEX deliveries_sending;
