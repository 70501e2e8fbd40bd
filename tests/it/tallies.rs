//! The counts a campaign's page, the dashboard and the lists page show:
//! kept by the database as deliveries and subscriptions change (migration
//! 0021), so that a page reads a few rows, not 600,000. Whatever moves a
//! delivery or a subscription, the counts stay those of the rows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use necmail::campaigns::{CampaignState, ClaimFrom, Outcome, Recorded};
use necmail::lists::{ListSlug, OptIn};
use necmail::reports::ReportRef;
use necmail::store::Store;
use necmail::subscribers::SubscriberEmail;

use crate::campaigns::{campaign, paste, world};
use crate::claims::{buffers, partly_sent, plans_of};
use crate::import::import;
use crate::lists::{list_id, new_list, subscriber};
use crate::support::{TestDb, on_both_backends};

const LEASE: Duration = Duration::from_secs(600);

/// Campaign `id`'s counts by state as the store tells them, states with
/// none left out.
async fn told(store: &dyn Store, id: i64) -> BTreeMap<String, i64> {
    let c = store.delivery_counts(id).await.unwrap();
    [
        ("queued", c.queued),
        ("sending", c.sending),
        ("sent", c.sent),
        ("deferred", c.deferred),
        ("failed", c.failed),
        ("skipped", c.skipped),
    ]
    .into_iter()
    .filter(|(_, n)| *n != 0)
    .map(|(state, n)| (state.to_owned(), n))
    .collect()
}

/// Checks that campaign `id`'s counts, its tally and the totals over every
/// campaign are those of the deliveries, counted one by one.
async fn deliveries_agree(db: &TestDb, store: &dyn Store, id: i64, after: &str) {
    let rows = db
        .counts(&format!(
            "SELECT state, COUNT(*) FROM deliveries WHERE campaign_id = {id} GROUP BY state"
        ))
        .await;
    assert_eq!(told(store, id).await, rows, "after {after}");
    let tally = store.tally(id).await.unwrap();
    assert_eq!(
        (tally.total, tally.sent, tally.failed),
        (
            rows.values().sum(),
            rows.get("sent").copied().unwrap_or(0),
            rows.get("failed").copied().unwrap_or(0)
        ),
        "the tally after {after}"
    );
    let every = db
        .counts("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        .await;
    let totals: BTreeMap<String, i64> = store
        .totals()
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|(state, n)| (state.as_str().to_owned(), n))
        .collect();
    assert_eq!(totals, every, "the totals after {after}");
}

async fn claim(store: &dyn Store, id: i64, worker: &str, limit: i64, from: ClaimFrom) -> Vec<i64> {
    store
        .claim(id, worker, limit, LEASE, from)
        .await
        .unwrap()
        .iter()
        .map(|c| c.delivery_id)
        .collect()
}

fn sent(id: i64) -> Recorded {
    Recorded {
        delivery_id: id,
        outcome: Outcome::Sent {
            reply: "250 2.0.0 queued".into(),
        },
    }
}

/// Each list's counts as the store tells them, as `slug:status`, those
/// with none left out.
async fn lists_told(store: &dyn Store) -> BTreeMap<String, i64> {
    let mut told = BTreeMap::new();
    for list in store.lists().await.unwrap() {
        let c = list.subscribers;
        for (status, n) in [
            ("confirmed", c.confirmed),
            ("unconfirmed", c.unconfirmed),
            ("unsubscribed", c.unsubscribed),
            ("blocklisted", c.blocklisted),
        ] {
            if n != 0 {
                told.insert(format!("{}:{status}", list.slug.as_str()), n);
            }
        }
    }
    told
}

/// Checks that every list's counts are those of its subscriptions, counted
/// one by one: a blocklisted subscriber's count as blocklisted, whatever
/// their status.
async fn subscriptions_agree(db: &TestDb, store: &dyn Store, after: &str) {
    let rows = db
        .counts(
            "SELECT l.slug || ':' || CASE WHEN s.status = 'blocklisted' THEN 'blocklisted'
                                         ELSE x.status END, COUNT(*)
               FROM subscriptions x
               JOIN subscribers s ON s.id = x.subscriber_id
               JOIN lists l ON l.id = x.list_id
              GROUP BY 1",
        )
        .await;
    assert_eq!(lists_told(store).await, rows, "after {after}");
}

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).unwrap()
}

