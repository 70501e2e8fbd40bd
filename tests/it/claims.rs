//! Claiming deliveries: each worker walks a campaign's queue in order, and a
//! claim reads only about as many rows as it takes, however long the queue
//! and whatever PostgreSQL's statistics say. PostgreSQL's own account of
//! each claim (`auto_explain` with buffers, sent back as notices) proves it.
//! On PostgreSQL a claim is one round trip: no ping before it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use necmail::campaigns::ClaimFrom;
use necmail::config::Backend;
use necmail::lists::OptIn;
use necmail::store::Store;
use tracing::Metadata;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::campaigns::{campaign, world};
use crate::lists::{new_list, subscriber};
use crate::support::{TestDb, on_both_backends};

const LEASE: Duration = Duration::from_secs(600);

async fn claimed(
    store: &dyn Store,
    id: i64,
    worker: &str,
    limit: i64,
    from: ClaimFrom,
) -> Vec<i64> {
    let mut ids: Vec<i64> = store
        .claim(id, worker, limit, LEASE, from)
        .await
        .unwrap()
        .iter()
        .map(|c| c.delivery_id)
        .collect();
    ids.sort();
    ids
}

on_both_backends! {
    async fn a_worker_walks_the_queue_in_order_and_comes_back_for_deliveries_given_back_behind_it(db) {
        let (store, report) = world(db, 10).await;
        let id = campaign(&*store, report, &["members"]).await;
        let first = claimed(&*store, id, "here-1-1", 4, ClaimFrom::Queue).await;
        let second = claimed(&*store, id, "here-1-1", 4, ClaimFrom::Queue).await;
        assert_eq!(first.len(), 4);
        assert!(first.iter().max() < second.iter().min(), "{first:?} then {second:?}");

        store.release("here-1-1", &first[..2]).await.unwrap();
        let other = claimed(&*store, id, "there-2-2", 3, ClaimFrom::Queue).await;
        assert_eq!(other, first[..2].iter().copied().chain([second[3] + 1]).collect::<Vec<_>>(),
            "another worker's walk starts at the front of the queue");
        let rest = claimed(&*store, id, "here-1-1", 10, ClaimFrom::Queue).await;
        assert_eq!(rest.len(), 1, "the walk goes on after what it took: {rest:?}");

        store.release("there-2-2", &other).await.unwrap();
        assert!(claimed(&*store, id, "here-1-1", 10, ClaimFrom::Queue).await.is_empty(),
            "a walk of the queue alone ends at its end");
        let again = claimed(&*store, id, "here-1-1", 10, ClaimFrom::Anywhere).await;
        assert_eq!(again, other, "a claim from anywhere looks behind the walk");
        assert_eq!(store.delivery_counts(id).await.unwrap().queued, 0);
    }
}

on_both_backends! {
    async fn a_claim_that_breaks_part_way_hands_over_what_it_took_where_each_of_its_statements_committed(db) {
        let (store, report) = world(db, 3).await;
        let id = campaign(&*store, report, &["members"]).await;
        // A process that is gone held two deliveries: one's lease has run
        // out; the other was deferred and its retry is due.
        let gone = claimed(&*store, id, "gone-9-9", 2, ClaimFrom::Queue).await;
        db.execute(&format!(
            "UPDATE deliveries SET lease_until = '2000-01-01T00:00:00+00:00' WHERE id = {}",
            gone[0]
        ))
        .await;
        db.execute(&format!(
            "UPDATE deliveries SET state = 'deferred', worker = NULL, lease_until = NULL,
                    next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE id = {}",
            gone[1]
        ))
        .await;
        // Claiming the retry breaks, as a connection cut mid-claim would.
        if store.backend() == Backend::Postgres {
            db.execute(
                "CREATE FUNCTION break_claim() RETURNS trigger LANGUAGE plpgsql
                   AS $$ BEGIN RAISE EXCEPTION 'the connection broke'; END $$",
            )
            .await;
            db.execute(
                "CREATE TRIGGER break_claim BEFORE UPDATE ON deliveries FOR EACH ROW
                   WHEN (OLD.state = 'deferred') EXECUTE FUNCTION break_claim()",
            )
            .await;
        } else {
            db.execute(
                "CREATE TRIGGER break_claim BEFORE UPDATE ON deliveries
                   WHEN OLD.state = 'deferred' BEGIN SELECT RAISE(ABORT, 'the connection broke'); END",
            )
            .await;
        }

        let claim = store.claim(id, "here-1-1", 10, LEASE, ClaimFrom::Anywhere).await;
        let holders = db
            .counts("SELECT worker, COUNT(*) FROM deliveries WHERE state = 'sending' GROUP BY worker")
            .await;
        // The expired lease was claimed by a statement that committed: it is
        // handed over, not left leased to a live worker, which never takes
        // back its own leases.
        let took: Vec<i64> = claim.unwrap().iter().map(|c| c.delivery_id).collect();
        assert_eq!(took, [gone[0]]);
        assert_eq!(holders, BTreeMap::from([("here-1-1".to_owned(), 1)]));
    }
}

