//! The campaign commands through the real binary: crash and shutdown
//! behaviour, several senders sharing a campaign, and the CLI's answers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::Connection;

use crate::support::cli::{necmail, run};
use crate::support::smtp::{Action, Behaviour, SmtpServer, Stage, Who};
use crate::support::{TestDb, on_both_backends};

const RECIPIENTS: usize = 40;
/// How long a test waits for a sender that should finish promptly.
const PROMPTLY: Duration = Duration::from_secs(120);

/// A started campaign to `RECIPIENTS` members; returns its id.
async fn started_campaign(db: &TestDb) -> i64 {
    started_campaign_to(db, RECIPIENTS).await
}

/// A started campaign to `n` members, m000@example.org and on; returns its id.
async fn started_campaign_to(db: &TestDb, n: usize) -> i64 {
    let (store, report) = crate::campaigns::world(db, n).await;
    let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
    store.close().await;
    id
}

fn sender(db: &TestDb, server: &SmtpServer, id: i64, lease_secs: &str) -> Child {
    sender_with(db, &server.url(), id, &[("NECMAIL_LEASE_SECS", lease_secs)])
}

/// `campaign send ID --wait` through the relay at `smtp_url`, with two
/// connections unless `env` says otherwise.
fn sender_with(db: &TestDb, smtp_url: &str, id: i64, env: &[(&str, &str)]) -> Child {
    let mut cmd = necmail(db);
    cmd.args(["campaign", "send", &id.to_string(), "--wait"])
        .env("NECMAIL_SMTP_URL", smtp_url)
        .env("NECMAIL_SECRET", crate::support::app::SECRET)
        .env("NECMAIL_SMTP_CONNECTIONS", "2");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.stdout(Stdio::piped())
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

/// Like [`finish`], but fails the test when the process takes longer than
/// [`PROMPTLY`], which only a sender stuck waiting can.
async fn finish_promptly(child: Child) -> (i32, String) {
    let pid = child.id();
    match tokio::time::timeout(PROMPTLY, finish(child)).await {
        Ok(done) => done,
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the sender did not finish within {PROMPTLY:?}");
        }
    }
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

    async fn sigkill_before_data_then_a_restart_loses_nobody_and_repeats_nobody(db) {
        for connections in [1, 4, 16] {
            let fresh = db.another().await;
            let duplicates = kill_and_restart(&fresh, connections, KillPoint::BeforeData).await;
            fresh.finish().await;
            assert_eq!(duplicates, 0, "{connections} connections: nothing held had been sent");
        }
    }

    async fn sigkill_after_the_data_then_a_restart_repeats_at_most_one_message_per_connection(db) {
        for connections in [1, 4, 16] {
            let fresh = db.another().await;
            let duplicates = kill_and_restart(&fresh, connections, KillPoint::AfterData).await;
            fresh.finish().await;
            assert!(duplicates <= connections, "{connections} connections: {duplicates} duplicates");
        }
    }

    async fn sigkill_after_the_reply_before_the_commit_repeats_at_most_one_message_per_connection(db) {
        for connections in [1, 4, 16] {
            let fresh = db.another().await;
            let duplicates = kill_and_restart(&fresh, connections, KillPoint::AfterReply).await;
            fresh.finish().await;
            assert!(duplicates <= connections, "{connections} connections: {duplicates} duplicates");
        }
    }

    async fn campaign_deliveries_lists_who_got_it_and_the_relays_reply(db) {
        let id = started_campaign_to(db, 3).await;
        let server = SmtpServer::start_with(
            Behaviour::accept().refuse(Who::to(["m001@example.org"]), "550 5.1.1 no such user"),
        )
        .await;
        let (code, out) = finish(sender_with(db, &server.url(), id, &[])).await;
        assert_eq!(code, 0, "{out}");

        let all = run(db, &["campaign", "deliveries", &id.to_string(), "--json"]).json();
        let all = all.as_array().unwrap();
        let summary: Vec<(&str, &str)> = all
            .iter()
            .map(|d| (d["email"].as_str().unwrap(), d["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("m000@example.org", "sent"),
                ("m001@example.org", "failed"),
                ("m002@example.org", "sent"),
            ]
        );
        assert!(all.iter().all(|d| d["list"] == "members" && d["attempts"] == 1), "{all:?}");
        assert!(all[0]["last_reply"].as_str().unwrap().starts_with("250"), "{all:?}");
        assert!(all[0]["sent_at"].is_string());

        let failed = run(db, &["campaign", "deliveries", &id.to_string(), "--state", "failed"]);
        let table = failed.ok();
        assert!(table.starts_with("EMAIL"), "{table}");
        assert!(table.contains("m001@example.org") && table.contains("550 5.1.1 no such user"), "{table}");
        assert!(!table.contains("m000@example.org"), "{table}");

        let csv = run(db, &["campaign", "deliveries", &id.to_string(), "--csv"]);
        let csv = csv.ok();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "email,list,state,attempts,last_reply,sent_at");
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[2].starts_with("m001@example.org,members,failed,1,550 5.1.1"), "{csv}");

        let unknown = run(db, &["campaign", "deliveries", "999"]);
        assert!(unknown.fails(2).contains("999"));
        let bad_state = run(db, &["campaign", "deliveries", &id.to_string(), "--state", "lost"]);
        bad_state.fails(2);
    }

    async fn a_relay_slower_than_the_lease_gets_each_message_once(db) {
        let id = started_campaign_to(db, 6).await;
        // Each reply takes 0.6 of the 3 s lease, so each message takes 2.4 leases.
        let slow = Behaviour::accept().delay(Duration::from_millis(1800));
        let server = SmtpServer::start_with(slow).await;
        let child = sender_with(db, &server.url(), id, &[("NECMAIL_LEASE_SECS", "3")]);
        let (code, out) = finish(child).await;
        assert_eq!(code, 0, "{out}");
        let t = tally(&server);
        assert_eq!(t.len(), 6, "{t:?}");
        assert!(t.values().all(|&n| n == 1), "nobody gets two: {t:?}");
    }

    async fn a_list_of_dead_addresses_fails_each_one_and_never_pauses_the_campaign(db) {
        let id = started_campaign_to(db, 200).await;
        let dead = Behaviour::accept().refuse(Who::everyone(), "550 5.1.1 no such user");
        let server = SmtpServer::start_with(dead).await;
        let (code, out) = finish(sender_with(db, &server.url(), id, &[])).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("is done") && out.contains("200 failed"), "{out}");
        let store = db.store().await;
        let campaign = store.campaign(id).await.unwrap();
        assert_eq!(campaign.pause_reason, None);
        let gone = necmail::subscribers::SubscriberEmail::parse("m199@example.org").unwrap();
        assert!(store.suppression(&gone).await.unwrap().is_some(), "hard bounces are suppressed");
        store.close().await;
    }

    async fn a_relay_that_refuses_connections_pauses_the_campaign_and_the_sender_exits_1(db) {
        let id = started_campaign(db).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://{}", closed.local_addr().unwrap());
        drop(closed);
        let env = [("NECMAIL_MAX_CONSECUTIVE_FAILURES", "5")];
        let (code, out) = finish_promptly(sender_with(db, &url, id, &env)).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("is paused") && out.contains("5 times in a row"), "{out}");
        let store = db.store().await;
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!(counts.sending, 0, "nothing is left claimed: {counts:?}");
        assert!(counts.queued > 0, "it stopped instead of burning the list: {counts:?}");
        store.close().await;
    }

    async fn the_campaign_commands_create_show_and_steer_a_campaign(db) {
        let id = started_campaign(db).await;
        let repeat = ["campaign", "create", "--report", "1", "--list", "members", "--at", "2030-12-01 09:00", "--json"];
        let err = run(db, &repeat).fails(2).to_owned();
        assert!(err.contains(&format!("went to members in campaign {id} (sending); add --again")), "{err}");
        let created = run(db, &[&repeat[..], &["--again"]].concat()).json();
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

/// Where [`kill_and_restart`] kills the sender.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Every connection waits for the reply to DATA: nothing of those
    /// messages was sent.
    BeforeData,
    /// Every connection has sent its message and waits for the reply; the
    /// test server counts those messages as received.
    AfterData,
    /// A message was accepted whose outcome cannot be committed: the test
    /// holds the lock every write of a delivery needs. (The relay holds its
    /// reply until the test has the lock, then sends it.)
    AfterReply,
}

