//! The scheduler of `serve`, driven with explicit times, on both backends:
//! new feed items become campaigns at the dispatch window, scheduled
//! campaigns start on time, ticks run once across instances and after
//! downtime, and late reports are noticed. Then the `meeting` commands and
//! `campaign approve`, through the real binary.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use necmail::campaigns::{Campaign, CampaignState, NewCampaign};
use necmail::config::Config;
use necmail::delivery::{Accepted, Envelope, Outbox, Outgoing, SendError, Sending, Transport};
use necmail::lists::{ListSlug, OptIn};
use necmail::meetings::LinkBasis;
use necmail::render::Templates;
use necmail::reports::feeds::PollOutcome;
use necmail::reports::{NewSource, ReportRef, Source};
use necmail::scheduler::{NoCampaign, POLL_TICK, Scheduler};
use necmail::store::Store;

use crate::campaigns::report;
use crate::lists::{new_list, subscriber};
use crate::support::cli::{ALLOW_LOOPBACK_FEEDS, run};
use crate::support::http::FeedServer;
use crate::support::{TestDb, on_both_backends};

/// The three NEC items of `nec.rss`, oldest first.
const NEC_ITEMS: usize = 3;

/// The title of the newest of them, which gets the campaign.
const NEWEST: &str = "Report from April’s Emergency NEC meeting";

/// How long a test waits for the running scheduler before giving up.
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().into()
}

pub(crate) fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A new `members` list with one confirmed member, and a campaign of a new
/// report to it, sent at `send_at`.
async fn members_campaign(store: &dyn Store, send_at: Option<DateTime<Utc>>) -> Campaign {
    store
        .create_list(&new_list("members", OptIn::Double))
        .await
        .unwrap();
    store
        .add_subscriber(&subscriber("ann@example.org", &["members"], true))
        .await
        .unwrap();
    let report = report(store).await;
    store
        .create_campaign(&NewCampaign {
            report: ReportRef::Id(report),
            lists: vec![ListSlug::parse("members").unwrap()],
            filter: Vec::new(),
            send_at,
            subject: None,
            hold: false,
            allow_excerpt: false,
        })
        .await
        .unwrap()
}