on_both_backends! {
    async fn a_claim_reads_each_delivery_in_order_with_the_campaigns_other_lists_its_subscriber_is_on(db) {
        let (store, report) = world(db, 2).await;
        store.create_list(&new_list("branch", OptIn::Double)).await.unwrap();
        for (email, lists) in [
            ("all@example.org", &["councillors", "members", "branch"][..]),
            ("two@example.org", &["members", "branch"]),
            ("pending@example.org", &["councillors"]),
        ] {
            store.add_subscriber(&subscriber(email, lists, true)).await.unwrap();
        }
        // Not confirmed on the members list: the message does not name it.
        store.add_subscriber(&subscriber("pending@example.org", &["members"], false)).await.unwrap();
        let id = campaign(&*store, report, &["branch", "members", "councillors"]).await;

        let claimed = store.claim(id, "here-1-1", 10, LEASE, ClaimFrom::Anywhere).await.unwrap();
        let ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
        assert!(ids.is_sorted(), "in the order of the queue: {ids:?}");
        let read: BTreeMap<String, (String, Vec<String>)> = claimed
            .iter()
            .map(|c| {
                assert_eq!((c.attempts, c.first_attempt_at.is_some(), c.eligible), (1, true, true));
                let also = c.also.iter().map(|l| l.slug.clone()).collect();
                (c.email.to_string(), (c.list_slug.clone(), also))
            })
            .collect();
        let expected = |list: &str, also: &[&str]| {
            (list.to_owned(), also.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            read,
            BTreeMap::from([
                ("all@example.org".to_owned(), expected("branch", &["members", "councillors"])),
                ("m000@example.org".to_owned(), expected("members", &[])),
                ("m001@example.org".to_owned(), expected("members", &[])),
                ("pending@example.org".to_owned(), expected("councillors", &[])),
                ("two@example.org".to_owned(), expected("branch", &["members"])),
            ])
        );
    }
}

/// What one claim statement touched, in buffers (pages): in all, and in
/// finding the rows to claim (the `LIMIT` under the `UPDATE`; the rest is
/// writing the rows and their index entries).
#[derive(Debug, Clone, Copy)]
struct Touched {
    all: u64,
    finding: u64,
}

/// The plan of each statement run while `work` ran, with its query text
/// (`Query Text`), from the plans `auto_explain` sends back as notices to a
/// store from [`partly_sent`]. `work` must run on this thread: a
/// `current_thread` runtime's.
pub(crate) async fn plans_of<F: Future<Output = ()>>(work: F) -> Vec<serde_json::Value> {
    static LISTENER: Once = Once::new();
    LISTENER.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Notices))
            .expect("no other global subscriber in the tests");
    });
    HEARD.set(Some(Vec::new()));
    work.await;
    let notices = HEARD.take().unwrap_or_default();
    notices
        .iter()
        .filter_map(|notice: &String| serde_json::from_str(&notice[notice.find('{')?..]).ok())
        .collect()
}

/// What each claim statement touched while `work` ran.
async fn touched_per_claim<F: Future<Output = ()>>(work: F) -> Vec<Touched> {
    plans_of(work)
        .await
        .iter()
        .filter_map(|plan| {
            if !plan["Query Text"]
                .as_str()?
                .contains("SET state = 'sending'")
            {
                return None;
            }
            let top = &plan["Plan"];
            Some(Touched {
                all: buffers(top),
                finding: buffers(limit_node(top, 0)?),
            })
        })
        .collect()
}

/// The buffers (pages) a plan's node touched, its children's included.
pub(crate) fn buffers(node: &serde_json::Value) -> u64 {
    ["Shared Hit Blocks", "Shared Read Blocks"]
        .iter()
        .map(|key| node[key].as_u64().unwrap_or(0))
        .sum()
}