/// Sends a campaign to 80 members of a fresh database over `connections` connections, kills
/// the sender with SIGKILL at `point`, and sends again from a new process
/// with the default lease, which takes back the dead process's deliveries
/// at once. Checks that nobody is lost and returns how many messages went
/// out twice.
async fn kill_and_restart(db: &TestDb, connections: usize, point: KillPoint) -> usize {
    const MEMBERS: usize = 80;
    let id = started_campaign_to(db, MEMBERS).await;
    let held: Vec<String> = (10..MEMBERS)
        .map(|i| format!("m{i:03}@example.org"))
        .collect();
    let behaviour = match point {
        KillPoint::BeforeData => Behaviour::accept().rule(Who::to(held), Stage::Data, Action::Hold),
        KillPoint::AfterData => {
            Behaviour::accept().rule(Who::to(held), Stage::EndOfData, Action::Hold)
        }
        KillPoint::AfterReply => {
            let first_held = Who::to(["m010@example.org"]);
            Behaviour::accept().rule(first_held, Stage::EndOfData, Action::Hold)
        }
    };
    let server = SmtpServer::start_with(behaviour).await;
    let conns = connections.to_string();
    // A lease long enough that only taking it back can make the restart prompt.
    let env = [
        ("NECMAIL_SMTP_CONNECTIONS", conns.as_str()),
        ("NECMAIL_LEASE_SECS", "600"),
    ];
    let child = sender_with(db, &server.url(), id, &env);
    match point {
        KillPoint::BeforeData | KillPoint::AfterData => {
            server.wait_for_held(connections, PROMPTLY).await;
            signal(&child, "KILL");
        }
        KillPoint::AfterReply => {
            server.wait_for_held(1, PROMPTLY).await;
            let blocked = db.block_writes().await;
            server.let_go();
            server.wait_for_answered_after_hold(1, PROMPTLY).await;
            signal(&child, "KILL");
            let _ = finish(child).await;
            blocked.release().await;
            return restart(db, &server, id, &env).await;
        }
    }
    let _ = finish(child).await;
    restart(db, &server, id, &env).await
}