on_both_backends! {
    async fn a_campaigns_counts_stay_those_of_its_deliveries_whatever_moves_them(db) {
        let (store, report) = world(db, 30).await;
        let id = campaign(&*store, report, &["members"]).await;
        deliveries_agree(db, &*store, id, "the start").await;

        let claimed = claim(&*store, id, "w-1-1", 10, ClaimFrom::Queue).await;
        deliveries_agree(db, &*store, id, "a claim").await;

        let mut outcomes: Vec<Recorded> = claimed[..4].iter().map(|&d| sent(d)).collect();
        outcomes.extend(claimed[4..6].iter().map(|&d| Recorded {
            delivery_id: d,
            outcome: Outcome::Deferred {
                error: "451 try later".into(),
                retry_at: Utc::now(),
                ambiguous: d == claimed[4],
            },
        }));
        outcomes.extend(claimed[6..8].iter().map(|&d| Recorded {
            delivery_id: d,
            outcome: Outcome::Failed {
                error: "550 no such user".into(),
                hard_bounce: d == claimed[6],
            },
        }));
        outcomes.push(Recorded {
            delivery_id: claimed[8],
            outcome: Outcome::Skipped { reason: "left the list".into() },
        });
        store.record("w-1-1", &outcomes).await.unwrap();
        store.release("w-1-1", &claimed[9..]).await.unwrap();
        deliveries_agree(db, &*store, id, "outcomes of every kind and a release").await;

        store.retry_deliveries(id, true).await.unwrap();
        deliveries_agree(db, &*store, id, "a retry of the deferred and failed").await;

        let again = claim(&*store, id, "w-2-2", 12, ClaimFrom::Anywhere).await;
        let outcomes: Vec<Recorded> = again.iter().map(|&d| sent(d)).collect();
        store.record("w-2-2", &outcomes).await.unwrap();
        deliveries_agree(db, &*store, id, "a second claim, all sent").await;

        assert!(store.remove_subscriber(&email("m001@example.org"), true).await.unwrap());
        assert!(store.remove_subscriber(&email("m029@example.org"), false).await.unwrap());
        deliveries_agree(db, &*store, id, "a subscriber erased and another removed").await;

        let other = campaign(&*store, report, &["members"]).await;
        deliveries_agree(db, &*store, other, "a second campaign's start").await;
        store.set_campaign_state(other, CampaignState::Cancelled, None).await.unwrap();
        deliveries_agree(db, &*store, other, "its cancellation").await;

        let doomed = paste(&*store, "Labour NEC Report – April 2026", "## Membership\n\nSteady.\n").await;
        let gone = campaign(&*store, doomed.id, &["members"]).await;
        store.set_campaign_state(gone, CampaignState::Cancelled, None).await.unwrap();
        store.delete_report(&ReportRef::Id(doomed.id), true).await.unwrap();
        deliveries_agree(db, &*store, id, "another report deleted with its campaign").await;
        let left = db
            .counts(&format!(
                "SELECT 'rows', COUNT(*) FROM delivery_tallies WHERE campaign_id = {gone}"
            ))
            .await;
        assert_eq!(left["rows"], 0, "a deleted campaign's tallies go with it");
    }

    async fn a_lists_counts_stay_those_of_its_subscriptions_whatever_moves_them(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Single)).await.unwrap();
        store.create_list(&new_list("doomed", OptIn::Single)).await.unwrap();
        subscriptions_agree(db, &*store, "the lists' creation").await;

        for (i, lists) in [&["members"][..], &["members", "councillors"], &["councillors", "doomed"]]
            .iter()
            .enumerate()
        {
            for j in 0..4 {
                store
                    .add_subscriber(&subscriber(&format!("p{i}{j}@example.org"), lists, j % 2 == 0))
                    .await
                    .unwrap();
            }
        }
        subscriptions_agree(db, &*store, "confirmed and unconfirmed sign-ups").await;

        let members = ListSlug::parse("members").unwrap();
        store.unsubscribe(&email("p10@example.org"), Some(&members)).await.unwrap();
        store.unsubscribe(&email("p11@example.org"), None).await.unwrap();
        subscriptions_agree(db, &*store, "an unsubscribe from one list and one from all").await;

        store.set_blocklisted(&email("p12@example.org"), true).await.unwrap();
        subscriptions_agree(db, &*store, "a blocklisting").await;

        import(&*store, "email,name\np00@example.org,Ann\nq1@example.org,\nq2@example.org,\n", true).await;
        subscriptions_agree(db, &*store, "an import of new and known people").await;

        store.remove_subscriber(&email("p20@example.org"), true).await.unwrap();
        subscriptions_agree(db, &*store, "an erasure").await;

        let doomed = list_id(&*store, "doomed").await;
        store.delete_list(&ListSlug::parse("doomed").unwrap(), true).await.unwrap();
        subscriptions_agree(db, &*store, "a list deleted with its subscriptions").await;
        let left = db
            .counts(&format!("SELECT 'rows', COUNT(*) FROM subscription_tallies WHERE list_id = {doomed}"))
            .await;
        assert_eq!(left["rows"], 0, "a deleted list's tallies go with it");
    }

    async fn the_counts_come_from_the_tallies_the_database_keeps_not_from_counting_every_row(db) {
        let (store, report) = world(db, 3).await;
        let id = campaign(&*store, report, &["members"]).await;
        // Tallies that disagree with the rows, as only a hand behind the
        // store's back could make them: the pages show the tallies.
        db.execute(&format!("DELETE FROM delivery_tallies WHERE campaign_id = {id}")).await;
        db.execute(&format!(
            "INSERT INTO delivery_tallies (campaign_id, state, n) VALUES ({id}, 'queued', 600000)"
        ))
        .await;
        assert_eq!(store.delivery_counts(id).await.unwrap().queued, 600_000);
        assert_eq!(store.tally(id).await.unwrap().total, 600_000);

        db.execute("DELETE FROM subscription_tallies").await;
        db.execute(
            "INSERT INTO subscription_tallies (list_id, status, n)
             SELECT id, 'confirmed', 600000 FROM lists WHERE slug = 'members'",
        )
        .await;
        let members = store.list(&ListSlug::parse("members").unwrap()).await.unwrap();
        assert_eq!(members.subscribers.confirmed, 600_000);
    }

    async fn counts_stay_right_while_workers_move_deliveries_and_readers_fold_the_tallies(db) {
        let (store, report) = world(db, 200).await;
        let id = campaign(&*store, report, &["members"]).await;
        let done = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let worker = format!("w-{w}-{w}");
                    loop {
                        // One at a time: each claim and each outcome is a
                        // statement of its own, and so tallies of its own.
                        let claimed = claim(&*store, id, &worker, 1, ClaimFrom::Queue).await;
                        if claimed.is_empty() {
                            break;
                        }
                        store.record(&worker, &[sent(claimed[0])]).await.unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, done) = (Arc::clone(&store), Arc::clone(&done));
                tokio::spawn(async move {
                    let mut reads = 0;
                    while !done.load(Ordering::Relaxed) {
                        let c = store.delivery_counts(id).await.unwrap();
                        assert_eq!(c.queued + c.sending + c.sent, 200, "{c:?}");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.await.unwrap() > 0);
        }
        deliveries_agree(db, &*store, id, "four workers and two readers at once").await;
        assert_eq!(store.delivery_counts(id).await.unwrap().sent, 200);
        let rows = db
            .counts(&format!("SELECT 'rows', COUNT(*) FROM delivery_tallies WHERE campaign_id = {id}"))
            .await;
        assert!(rows["rows"] <= 64, "a read folds the tallies of 400 statements: {rows:?}");
    }
}