/// The first `Limit` node in a plan, looked for no deeper than a plan goes.
fn limit_node(node: &serde_json::Value, depth: usize) -> Option<&serde_json::Value> {
    if node["Node Type"] == "Limit" {
        return Some(node);
    }
    if depth > 16 {
        return None;
    }
    node["Plans"]
        .as_array()?
        .iter()
        .find_map(|child| limit_node(child, depth + 1))
}

/// Where `sqlx` reports the notices PostgreSQL sends.
const NOTICE: &str = "sqlx::postgres::notice";

thread_local! {
    /// The notices that came in on this thread while [`plans_of`] listened.
    static HEARD: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Keeps the message of every notice PostgreSQL sends on a thread that
/// [`plans_of`] listens on. It is the test process's global subscriber,
/// installed once: tracing caches which subscribers want each call site
/// across all threads, and rebuilds it whenever any thread sets one: a
/// subscriber set on this thread alone, while other tests' threads set
/// theirs, could be left out of a racing rebuild and miss notices. One that
/// is always there takes part in every rebuild.
struct Notices;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Notices {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target() == NOTICE {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target() == NOTICE
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(Option<String>);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == "message" {
                    self.0 = Some(value.to_owned());
                }
            }
        }
        if event.metadata().target() == NOTICE {
            let mut message = Message(None);
            event.record(&mut message);
            HEARD.with_borrow_mut(|heard| {
                if let Some(heard) = heard {
                    heard.extend(message.0);
                }
            });
        }
    }
}

/// A campaign of `n` deliveries, the first `sent` of them already sent
/// (leaving PostgreSQL's indexes full of dead entries, as a send does
/// between vacuums), and the statistics of a freshly filled table. Returns a
/// store whose every statement is explained, and the campaign.
pub(crate) async fn partly_sent(db: &TestDb, n: u32, sent: u32) -> (Arc<dyn Store>, i64) {
    let (store, report) = world(db, 0).await;
    db.execute("ALTER TABLE deliveries SET (autovacuum_enabled = false)")
        .await;
    db.execute(&format!(
        "INSERT INTO subscribers (email, email_key, email_hash, created_at, updated_at)
         SELECT 'm' || g || '@example.org', 'm' || g || '@example.org', 'h' || g, now(), now()
           FROM generate_series(1, {n}) g"
    ))
    .await;
    db.execute(
        "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_at, consent_method,
                                    consent_wording, confirmed_at)
         SELECT s.id, l.id, 'confirmed', now(), 'import', 'a test', now()
           FROM subscribers s, lists l WHERE l.slug = 'members'",
    )
    .await;
    // The recipients are fixed as a campaign's start fixes them.
    let id = campaign(&*store, report, &["members"]).await;
    for sql in [
        format!(
            "UPDATE deliveries SET state = 'sending', lease_until = now() - interval '1 hour'
              WHERE id < (SELECT MIN(id) FROM deliveries) + {sent}"
        ),
        "UPDATE deliveries SET state = 'sent', lease_until = NULL WHERE state = 'sending'"
            .to_owned(),
    ] {
        db.execute(&sql).await;
    }
    drop(store);
    let explained = format!(
        "{}&options[session_preload_libraries]=auto_explain\
         &options[auto_explain.log_min_duration]=0&options[auto_explain.log_analyze]=on\
         &options[auto_explain.log_buffers]=on&options[auto_explain.log_format]=json\
         &options[auto_explain.log_level]=notice",
        db.url
    );
    let store = necmail::store::connect(&explained, &Default::default())
        .await
        .unwrap();
    (store, id)
}

