-- A send writes each delivery three times: queued when the campaign
-- starts, sending when claimed, then its outcome. PostgreSQL cannot update
-- a delivery in place (HOT) when an indexed column changes, and the state
-- is indexed, so each write adds an entry to every index on deliveries
-- and to each partial index whose condition the new row meets. These two
-- hold nothing that deliveries_by_state_id (campaign_id, state, id) does
-- not: the walk of the queue finds its first and last queued id there, and
-- the few deliveries being sent (no more than the connections sending
-- them, in the campaign's order) are found there, their leases checked one
-- by one. Two index entries fewer per delivery sent. deliveries_by_state
-- stays: with only deliveries_by_state_id, the counts by state read an
-- index eight times the size, and PostgreSQL reads the table instead.
DROP INDEX deliveries_queued;
DROP INDEX deliveries_sending;
