//! The campaign commands through the real binary: crash and shutdown
//! behaviour, several senders sharing a campaign, and the CLI's answers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cli::{necmail, run};
use crate::support::smtp::{Behaviour, SmtpServer};
use crate::support::{TestDb, on_both_backends};

const RECIPIENTS: usize = 40;

/// A started campaign to `RECIPIENTS` members; returns its id.
async fn started_campaign(db: &TestDb) -> i64 {
    let (store, report) = crate::campaigns::world(db, RECIPIENTS).await;
    let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
    store.close().await;
    id
}

fn sender(db: &TestDb, server: &SmtpServer, id: i64, lease_secs: &str) -> Child {
    necmail(db)
        .args(["campaign", "send", &id.to_string(), "--wait"])
        .env("NECMAIL_SMTP_URL", server.url())
        .env("NECMAIL_SECRET", crate::support::app::SECRET)
        .env("NECMAIL_SMTP_CONNECTIONS", "2")
        .env("NECMAIL_LEASE_SECS", lease_secs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start necmail")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process on a blocking thread, so that the test's SMTP
/// server, on this runtime, keeps answering it meanwhile.
async fn finish(child: Child) -> (i32, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every recipient, and how many messages each got.
fn tally(server: &SmtpServer) -> std::collections::BTreeMap<String, usize> {
    let mut t = std::collections::BTreeMap::new();
    for m in server.messages() {
        for r in m.rcpt_to {
            *t.entry(r).or_insert(0) += 1;
        }
    }
    t
}

async fn sending_now(db: &TestDb, id: i64) -> i64 {
    let store = db.store().await;
    let n = store.delivery_counts(id).await.unwrap().sending;
    store.close().await;
    n
}

on_both_backends! {
    async fn sigterm_mid_campaign_then_a_restart_delivers_everyone_exactly_once(db) {
        let id = started_campaign(db).await;
        let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(10))).await;
        let child = sender(db, &server, id, "120");
        server.wait_for(8, Duration::from_secs(30)).await;
        signal(&child, "TERM");
        let (code, out) = finish(child).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("stopped"), "{out}");
        assert!(tally(&server).len() < RECIPIENTS, "the campaign was interrupted");
        assert_eq!(sending_now(db, id).await, 0, "every claim was finished or given back");

        let (code, out) = finish(sender(db, &server, id, "120")).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("is done"), "{out}");
        let t = tally(&server);
        assert_eq!(t.len(), RECIPIENTS, "nobody is lost");
        assert!(t.values().all(|&n| n == 1), "nobody gets two: {t:?}");
    }

    async fn sigkill_mid_campaign_then_a_restart_delivers_everyone_within_the_in_flight_bound(db) {
        let id = started_campaign(db).await;
        let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(10))).await;
        let child = sender(db, &server, id, "1");
        server.wait_for(8, Duration::from_secs(30)).await;
        signal(&child, "KILL");
        let _ = finish(child).await;
        let in_flight = sending_now(db, id).await;

        // The restart waits for the leases of the killed sender's claims to expire.
        let (code, out) = finish(sender(db, &server, id, "1")).await;
        assert_eq!(code, 0, "{out}");
        let t = tally(&server);
        assert_eq!(t.len(), RECIPIENTS, "everyone got at least one message");
        let duplicates: usize = t.values().map(|n| n - 1).sum();
        assert!(duplicates as i64 <= in_flight, "{duplicates} duplicates, but only {in_flight} were in flight");
        let store = db.store().await;
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!(counts.sent as usize, RECIPIENTS);
        assert!(counts.ambiguous <= in_flight);
    }

    async fn the_campaign_commands_create_show_and_steer_a_campaign(db) {
        let id = started_campaign(db).await;
        let created = run(db, &["campaign", "create", "--report", "1", "--list", "members", "--at", "2030-12-01 09:00", "--json"]).json();
        assert_eq!(created[0]["state"], "scheduled");
        assert_eq!(created[0]["send_at"], "2030-12-01T09:00:00Z", "09:00 in London in December is 09:00 UTC");
        let listed = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(listed.as_array().unwrap().len(), 2);
        let status = run(db, &["campaign", "status", &id.to_string(), "--json"]).json();
        assert_eq!(status[0]["deliveries"]["queued"], RECIPIENTS);
        assert!(run(db, &["campaign", "pause", &id.to_string()]).ok().contains("paused"));
        assert!(run(db, &["campaign", "resume", &id.to_string()]).ok().contains("sending"));
        assert!(run(db, &["campaign", "cancel", &id.to_string()]).ok().contains("cancelled"));
        let err = run(db, &["campaign", "resume", &id.to_string()]).fails(2).to_owned();
        assert!(err.contains("cancelled"), "{err}");
        for (args, expected) in [
            (vec!["campaign", "create", "--report", "99", "--list", "members"], "there is no report 99"),
            (vec!["campaign", "create", "--report", "1", "--list", "nope"], "there is no list"),
            (vec!["campaign", "create", "--report", "1", "--list", "members", "--at", "next week"], "is not a time"),
            (vec!["campaign", "status", "42"], "there is no campaign 42"),
            (vec!["campaign", "send", &id.to_string()], "cannot be sent again"),
        ] {
            let err = run(db, &args).fails(2).to_owned();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn two_senders_on_postgres_share_a_campaign_exactly_once() {
    let db = TestDb::postgres().await;
    let id = started_campaign(&db).await;
    let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(5))).await;
    let a = sender(&db, &server, id, "120");
    let b = sender(&db, &server, id, "120");
    let (code_a, out_a) = finish(a).await;
    let (code_b, out_b) = finish(b).await;
    assert_eq!((code_a, code_b), (0, 0), "{out_a}\n{out_b}");
    let t = tally(&server);
    assert_eq!(t.len(), RECIPIENTS);
    assert!(t.values().all(|&n| n == 1), "{t:?}");
    let senders: std::collections::BTreeSet<usize> =
        server.messages().iter().map(|m| m.connection).collect();
    assert!(
        senders.len() >= 3,
        "both processes sent (connections used: {senders:?})"
    );
    db.finish().await;
}