/// Twenty claims of 64 from a campaign of `n` deliveries, `sent` of them
/// sent, with fresh statistics and then after `ANALYZE`: the most one touched.
async fn most_a_claim_touches(n: u32, sent: u32) -> Touched {
    let db = TestDb::postgres().await;
    let (store, id) = partly_sent(&db, n, sent).await;
    let claims = |worker: &'static str| {
        let store = Arc::clone(&store);
        async move {
            for _ in 0..10 {
                assert_eq!(
                    claimed(&*store, id, worker, 64, ClaimFrom::Queue)
                        .await
                        .len(),
                    64
                );
            }
        }
    };
    let mut touched = touched_per_claim(claims("fresh-1-1")).await;
    db.execute("ANALYZE deliveries").await;
    touched.extend(touched_per_claim(claims("analysed-2-2")).await);
    drop(store);
    db.finish().await;
    assert_eq!(touched.len(), 20, "every claim explained: {touched:?}");
    Touched {
        all: touched.iter().map(|t| t.all).max().unwrap(),
        finding: touched.iter().map(|t| t.finding).max().unwrap(),
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn a_claim_reads_about_as_many_rows_as_it_takes_however_long_the_queue_and_whatever_the_statistics()
 {
    // Halves of the queue sent: none, when a campaign starts, and one. The
    // sizes differ in the heights of the indexes, which sway the planner.
    for (started, halves) in [("just started", 0), ("half sent", 1)] {
        let small = most_a_claim_touches(10_000, 10_000 / 2 * halves).await;
        for n in [100_000, 300_000] {
            let large = most_a_claim_touches(n, n / 2 * halves).await;
            let message = format!(
                "per claim of 64, {started}, at 10,000 queued: {small:?}; at {n}: {large:?}"
            );
            // Writing 64 rows into their indexes grows with their depth, no more.
            assert!(large.all * 2 <= small.all * 3, "{message}");
            // Finding them reads at most the window of ids a claim of 64
            // walks (256), a buffer each, however long the queue.
            assert!(
                small.finding < 64 * 4 && large.finding < 64 * 4,
                "{message}"
            );
        }
    }
}

/// A TCP hop in front of PostgreSQL that counts sqlx's pings: a Sync
/// message written alone, the simplest call and response of the protocol.
struct PingCounter {
    url: String,
    pings: Arc<std::sync::atomic::AtomicUsize>,
}

impl PingCounter {
    async fn start(url: &str) -> PingCounter {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const SYNC: &[u8] = b"S\0\0\0\x04";
        let mut proxied = url::Url::parse(url).unwrap();
        let server = format!(
            "{}:{}",
            proxied.host_str().unwrap(),
            proxied.port().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        proxied
            .set_port(Some(listener.local_addr().unwrap().port()))
            .unwrap();
        // In the clear, for the messages to be seen.
        proxied.query_pairs_mut().append_pair("sslmode", "disable");
        let pings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&pings);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = tokio::net::TcpStream::connect(&server).await.unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = upstream.into_split();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        if &buf[..n] == SYNC {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    tokio::io::copy(&mut from_server, &mut to_client).await.ok();
                });
            }
        });
        PingCounter {
            url: proxied.to_string(),
            pings,
        }
    }

    fn pings(&self) -> usize {
        self.pings.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A store at `url` with a pool of one connection: a claim takes it only
/// once the last one has given it back, its ping done.
async fn on_one_connection(url: &str) -> Arc<dyn Store> {
    let one = necmail::config::PoolOptions {
        max_connections: 1,
        ..Default::default()
    };
    necmail::store::connect(url, &one).await.unwrap()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn claims_one_after_another_on_postgres_take_their_connection_without_a_ping_first() {
    let db = TestDb::postgres().await;
    let (store, report) = world(&db, 40).await;
    let id = campaign(&*store, report, &["members"]).await;
    let proxy = PingCounter::start(&db.url).await;
    let proxied = on_one_connection(&proxy.url).await;
    let before = proxy.pings();
    for _ in 0..20 {
        let ids = claimed(&*proxied, id, "here-1-1", 2, ClaimFrom::Queue).await;
        assert_eq!(ids.len(), 2);
    }
    // sqlx pings each connection it takes back, once a claim is done (the
    // last claim's may still be on its way); a second ping, before each
    // use, was a round trip more a claim.
    let pings = proxy.pings() - before;
    assert!(
        (19..=20).contains(&pings),
        "{pings} pings for 20 claims: one as each connection went back to the pool, none before"
    );
    drop((proxied, store));
    db.finish().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn a_connection_the_server_dropped_while_idle_is_replaced_before_a_claim_uses_it() {
    let db = TestDb::postgres().await;
    let (store, report) = world(&db, 4).await;
    let id = campaign(&*store, report, &["members"]).await;
    let name = format!("necmail-idle-{}", std::process::id());
    let named = on_one_connection(&format!("{}&application_name={name}", db.url)).await;
    assert_eq!(
        claimed(&*named, id, "here-1-1", 2, ClaimFrom::Queue)
            .await
            .len(),
        2
    );
    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
    ))
    .await;
    // Idle for longer than a connection is used unpinged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        claimed(&*named, id, "here-1-1", 2, ClaimFrom::Queue)
            .await
            .len(),
        2
    );
    drop((named, store));
    db.finish().await;
}
