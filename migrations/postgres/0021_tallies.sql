-- How many deliveries each campaign has in each state, and how many
-- subscriptions each list has in each status, kept as they change, so that
-- a campaign's page, the dashboard and the lists page read a few rows
-- rather than count 600,000 index entries on every request. Triggers keep
-- them, so every write that moves a delivery or a subscription, including
-- the cascades of a deleted campaign, list or subscriber, moves its count
-- in the same transaction.
--
-- Several instances claim and settle one campaign's deliveries at once. A
-- count kept in one row per state would be a row each of their
-- transactions locks until it commits, one after another, and two of them
-- taking two such rows in opposite orders would deadlock. So each statement
-- that moves deliveries or subscriptions appends its changes, summed by key,
-- as rows of their own (a statement-level trigger with transition tables:
-- one insert per statement, not per row), and no writer ever waits for
-- another here. A count is the sum of its key's rows; a reader that finds
-- many folds them into one per key (the store's `fold` statements), taking
-- only rows no one else is folding.
--
-- The tallies name their campaign or list without a foreign key: checking
-- one would lock the campaign's row in every claim and every outcome, the
-- same row in each instance's transactions at once, which PostgreSQL does
-- by writing a lock, and a multixact when they overlap. A campaign's or a
-- list's deletion takes its tallies with it by a trigger instead.
CREATE TABLE delivery_tallies (
    campaign_id BIGINT NOT NULL,
    state       TEXT NOT NULL,
    n           BIGINT NOT NULL
);
CREATE INDEX delivery_tallies_by_campaign ON delivery_tallies (campaign_id);

INSERT INTO delivery_tallies (campaign_id, state, n)
    SELECT campaign_id, state, COUNT(*) FROM deliveries GROUP BY campaign_id, state;

CREATE FUNCTION delivery_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_tallies (campaign_id, state, n)
        SELECT campaign_id, state, COUNT(*) FROM new_rows GROUP BY campaign_id, state;
    RETURN NULL;
END
$$;

CREATE FUNCTION delivery_tallies_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_tallies (campaign_id, state, n)
        SELECT campaign_id, state, SUM(n) FROM (
            SELECT campaign_id, state, -1 AS n FROM old_rows
            UNION ALL
            SELECT campaign_id, state, 1 AS n FROM new_rows) AS moves
         GROUP BY campaign_id, state
        HAVING SUM(n) <> 0;
    RETURN NULL;
END
$$;

-- The deliveries a campaign's deletion takes with it are not counted: the
-- campaign's own trigger below removes its tallies.
CREATE FUNCTION delivery_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_tallies (campaign_id, state, n)
        SELECT o.campaign_id, o.state, -COUNT(*) FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM campaigns c WHERE c.id = o.campaign_id)
         GROUP BY o.campaign_id, o.state;
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_tallies_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_tallies_insert();
CREATE TRIGGER delivery_tallies_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_tallies_update();
CREATE TRIGGER delivery_tallies_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_tallies_delete();

CREATE FUNCTION delivery_tallies_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_tallies t USING old_rows o WHERE t.campaign_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER delivery_tallies_forget AFTER DELETE ON campaigns
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_tallies_forget();

CREATE TABLE subscription_tallies (
    list_id BIGINT NOT NULL,
    status  TEXT NOT NULL,
    n       BIGINT NOT NULL
);
CREATE INDEX subscription_tallies_by_list ON subscription_tallies (list_id);

INSERT INTO subscription_tallies (list_id, status, n)
    SELECT list_id, status, COUNT(*) FROM subscriptions GROUP BY list_id, status;

CREATE FUNCTION subscription_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscription_tallies (list_id, status, n)
        SELECT list_id, status, COUNT(*) FROM new_rows GROUP BY list_id, status;
    RETURN NULL;
END
$$;

CREATE FUNCTION subscription_tallies_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscription_tallies (list_id, status, n)
        SELECT list_id, status, SUM(n) FROM (
            SELECT list_id, status, -1 AS n FROM old_rows
            UNION ALL
            SELECT list_id, status, 1 AS n FROM new_rows) AS moves
         GROUP BY list_id, status
        HAVING SUM(n) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION subscription_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscription_tallies (list_id, status, n)
        SELECT o.list_id, o.status, -COUNT(*) FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM lists l WHERE l.id = o.list_id)
         GROUP BY o.list_id, o.status;
    RETURN NULL;
END
$$;

CREATE FUNCTION subscription_tallies_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM subscription_tallies t USING old_rows o WHERE t.list_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER subscription_tallies_forget AFTER DELETE ON lists
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscription_tallies_forget();

CREATE TRIGGER subscription_tallies_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscription_tallies_insert();
CREATE TRIGGER subscription_tallies_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscription_tallies_update();
CREATE TRIGGER subscription_tallies_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscription_tallies_delete();

-- deliveries_by_state (campaign_id, state) was kept for the counts alone
-- (migration 0020): everything else that looks deliveries up by campaign
-- and state uses deliveries_by_state_id (campaign_id, state, id). With the
-- tallies, it goes: an entry fewer for each of a delivery's three writes.
DROP INDEX deliveries_by_state;