/// Sends campaign `id` to the end from a new process through a relay that
/// accepts everything; checks nobody is lost and returns the duplicates.
async fn restart(db: &TestDb, server: &SmtpServer, id: i64, env: &[(&str, &str)]) -> usize {
    server.set(Behaviour::accept());
    let (code, out) = finish_promptly(sender_with(db, &server.url(), id, env)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is done"), "{out}");
    let store = db.store().await;
    let total = store.delivery_counts(id).await.unwrap().total() as usize;
    store.close().await;
    let t = tally(server);
    assert_eq!(t.len(), total, "nobody is lost");
    t.values().map(|n| n - 1).sum()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
async fn a_database_blip_mid_send_neither_stops_the_sender_nor_repeats_a_message() {
    const MEMBERS: usize = 100;
    let db = TestDb::postgres().await;
    let id = started_campaign_to(&db, MEMBERS).await;
    let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(10))).await;
    let name = format!("necmail-blip-{}", std::process::id());
    let url = format!("{}&application_name={name}", db.url);
    let mut cmd = crate::support::cli::necmail_at(&url, db.dir.path());
    let child = cmd
        .args(["campaign", "send", &id.to_string(), "--wait"])
        .env("NECMAIL_SMTP_URL", server.url())
        .env("NECMAIL_SECRET", crate::support::app::SECRET)
        .env("NECMAIL_SMTP_CONNECTIONS", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start necmail");
    // Three times, while the sender's statements wait for a lock the test
    // holds, every connection it has is killed, busy or not, as a failover
    // or an admin's pg_terminate_backend would.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut killed = 0;
    for blip in 1..=3 {
        server.wait_for(blip * 20, PROMPTLY).await;
        let blocked = db.block_writes().await;
        let waiting = "SELECT count(*) FROM pg_stat_activity
                        WHERE application_name = $1 AND wait_event_type = 'Lock'";
        while sqlx::query_scalar::<_, i64>(waiting)
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap()
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        killed += terminated.len();
        blocked.release().await;
    }
    assert!(
        killed >= 3,
        "the sender's connections were killed ({killed})"
    );
    let (code, out) = finish_promptly(child).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is done"), "{out}");
    let t = tally(&server);
    assert_eq!(t.len(), MEMBERS);
    assert!(t.values().all(|&n| n == 1), "{t:?}");
    db.finish().await;
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
