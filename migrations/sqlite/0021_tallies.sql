-- How many deliveries each campaign has in each state, and how many
-- subscriptions each list has in each status, kept as they change, so that
-- a campaign's page, the dashboard and the lists page read a few rows
-- rather than count 600,000 index entries on every request. Triggers keep
-- them, so every write that moves a delivery or a subscription, including
-- the cascades of a deleted campaign, list or subscriber, moves its count
-- in the same transaction. SQLite has one writer at a time, so each count
-- is one row, changed in place.
CREATE TABLE delivery_tallies (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, state)
) WITHOUT ROWID;

INSERT INTO delivery_tallies (campaign_id, state, n)
    SELECT campaign_id, state, COUNT(*) FROM deliveries GROUP BY campaign_id, state;

CREATE TRIGGER delivery_tallies_insert AFTER INSERT ON deliveries
BEGIN
    INSERT INTO delivery_tallies (campaign_id, state, n) VALUES (NEW.campaign_id, NEW.state, 1)
        ON CONFLICT (campaign_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER delivery_tallies_update AFTER UPDATE OF state, campaign_id ON deliveries
    WHEN OLD.state IS NOT NEW.state OR OLD.campaign_id IS NOT NEW.campaign_id
BEGIN
    UPDATE delivery_tallies SET n = n - 1
     WHERE campaign_id = OLD.campaign_id AND state = OLD.state;
    INSERT INTO delivery_tallies (campaign_id, state, n) VALUES (NEW.campaign_id, NEW.state, 1)
        ON CONFLICT (campaign_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER delivery_tallies_delete AFTER DELETE ON deliveries
BEGIN
    UPDATE delivery_tallies SET n = n - 1
     WHERE campaign_id = OLD.campaign_id AND state = OLD.state;
END;

CREATE TABLE subscription_tallies (
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status  TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (list_id, status)
) WITHOUT ROWID;

INSERT INTO subscription_tallies (list_id, status, n)
    SELECT list_id, status, COUNT(*) FROM subscriptions GROUP BY list_id, status;

CREATE TRIGGER subscription_tallies_insert AFTER INSERT ON subscriptions
BEGIN
    INSERT INTO subscription_tallies (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)
        ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER subscription_tallies_update AFTER UPDATE OF status, list_id ON subscriptions
    WHEN OLD.status IS NOT NEW.status OR OLD.list_id IS NOT NEW.list_id
BEGIN
    UPDATE subscription_tallies SET n = n - 1
     WHERE list_id = OLD.list_id AND status = OLD.status;
    INSERT INTO subscription_tallies (list_id, status, n) VALUES (NEW.list_id, NEW.status, 1)
        ON CONFLICT (list_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER subscription_tallies_delete AFTER DELETE ON subscriptions
BEGIN
    UPDATE subscription_tallies SET n = n - 1
     WHERE list_id = OLD.list_id AND status = OLD.status;
END;