/// Polls every quarter hour and dispatches at 09:00, in UTC, fetches from
/// the test feed server on 127.0.0.1, with `extra` on top.
pub(crate) fn config(extra: &[(&str, &str)]) -> Config {
    let env: HashMap<String, String> = [
        ALLOW_LOOPBACK_FEEDS,
        ("NECMAIL_TIMEZONE", "UTC"),
        ("NECMAIL_POLL_SCHEDULE", "*/15 * * * *"),
        ("NECMAIL_DISPATCH_SCHEDULE", "0 9 * * *"),
        ("NECMAIL_FROM", "NEC Report <reports@nec.example>"),
        ("NECMAIL_FEED_TIMEOUT_SECS", "5"),
        ("NECMAIL_FEED_MAX_BYTES", "1000000"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::from_lookup(|k| env.get(k).cloned()).expect("a valid test configuration")
}

pub(crate) fn scheduler_with(
    store: &Arc<dyn Store>,
    config: Config,
    transport: Arc<dyn Transport>,
) -> Scheduler<dyn Store> {
    let sending = Sending {
        config: Arc::new(config),
        templates: Arc::new(Templates::load(None).expect("templates")),
        transport,
    };
    Scheduler::new(Arc::clone(store), &sending)
}

/// A scheduler whose mail goes to the outbox folder `outbox`.
pub(crate) fn scheduler(
    store: &Arc<dyn Store>,
    config: Config,
    outbox: &Path,
) -> Scheduler<dyn Store> {
    scheduler_with(store, config, Arc::new(Outbox::new(outbox).unwrap()))
}

/// A feed server, a store with members and the feed as a source, and a
/// scheduler over it configured with `extra`.
async fn fed(
    db: &TestDb,
    extra: &[(&str, &str)],
) -> (FeedServer, Arc<dyn Store>, Scheduler<dyn Store>) {
    let server = FeedServer::start();
    let store = db.store().await;
    members_and_a_feed(&*store, &server).await;
    let scheduler = scheduler(&store, config(extra), &db.dir.path().join("outbox"));
    (server, store, scheduler)
}

/// A source of `url`'s NEC items for `lists`, added with no item recorded as seen.
async fn add_source(store: &dyn Store, url: &str, lists: &[&str]) -> Source {
    let new = NewSource {
        url: url.to_owned(),
        category: Some("NEC".into()),
        lists: lists.iter().map(|l| ListSlug::parse(l).unwrap()).collect(),
    };
    store.add_source(&new, &[]).await.unwrap()
}

/// The `members` list with one confirmed member, and a source of `nec.rss`
/// whose reports go to it.
async fn members_and_a_feed(store: &dyn Store, server: &FeedServer) -> Source {
    store
        .create_list(&new_list("members", OptIn::Double))
        .await
        .unwrap();
    store
        .add_subscriber(&subscriber("ann@example.org", &["members"], true))
        .await
        .unwrap();
    add_source(store, &server.url("/fixtures/nec.rss"), &["members"]).await
}

/// The `.eml` files in `dir`, read.
pub(crate) fn mails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    found.sort();
    found
}

/// A transport whose every send fails, as a relay that is down.
struct Down;

#[async_trait]
impl Transport for Down {
    async fn send(&self, _: &Envelope<'_>, _: Outgoing<'_>) -> Result<Accepted, SendError> {
        Err(SendError::NetworkBeforeData("connection refused".into()))
    }

    fn describe(&self) -> String {
        "a relay that is down".into()
    }
}

on_both_backends! {
    async fn a_new_feed_item_becomes_a_campaign_to_its_sources_lists_at_the_next_dispatch_window(db) {
        let (_server, store, scheduler) = fed(db, &[]).await;

        let polled = scheduler.poll(at("2026-03-02T10:00:00Z")).await.unwrap();
        assert_eq!(polled.campaigns.len(), 1, "one per source per dispatch window");
        let c = &polled.campaigns[0];
        assert_eq!(c.report_title, NEWEST);
        assert_eq!(c.state, CampaignState::Scheduled);
        assert_eq!(c.send_at, Some(at("2026-03-03T09:00:00Z")), "the next 09:00");
        assert_eq!(c.lists, [ListSlug::parse("members").unwrap()]);
        let held: Vec<&NoCampaign> = polled.unsent.iter().map(|u| &u.why).collect();
        let newer = NoCampaign::Newer { newest: c.report_id };
        assert_eq!(held, [&newer; NEC_ITEMS - 1]);

        let again = scheduler.poll(at("2026-03-02T10:15:00Z")).await.unwrap();
        assert!(again.campaigns.is_empty(), "the items are not new any more");
        assert!(again.unsent.is_empty());
        assert_eq!(store.campaigns().await.unwrap().len(), 1);
    }

    async fn with_hold_a_new_reports_campaign_is_held_until_campaign_approve_schedules_it(db) {
        let (_server, store, scheduler) = fed(db, &[("NECMAIL_AUTO_DISPATCH", "hold")]).await;

        let now = Utc::now();
        let polled = scheduler.poll(now).await.unwrap();
        assert_eq!(polled.campaigns.len(), 1);
        let window = config(&[]).dispatch_schedule.next_after(now);
        for c in &polled.campaigns {
            assert_eq!(c.state, CampaignState::Held);
            assert_eq!(c.send_at, window, "the window is kept for the approval");
        }
        assert!(scheduler.start_due_campaigns(window.unwrap()).await.is_empty(), "held campaigns wait");

        let id = polled.campaigns[0].id;
        let out = run(db, &["campaign", "approve", &id.to_string()]);
        assert!(out.ok().contains(&format!("campaign {id} is approved")), "{}", out.stdout);
        let approved = store.campaign(id).await.unwrap();
        assert_eq!(approved.state, CampaignState::Scheduled);
        assert_eq!(approved.send_at, window, "a time still to come is kept");
        assert_eq!(scheduler.start_due_campaigns(window.unwrap()).await, [id]);
    }

    async fn approving_a_held_campaign_whose_time_has_passed_starts_it_at_once(db) {
        let (_server, store, scheduler) = fed(db, &[("NECMAIL_AUTO_DISPATCH", "hold")]).await;
        let polled = scheduler.poll(at("2020-01-01T10:00:00Z")).await.unwrap();
        let id = polled.campaigns[0].id;

        let before = Utc::now() - chrono::Duration::seconds(1);
        run(db, &["campaign", "approve", &id.to_string()]).ok();
        let approved = store.campaign(id).await.unwrap();
        assert_eq!(approved.state, CampaignState::Scheduled);
        assert!(approved.send_at.unwrap() >= before, "{:?} is now", approved.send_at);
        assert_eq!(scheduler.start_due_campaigns(Utc::now()).await, [id]);
    }

    async fn without_lists_on_the_source_or_default_lists_no_campaign_is_made(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        add_source(&*store, &server.url("/fixtures/nec.rss"), &[]).await;
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));

        let polled = scheduler.poll(at("2026-03-02T10:00:00Z")).await.unwrap();
        assert!(polled.campaigns.is_empty());
        assert!(polled.unsent.iter().all(|u| u.why == NoCampaign::NoLists));
        assert_eq!(polled.unsent.len(), NEC_ITEMS);
        assert_eq!(store.reports().await.unwrap().len(), NEC_ITEMS, "the reports are still imported");
        assert!(store.campaigns().await.unwrap().is_empty());
    }

    async fn a_source_without_lists_sends_its_reports_to_the_default_lists(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        add_source(&*store, &server.url("/fixtures/nec.rss"), &[]).await;
        let scheduler = scheduler(
            &store,
            config(&[("NECMAIL_DEFAULT_LISTS", "councillors")]),
            &db.dir.path().join("outbox"),
        );

        let polled = scheduler.poll(at("2026-03-02T10:00:00Z")).await.unwrap();
        assert_eq!(polled.campaigns.len(), 1);
        assert_eq!(polled.campaigns[0].lists, [ListSlug::parse("councillors").unwrap()]);
    }

    async fn a_scheduled_campaign_is_started_once_its_time_comes_and_not_before(db) {
        let store = db.store().await;
        let send_at = at("2026-03-03T09:00:00Z");
        let id = members_campaign(&*store, Some(send_at)).await.id;
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));

        let early = scheduler.run_due(at("2026-03-03T08:59:59Z")).await;
        assert!(early.started.is_empty());
        assert_eq!(store.campaign(id).await.unwrap().state, CampaignState::Scheduled);

        let on_time = scheduler.run_due(send_at).await;
        assert_eq!(on_time.started, [id]);
        assert_eq!(on_time.dispatch_window, Some(send_at), "the window opened at 09:00");
        assert_eq!(store.campaign(id).await.unwrap().state, CampaignState::Sending);

        let later = scheduler.run_due(at("2026-03-03T09:00:01Z")).await;
        assert!(later.started.is_empty(), "it is started once");
        assert_eq!(later.dispatch_window, None);
    }

    async fn running_it_starts_a_campaign_whose_time_has_come_and_it_stops_when_told(db) {
        let store = db.store().await;
        let id = members_campaign(&*store, Some(Utc::now() - chrono::Duration::minutes(1)))
            .await
            .id;
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(scheduler.run(stop));

        let started = async {
            while store.campaign(id).await.unwrap().state != CampaignState::Sending {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(WAIT, started).await.expect("the campaign starts");
        stop_tx.send(true).unwrap();
        tokio::time::timeout(WAIT, running)
            .await
            .expect("the scheduler stops")
            .unwrap();
    }

    async fn after_downtime_only_the_latest_missed_poll_tick_runs(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        members_and_a_feed(&*store, &server).await;
        assert!(store.claim_tick(POLL_TICK, at("2026-03-02T08:00:00Z")).await.unwrap());
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));

        // Down from 08:00 to 10:07: eight poll ticks and a dispatch window were missed.
        let first = scheduler.run_due(at("2026-03-02T10:07:00Z")).await;
        assert!(first.poll.is_some(), "the missed poll runs");
        assert_eq!(server.hits("/fixtures/nec.rss").len(), 1, "once");
        assert_eq!(first.dispatch_window, None, "the dispatch schedule never ticked, so none was missed");
        let ticks = store.ticks().await.unwrap();
        assert_eq!(ticks, [(POLL_TICK.to_owned(), at("2026-03-02T10:00:00Z"))]);

        let next = scheduler.run_due(at("2026-03-02T10:07:30Z")).await;
        assert!(next.poll.is_none());
        let tick = scheduler.run_due(at("2026-03-02T10:15:00Z")).await;
        assert!(tick.poll.is_some(), "the next tick runs on time");
        assert_eq!(server.hits("/fixtures/nec.rss").len(), 2);
    }

    async fn a_schedule_that_never_ticked_waits_for_its_next_tick(db) {
        let (server, store, scheduler) = fed(db, &[]).await;

        assert!(scheduler.run_due(at("2026-03-02T10:07:00Z")).await.poll.is_none());
        assert!(server.hits("/fixtures/nec.rss").is_empty());
        assert!(store.ticks().await.unwrap().is_empty());
        assert!(scheduler.run_due(at("2026-03-02T10:15:00Z")).await.poll.is_some());
    }

    async fn two_schedulers_on_one_database_run_each_tick_once(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        members_and_a_feed(&*store, &server).await;
        let other_store = db.store().await;
        let one = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));
        let two = scheduler(&other_store, config(&[]), &db.dir.path().join("outbox"));
        one.run_due(at("2026-03-02T10:07:00Z")).await;
        two.run_due(at("2026-03-02T10:07:00Z")).await;

        let tick = at("2026-03-02T10:15:00Z");
        let (a, b) = tokio::join!(one.run_due(tick), two.run_due(tick));
        assert_eq!(
            usize::from(a.poll.is_some()) + usize::from(b.poll.is_some()),
            1,
            "one of them polls"
        );
        assert_eq!(server.hits("/fixtures/nec.rss").len(), 1);
        assert_eq!(store.campaigns().await.unwrap().len(), 1);

        assert!(!store.claim_tick(POLL_TICK, tick).await.unwrap(), "a tick is claimed once");
        assert!(!store.claim_tick(POLL_TICK, at("2026-03-02T10:00:00Z")).await.unwrap(), "an earlier one too");
        assert!(store.claim_tick(POLL_TICK, at("2026-03-02T10:30:00Z")).await.unwrap());
    }

    async fn a_meeting_with_no_report_after_the_overdue_days_warns_once_mailing_the_admin(db) {
        let store = db.store().await;
        store.add_meeting(date("2026-03-01"), Some("NEC")).await.unwrap();
        let outbox = db.dir.path().join("outbox");
        let scheduler = scheduler(
            &store,
            config(&[("NECMAIL_REPORT_OVERDUE_DAYS", "14"), ("NECMAIL_ADMIN_EMAIL", "admin@nec.example")]),
            &outbox,
        );

        let early = scheduler.poll(at("2026-03-14T12:00:00Z")).await.unwrap();
        assert!(early.overdue.is_empty());
        assert!(mails(&outbox).is_empty());

        let due = scheduler.poll(at("2026-03-15T12:00:00Z")).await.unwrap();
        assert_eq!(due.overdue.len(), 1);
        let sent = mails(&outbox);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("X-Envelope-To: <admin@nec.example>"), "{}", sent[0]);
        assert!(sent[0].contains("Subject: No report yet for the NEC meeting of 1 March 2026"), "{}", sent[0]);
        assert!(sent[0].contains("was 14 days ago"), "{}", sent[0]);
        assert!(store.meetings().await.unwrap()[0].overdue_notice_at.is_some());

        let later = scheduler.poll(at("2026-03-16T12:00:00Z")).await.unwrap();
        assert!(later.overdue.is_empty());
        assert_eq!(mails(&outbox).len(), 1, "once");
    }

    async fn an_overdue_warning_that_cannot_be_mailed_is_tried_again_at_the_next_poll(db) {
        let store = db.store().await;
        store.add_meeting(date("2026-03-01"), None).await.unwrap();
        let config = || config(&[("NECMAIL_REPORT_OVERDUE_DAYS", "14"), ("NECMAIL_ADMIN_EMAIL", "admin@nec.example")]);
        let down = scheduler_with(&store, config(), Arc::new(Down));
        let polled = down.poll(at("2026-03-20T12:00:00Z")).await.unwrap();
        assert!(polled.overdue.is_empty());
        assert!(store.meetings().await.unwrap()[0].overdue_notice_at.is_none());

        let outbox = db.dir.path().join("outbox");
        let up = scheduler(&store, config(), &outbox);
        assert_eq!(up.poll(at("2026-03-20T12:15:00Z")).await.unwrap().overdue.len(), 1);
        assert_eq!(mails(&outbox).len(), 1);
    }

    async fn without_an_admin_email_an_overdue_report_is_only_logged_once(db) {
        let store = db.store().await;
        store.add_meeting(date("2026-03-01"), None).await.unwrap();
        let outbox = db.dir.path().join("outbox");
        let scheduler = scheduler(&store, config(&[("NECMAIL_REPORT_OVERDUE_DAYS", "14")]), &outbox);
        assert_eq!(scheduler.poll(at("2026-03-20T12:00:00Z")).await.unwrap().overdue.len(), 1);
        assert!(scheduler.poll(at("2026-03-20T12:15:00Z")).await.unwrap().overdue.is_empty());
        assert!(mails(&outbox).is_empty());
    }

    async fn a_report_imported_after_a_meeting_is_linked_to_it_by_its_title_and_keeps_its_own_date(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        members_and_a_feed(&*store, &server).await;
        store.add_meeting(date("2017-03-21"), None).await.unwrap();
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));

        let polled = scheduler.poll(at("2017-03-25T10:00:00Z")).await.unwrap();
        assert_eq!(polled.linked.len(), 1);
        let linked = polled.linked[0].report.as_ref().expect("a linked report");
        assert_eq!(linked.title, "Labour NEC Report – March 2017", "not January's, published before it");
        assert_eq!(linked.linked_by, LinkBasis::Title);
        let reports = store.reports().await.unwrap();
        assert!(reports.iter().all(|r| r.meeting_date.is_none()), "no report was given a date");
    }

    async fn feeds_that_fail_are_recorded_on_their_source_and_the_scheduler_carries_on(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        let good = members_and_a_feed(&*store, &server).await;
        for path in ["/fail/500", "/fail/garbage", "/fail/huge"] {
            add_source(&*store, &server.url(path), &["members"]).await;
        }
        let scheduler = scheduler(&store, config(&[]), &db.dir.path().join("outbox"));
        scheduler.run_due(at("2026-03-02T10:07:00Z")).await;

        let ran = scheduler.run_due(at("2026-03-02T10:15:00Z")).await;
        let polled = ran.poll.expect("the poll ran");
        let failed = polled
            .sources
            .iter()
            .filter(|p| matches!(p.outcome, PollOutcome::Failed(_)))
            .count();
        assert_eq!(failed, 3);
        assert_eq!(polled.campaigns.len(), 1, "the good feed's newest report still gets its campaign");
        for source in store.sources().await.unwrap() {
            assert_eq!(source.last_error.is_some(), source.id != good.id, "{}: {:?}", source.url, source.last_error);
        }
        assert!(
            scheduler.run_due(at("2026-03-02T10:30:00Z")).await.poll.is_some(),
            "the next tick polls again"
        );
    }

    async fn a_report_dated_for_a_meeting_is_linked_before_an_earlier_undated_one(db) {
        let store = db.store().await;
        store.add_meeting(date("2020-01-01"), None).await.unwrap();
        let undated = report(&*store).await;
        let dated = match store
            .insert_report(&necmail::reports::ReportDraft {
                title: "The January meeting".into(),
                meeting_date: Some(date("2020-01-01")),
                summary: None,
                body_markdown: "It met.\n".into(),
                source: necmail::reports::ReportSource::Paste,
                published_at: None,
                excerpt: None,
            }, &Default::default())
            .await
            .unwrap()
        {
            necmail::reports::Stored::New(r) => r.id,
            other => panic!("{other:?}"),
        };
        let rules = config(&[]).link_rules();
        let linked = store.link_reports(rules).await.unwrap();
        assert_eq!(linked[0].report.as_ref().unwrap().id, dated);
        assert_eq!(linked[0].report.as_ref().unwrap().linked_by, LinkBasis::MeetingDate);
        assert_ne!(dated, undated);
        assert!(store.link_reports(rules).await.unwrap().is_empty(), "linking again links nothing");
    }

    async fn meeting_add_and_ls_show_each_meeting_with_its_report(db) {
        run(db, &["meeting", "add", "2020-01-14", "--title", "Away day"]).ok();
        let far_ahead = (Utc::now() + chrono::Duration::days(3)).date_naive().to_string();
        run(db, &["meeting", "add", &far_ahead]).ok();
        let lately = (Utc::now() - chrono::Duration::days(2)).date_naive().to_string();
        run(db, &["meeting", "add", &lately]).ok();

        let table = run(db, &["meeting", "ls"]);
        let lines: Vec<&str> = table.ok().lines().collect();
        assert!(lines[0].starts_with("DATE") && lines[0].ends_with("LINKED BY"), "{}", table.stdout);
        assert!(lines[1].starts_with(&far_ahead) && lines[1].ends_with("no report yet"), "{}", table.stdout);
        assert!(lines[2].starts_with(&lately) && lines[2].ends_with("no report yet"), "{}", table.stdout);
        assert!(lines[3].contains("Away day") && lines[3].ends_with("overdue"), "{}", table.stdout);

        // Imported now: soon after the last meeting, before the one to come,
        // and years after the away day.
        let store = db.store().await;
        let report = report(&*store).await;
        let slug = store.report(&ReportRef::Id(report)).await.unwrap().slug;
        let table = run(db, &["meeting", "ls"]);
        let lines: Vec<&str> = table.ok().lines().collect();
        assert!(lines[1].ends_with("no report yet"), "{}", table.stdout);
        assert!(lines[2].contains(&slug) && lines[2].ends_with("published"), "{}", table.stdout);
        assert!(lines[3].ends_with("overdue"), "{}", table.stdout);

        let json = run(db, &["meeting", "ls", "--json"]).json();
        assert_eq!(json[0]["held_on"], far_ahead.as_str());
        assert!(json[0]["report"].is_null());
        assert_eq!(json[1]["report"]["slug"], slug.as_str());
        assert_eq!(json[1]["report"]["linked_by"], "published");
        assert_eq!(json[2]["title"], "Away day");
        assert!(json[2]["report"].is_null());
    }

    async fn a_bad_or_duplicate_meeting_date_exits_2(db) {
        let bad = run(db, &["meeting", "add", "21/03/2026"]);
        assert!(bad.fails(2).contains("is not a date like 2026-03-21"), "{}", bad.stderr);
        let impossible = run(db, &["meeting", "add", "2026-02-30"]);
        impossible.fails(2);
        run(db, &["meeting", "add", "2026-03-21"]).ok();
        let again = run(db, &["meeting", "add", "2026-03-21"]);
        assert!(again.fails(2).contains("a meeting on 2026-03-21 is already recorded"), "{}", again.stderr);
    }

    async fn campaign_approve_of_a_campaign_that_is_not_held_exits_2(db) {
        let store = db.store().await;
        let draft = members_campaign(&*store, None).await;
        let out = run(db, &["campaign", "approve", &draft.id.to_string()]);
        assert!(out.fails(2).contains("is draft, not held"), "{}", out.stderr);
        assert_eq!(store.campaign(draft.id).await.unwrap().state, CampaignState::Draft);
        run(db, &["campaign", "approve", "999"]).fails(2);
    }
}
