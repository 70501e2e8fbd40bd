//! Campaigns and delivery through a real SMTP conversation over TCP, with the
//! test server in `support::smtp`, on both backends; and crash tests with the
//! real binary.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use necmail::campaigns::{CampaignState, CampaignStore, ClaimFrom, NewCampaign, Outcome, Recorded};
use necmail::config::Config;
use necmail::delivery::Sending;
use necmail::delivery::engine::{Engine, Finish};
use necmail::delivery::supervisor::Supervisor;
use necmail::lists::{ListSlug, OptIn};
use necmail::reports::{Report, ReportDraft, ReportRef, ReportSource, Stored};
use necmail::store::Store;
use necmail::subscribers::{SubscriberEmail, SuppressionReason};
use necmail::tokens::Purpose;
use tokio::sync::watch;

use crate::lists::{new_list, subscriber};
use crate::support::smtp::{Action, Behaviour, SmtpServer, Stage, Who};
use crate::support::{TestDb, on_both_backends};

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "a test secret of some length";

pub(crate) fn config(server: &SmtpServer, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("NECMAIL_SMTP_URL", server.url()),
        ("NECMAIL_SECRET", SECRET.to_owned()),
        ("NECMAIL_PUBLIC_URL", "https://nec.example".to_owned()),
        (
            "NECMAIL_FROM",
            "NEC Report <reports@nec.example>".to_owned(),
        ),
        ("NECMAIL_SMTP_CONNECTIONS", "3".to_owned()),
        ("NECMAIL_RETRY_BASE_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| env.get(k).cloned()).expect("a valid test configuration")
}

pub(crate) fn engine(store: &Arc<dyn Store>, config: Config) -> Engine {
    Sending::new(Arc::new(config))
        .expect("sending")
        .engine(store)
}

/// A short report with figures in it; returns its id.
pub async fn report(store: &dyn Store) -> i64 {
    let body = "## Party Membership\n\nWe have 575,000 members.\n\n## Local Government Report\n\n\
        8,000 people stood for election.\n";
    paste(store, "Labour NEC Report – March 2026", body)
        .await
        .id
}

/// Stores `body` as a pasted report titled `title`, published now.
pub async fn paste(store: &dyn Store, title: &str, body: &str) -> Report {
    let draft = ReportDraft {
        title: title.into(),
        meeting_date: None,
        summary: None,
        body_markdown: body.into(),
        source: ReportSource::Paste,
        published_at: None,
        excerpt: None,
    };
    match store
        .insert_report(&draft, &Default::default())
        .await
        .unwrap()
    {
        Stored::New(r) | Stored::Duplicate(r) | Stored::Updated(r) => r,
    }
}

/// Lists `members` and `councillors`, a report, and `n` confirmed members.
pub async fn world(db: &TestDb, n: usize) -> (Arc<dyn Store>, i64) {
    let store = db.store().await;
    store
        .create_list(&new_list("members", OptIn::Double))
        .await
        .unwrap();
    store
        .create_list(&new_list("councillors", OptIn::Double))
        .await
        .unwrap();
    for i in 0..n {
        store
            .add_subscriber(&subscriber(
                &format!("m{i:03}@example.org"),
                &["members"],
                true,
            ))
            .await
            .unwrap();
    }
    let report = report(&*store).await;
    (store, report)
}

/// Creates and starts a campaign of `report` to `lists`; returns its id.
pub async fn campaign(store: &dyn Store, report: i64, lists: &[&str]) -> i64 {
    let new = NewCampaign {
        report: ReportRef::Id(report),
        lists: lists.iter().map(|l| ListSlug::parse(l).unwrap()).collect(),
        filter: Vec::new(),
        send_at: None,
        subject: None,
        hold: false,
        allow_excerpt: false,
    };
    let id = store.create_campaign(&new).await.unwrap().id;
    store.start_campaign(id).await.unwrap();
    id
}

pub(crate) async fn run(engine: &Engine, id: i64) -> Finish {
    let (_stop, stop) = watch::channel(false);
    tokio::time::timeout(WAIT, engine.run(id, stop))
        .await
        .expect("the run ends")
        .expect("the run works")
}

/// Runs the engine on its own task, for tests that act while it sends.
fn spawn_run(engine: &Arc<Engine>, id: i64) -> tokio::task::JoinHandle<Finish> {
    let engine = Arc::clone(engine);
    tokio::spawn(async move { run(&engine, id).await })
}

/// A campaign to 12 members, sending over one connection to a slow server,
/// already running: for tests that act while it sends.
struct Slow {
    store: Arc<dyn Store>,
    server: SmtpServer,
    id: i64,
    engine: Arc<Engine>,
    running: tokio::task::JoinHandle<Finish>,
}

async fn slow_campaign(db: &TestDb) -> Slow {
    let (store, report) = world(db, 12).await;
    let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(50))).await;
    let id = campaign(&*store, report, &["members"]).await;
    let engine = Arc::new(engine(
        &store,
        config(&server, &[("NECMAIL_SMTP_CONNECTIONS", "1")]),
    ));
    let running = spawn_run(&engine, id);
    Slow {
        store,
        server,
        id,
        engine,
        running,
    }
}