/// The pages (buffers) PostgreSQL touched to answer a campaign's counts and
/// the lists' counts, for a campaign of `n` deliveries to a list of `n`.
async fn pages_to_count(n: u32) -> (u64, u64) {
    let db = TestDb::postgres().await;
    let (store, id) = partly_sent(&db, n, n / 2).await;
    let touched = |plans: Vec<serde_json::Value>| -> u64 {
        plans.iter().map(|plan| buffers(&plan["Plan"])).sum()
    };
    let campaign = touched(
        plans_of(async {
            store.delivery_counts(id).await.unwrap();
        })
        .await,
    );
    let lists = touched(
        plans_of(async {
            store.lists().await.unwrap();
        })
        .await,
    );
    drop(store);
    db.finish().await;
    (campaign, lists)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn a_campaigns_counts_and_the_lists_read_as_many_pages_at_100000_as_at_1000() {
    let small = pages_to_count(1_000).await;
    let large = pages_to_count(100_000).await;
    // Counting 100,000 index entries reads a hundred pages or more; the
    // tallies are a few rows, whatever the size.
    assert!(
        large.0 <= small.0 + 4 && large.1 <= small.1 + 4,
        "pages read for a campaign's counts and the lists', at 1,000: {small:?}; at 100,000: {large:?}"
    );
}