fn recipients(server: &SmtpServer) -> Vec<String> {
    let mut r: Vec<String> = server
        .messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    r.sort();
    r
}

on_both_backends! {
    async fn every_confirmed_recipient_gets_exactly_one_personal_message(db) {
        let (store, report) = world(db, 4).await;
        store.add_subscriber(&subscriber("pending@example.org", &["members"], false)).await.unwrap();
        store.add_subscriber(&subscriber("blocked@example.org", &["members"], true)).await.unwrap();
        store.set_blocklisted(&SubscriberEmail::parse("blocked@example.org").unwrap(), true).await.unwrap();
        store.add_subscriber(&subscriber("left@example.org", &["members"], true)).await.unwrap();
        store.unsubscribe(&SubscriberEmail::parse("left@example.org").unwrap(), None).await.unwrap();
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;

        assert_eq!(run(&engine(&store, config(&server, &[])), id).await, Finish::Done);
        assert_eq!(recipients(&server), ["m000@example.org", "m001@example.org", "m002@example.org", "m003@example.org"]);
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.total()), (4, 4));
        assert_eq!(store.campaign(id).await.unwrap().state, CampaignState::Done);

        let signer = necmail::tokens::Signer::new(SECRET);
        let members = store.list(&ListSlug::parse("members").unwrap()).await.unwrap();
        for message in server.messages() {
            let to = &message.rcpt_to[0];
            let subscriber = store.subscriber(&SubscriberEmail::parse(to).unwrap()).await.unwrap();
            assert!(message.mail_from.starts_with("bounce+") && message.mail_from.ends_with("@nec.example"));
            assert_eq!(message.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
            assert_eq!(message.header("List-Id").as_deref(), Some("The members list <members.nec.example>"));
            assert_eq!(message.header("Precedence").as_deref(), Some("bulk"));
            let unsubscribe = message.header("List-Unsubscribe").unwrap();
            let token = unsubscribe.split("https://nec.example/u/").nth(1).unwrap().split('>').next().unwrap();
            let ids = signer.verify(Purpose::Unsubscribe, token).expect("a valid personal token");
            assert_eq!(ids, [subscriber.id as u64, members.id as u64], "the link unsubscribes {to} from members");
            assert!(unsubscribe.contains(&format!("<mailto:leave+{token}@nec.example>")));
            assert!(message.text().contains("575,000 members"));
        }
    }

    async fn someone_on_two_target_lists_gets_one_message(db) {
        let (store, report) = world(db, 2).await;
        store.add_subscriber(&subscriber("both@example.org", &["members", "councillors"], true)).await.unwrap();
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members", "councillors"]).await;
        run(&engine(&store, config(&server, &[])), id).await;
        assert_eq!(recipients(&server), ["both@example.org", "m000@example.org", "m001@example.org"]);
    }

    async fn someone_on_two_target_lists_is_told_of_both_and_one_click_leaves_both(db) {
        let (store, report) = world(db, 1).await;
        for email in ["both@example.org", "left@example.org"] {
            store.add_subscriber(&subscriber(email, &["members", "councillors"], true)).await.unwrap();
        }
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members", "councillors"]).await;
        let councillors = ListSlug::parse("councillors").unwrap();
        let left = SubscriberEmail::parse("left@example.org").unwrap();
        store.unsubscribe(&left, Some(&councillors)).await.unwrap();
        run(&engine(&store, config(&server, &[])), id).await;

        let signer = necmail::tokens::Signer::new(SECRET);
        let list = |slug: &str| {
            let store = Arc::clone(&store);
            let slug = ListSlug::parse(slug).unwrap();
            async move { store.list(&slug).await.unwrap().id }
        };
        let (members, councillors) = (list("members").await, list("councillors").await);
        let both = [
            "is subscribed to the lists <strong>The members list</strong> and \
             <strong>The councillors list</strong>: reports",
            "is subscribed to the lists The members list and The councillors list: reports",
        ];
        let one = [
            "is subscribed to <strong>The members list</strong>: reports",
            "is subscribed to The members list: reports",
        ];
        let mut one_click = None;
        for (to, lists, footer) in [
            ("both@example.org", vec![members, councillors], both),
            ("m000@example.org", vec![members], one),
            ("left@example.org", vec![members], one),
        ] {
            let messages = server.messages_to(to);
            assert_eq!(messages.len(), 1, "one message for {to}");
            let message = &messages[0];
            assert_eq!(
                message.header("List-Id").as_deref(),
                Some("The members list <members.nec.example>"),
                "RFC 2919 allows one List-Id: the campaign's first list"
            );
            let parsed = mail_parser::MessageParser::default().parse(&message.data).unwrap();
            let text = parsed.body_text(0).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
            let html = parsed.body_html(0).unwrap().into_owned();
            assert!(html.contains(footer[0]), "{to}: {html}");
            assert!(text.contains(footer[1]), "{to}: {text}");
            assert!(!text.contains("councillors list") || lists.len() == 2, "{to}: {text}");
            let unsubscribe = message.header("List-Unsubscribe").unwrap();
            let token = unsubscribe.split("https://nec.example/u/").nth(1).unwrap().split('>').next().unwrap();
            let subscriber = store.subscriber(&SubscriberEmail::parse(to).unwrap()).await.unwrap();
            assert_eq!(signer.unsubscribe(token).unwrap(), (subscriber.id, lists), "{to}");
            assert!(unsubscribe.contains(&format!("<mailto:leave+{token}@nec.example>")));
            if to.starts_with("both") {
                one_click = Some(token.to_owned());
            }
        }

        let app = crate::support::app::spawn_app(db).await;
        let r = app
            .post(&format!("/u/{}", one_click.unwrap()), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
            .await;
        assert_eq!(r.status(), 200);
        let after = store.subscriber(&SubscriberEmail::parse("both@example.org").unwrap()).await.unwrap();
        let statuses: Vec<_> = after.lists.iter().map(|m| (m.slug.to_string(), m.status)).collect();
        assert_eq!(
            statuses,
            [
                ("councillors".to_owned(), necmail::subscribers::SubscriptionStatus::Unsubscribed),
                ("members".to_owned(), necmail::subscribers::SubscriptionStatus::Unsubscribed),
            ],
            "one click leaves both lists the message came through"
        );
        let m000 = store.subscriber(&SubscriberEmail::parse("m000@example.org").unwrap()).await.unwrap();
        assert_eq!(m000.lists[0].status, necmail::subscribers::SubscriptionStatus::Confirmed);
    }

    async fn deferred_mail_is_retried_and_arrives(db) {
        let (store, report) = world(db, 3).await;
        let server = SmtpServer::start_with(
            Behaviour::accept().refuse(Who::to(["m001@example.org"]).and_first(1), "451 4.3.0 try again later"),
        )
        .await;
        let id = campaign(&*store, report, &["members"]).await;
        assert_eq!(run(&engine(&store, config(&server, &[])), id).await, Finish::Done);
        assert_eq!(server.messages_to("m001@example.org").len(), 1);
        assert_eq!(server.attempts_to("m001@example.org").len(), 2);
        assert_eq!(store.delivery_counts(id).await.unwrap().sent, 3);
    }

    async fn a_permanent_failure_is_recorded_and_the_address_suppressed(db) {
        let (store, report) = world(db, 3).await;
        let server = SmtpServer::start_with(
            Behaviour::accept().refuse(Who::to(["m002@example.org"]), "550 5.1.1 <m002@example.org>: no such user"),
        )
        .await;
        let id = campaign(&*store, report, &["members"]).await;
        assert_eq!(run(&engine(&store, config(&server, &[])), id).await, Finish::Done);
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.failed), (2, 1));
        let errors = store.recent_errors(id, 5).await.unwrap();
        assert!(errors[0].error.contains("550 5.1.1"), "{errors:?}");
        let suppression = store.suppression(&SubscriberEmail::parse("m002@example.org").unwrap()).await.unwrap();
        assert_eq!(suppression.unwrap().reason, SuppressionReason::HardBounce);

        let next = campaign(&*store, report, &["members"]).await;
        assert_eq!(store.delivery_counts(next).await.unwrap().total(), 2, "the bounced address is left out");
    }

    async fn a_lease_lasts_while_it_is_renewed_and_ends_at_once_when_taken_back(db) {
        let (store, report) = world(db, 3).await;
        let id = campaign(&*store, report, &["members"]).await;
        assert_eq!(store.sending_campaigns().await.unwrap(), [id]);
        let short = Duration::from_secs(3);
        let claimed = store.claim(id, "here-1-1", 2, short, ClaimFrom::Anywhere).await.unwrap();
        let mut held: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
        held.sort();
        assert_eq!(store.lease_holders(id).await.unwrap(), ["here-1-1"]);

        let long = Duration::from_secs(600);
        assert_eq!(store.renew("here-1-1", &held, long).await.unwrap(), 2);
        assert_eq!(store.renew("here-2-2", &held, short).await.unwrap(), 0, "only the holder renews");
        let due = store.next_due(id, "here-2-2").await.unwrap().expect("a lease falls due");
        assert!(due > chrono::Utc::now() + chrono::Duration::seconds(500), "renewed to {due}");
        assert_eq!(store.next_due(id, "here-1-1").await.unwrap(), None, "not for their holder");
        let rest = store.claim(id, "here-2-2", 10, short, ClaimFrom::Anywhere).await.unwrap();
        assert_eq!(rest.len(), 1, "held deliveries are not claimed again");

        assert_eq!(store.take_back(id, "here-1-1").await.unwrap(), 2);
        let queued = store.claim(id, "here-2-2", 10, short, ClaimFrom::Queue).await.unwrap();
        assert!(queued.is_empty(), "expired leases are not in the queue");
        let mut again: Vec<i64> = store.claim(id, "here-2-2", 10, short, ClaimFrom::Anywhere).await.unwrap()
            .iter().map(|c| c.delivery_id).collect();
        again.sort();
        assert_eq!(again, held, "taken back, they are claimed at once");
        let late = Recorded { delivery_id: held[0], outcome: Outcome::Sent { reply: "250".into() } };
        store.record("here-1-1", &[late]).await.unwrap();
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.sending, counts.ambiguous), (0, 3, 2), "{counts:?}");

        store.set_campaign_state(id, CampaignState::Paused, None).await.unwrap();
        assert!(store.sending_campaigns().await.unwrap().is_empty());
    }

    async fn a_run_never_claims_again_what_it_holds_when_its_lease_renewal_falls_behind(db) {
        const MEMBERS: usize = 40;
        let (store, report) = world(db, MEMBERS).await;
        let first = Who::to(["m000@example.org"]).and_first(1);
        let server = SmtpServer::start_with(
            Behaviour::accept().delay(Duration::from_millis(20)).rule(first, Stage::Data, Action::Hold),
        )
        .await;
        let id = campaign(&*store, report, &["members"]).await;
        let env = [("NECMAIL_SMTP_CONNECTIONS", "2"), ("NECMAIL_LEASE_SECS", "600")];
        let engine = Arc::new(engine(&store, config(&server, &env)));
        let running = spawn_run(&engine, id);
        server.wait_for_held(1, WAIT).await;
        // The leases run out while the run still holds them, as when the
        // machine or the database stalls for longer than a lease; the other
        // connection goes on through the list, looking for expired leases.
        db.execute("UPDATE deliveries SET lease_until = '2000-01-01T00:00:00+00:00' WHERE state = 'sending'")
            .await;
        server.wait_for(MEMBERS - 1, WAIT).await;
        server.let_go();
        assert_eq!(running.await.unwrap(), Finish::Done);
        assert_eq!(server.messages_to("m000@example.org").len(), 1, "sent once");
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.ambiguous), (MEMBERS as i64, 0), "{counts:?}");
    }

    async fn the_campaign_pauses_itself_when_the_relay_refuses_to_take_mail(db) {
        let (store, report) = world(db, 10).await;
        let refusal = Action::Reply("421 4.3.2 service shutting down".into());
        let server = SmtpServer::start_with(Behaviour::accept().rule(Who::everyone(), Stage::Mail, refusal)).await;
        let id = campaign(&*store, report, &["members"]).await;
        let finish = run(&engine(&store, config(&server, &[("NECMAIL_MAX_CONSECUTIVE_FAILURES", "3")])), id).await;
        let Finish::Paused(reason) = finish else { panic!("{finish:?}") };
        assert!(reason.contains("failed 3 times in a row") && reason.contains("421"), "{reason}");
        let campaign = store.campaign(id).await.unwrap();
        assert_eq!(campaign.state, CampaignState::Paused);
        assert!(campaign.pause_reason.unwrap().contains("421"));
        let counts = store.delivery_counts(id).await.unwrap();
        assert!(counts.queued >= 5, "it stopped early instead of burning the list: {counts:?}");
        assert_eq!(counts.sending, 0, "nothing is left claimed");

        server.set(Behaviour::accept());
        store.set_campaign_state(id, CampaignState::Sending, None).await.unwrap();
        store.retry_deliveries(id, false).await.unwrap();
        assert_eq!(run(&engine(&store, config(&server, &[])), id).await, Finish::Done);
        assert_eq!(recipients(&server).len(), 10);
    }

    async fn pausing_and_resuming_mid_send_delivers_everyone_once(db) {
        let Slow { store, server, id, engine, running } = slow_campaign(db).await;
        server.wait_for(2, WAIT).await;
        store.set_campaign_state(id, CampaignState::Paused, Some("paused by an admin")).await.unwrap();
        assert!(matches!(running.await.unwrap(), Finish::Paused(_)));
        let sent = server.messages().len();
        assert!(sent < 12, "the pause stopped the campaign ({sent} sent)");
        assert_eq!(store.delivery_counts(id).await.unwrap().sending, 0);

        store.set_campaign_state(id, CampaignState::Sending, None).await.unwrap();
        assert_eq!(run(&engine, id).await, Finish::Done);
        let all = recipients(&server);
        let mut unique = all.clone();
        unique.dedup();
        assert_eq!((all.len(), unique.len()), (12, 12));
    }

    async fn a_pause_made_in_this_process_reaches_its_running_engine_at_once(db) {
        let Slow { store, server, id, running, .. } = slow_campaign(db).await;
        server.wait_for(2, WAIT).await;
        let before = server.messages().len();
        store.set_campaign_state(id, CampaignState::Paused, Some("paused by an admin")).await.unwrap();
        assert!(matches!(running.await.unwrap(), Finish::Paused(_)));
        // The message in flight, and at most one started while the run read
        // the new state; a message takes 200 ms, the slow poll 5 s.
        let after = server.messages().len() - before;
        assert!(after <= 2, "{after} messages went out after the pause");
    }

    async fn cancelling_mid_send_skips_the_rest(db) {
        let Slow { store, server, id, running, .. } = slow_campaign(db).await;
        server.wait_for(2, WAIT).await;
        store.set_campaign_state(id, CampaignState::Cancelled, None).await.unwrap();
        assert_eq!(running.await.unwrap(), Finish::Cancelled);
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!(counts.sent as usize, server.messages().len());
        assert_eq!(counts.sent + counts.skipped, 12, "{counts:?}");
        assert!(counts.skipped > 0);
    }

    async fn an_unsubscribe_during_the_campaign_is_honoured_at_the_next_claim(db) {
        let Slow { store, server, id, running, .. } = slow_campaign(db).await;
        server.wait_for(1, WAIT).await;
        let members = ListSlug::parse("members").unwrap();
        store.unsubscribe(&SubscriberEmail::parse("m011@example.org").unwrap(), Some(&members)).await.unwrap();
        assert_eq!(running.await.unwrap(), Finish::Done);
        assert!(server.messages_to("m011@example.org").is_empty());
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.skipped), (11, 1));
    }

    async fn a_connection_lost_after_the_data_is_retried_and_counted_ambiguous(db) {
        let (store, report) = world(db, 3).await;
        let server = SmtpServer::start_with(Behaviour::accept().drop_after_data(Who::to(["m000@example.org"]).and_first(1))).await;
        let id = campaign(&*store, report, &["members"]).await;
        assert_eq!(run(&engine(&store, config(&server, &[])), id).await, Finish::Done);
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.ambiguous), (3, 1));
        assert_eq!(server.messages_to("m000@example.org").len(), 1, "the server did not keep the dropped one");
    }

    async fn messages_are_well_formed_for_an_independent_mime_parser(db) {
        let (store, report) = world(db, 2).await;
        let mut named = subscriber("siobhan@example.org", &["members"], true);
        named.name = necmail::subscribers::SubscriberName::parse("Siobhán O’Neill").unwrap();
        named.attributes = ["role=councillor".parse().unwrap()].into_iter().collect();
        store.add_subscriber(&named).await.unwrap();
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;
        run(&engine(&store, config(&server, &[])), id).await;
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, m) in server.messages().iter().enumerate() {
            let path = dir.path().join(format!("{i}.eml"));
            std::fs::write(&path, &m.data).unwrap();
            paths.push(path);
        }
        let out = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_mime.py"))
            .args(&paths)
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let parsed: Vec<serde_json::Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed.len(), 3);
        for p in &parsed {
            assert_eq!(p["subject"], "Labour NEC Report – March 2026");
            assert!(p["text"].as_str().unwrap().contains("575,000 members"));
            assert!(p["html"].as_str().unwrap().contains("575,000 members"));
        }
        let siobhan = parsed.iter().find(|p| p["to"].as_str().unwrap().contains("siobhan@")).unwrap();
        assert_eq!(siobhan["to"], "Siobhán O’Neill <siobhan@example.org>");
        assert!(siobhan["html"].as_str().unwrap().contains("Dear Siobhán O’Neill,"));
        assert!(siobhan["html"].as_str().unwrap().contains("As a councillor"));
    }
}

on_both_backends! {
    async fn the_supervisor_returns_once_nobody_is_left_to_stop_it(db) {
        let store = db.store().await;
        let server = SmtpServer::start().await;
        let engine = Arc::new(engine(&store, config(&server, &[])));
        let supervisor = Supervisor::new(Arc::clone(&store) as Arc<dyn CampaignStore>, engine);
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(supervisor.run(stopped));
        drop(stop);
        tokio::time::timeout(WAIT, running)
            .await
            .expect("the supervisor returns instead of looking for campaigns again and again")
            .unwrap();
    }
}
