//! Meetings and their reports through the real binary, on both backends:
//! reports are linked only on evidence and keep their own dates, so the
//! overdue check warns only about meetings that have no report; and the
//! `meeting` commands that link, unlink, remove and import meetings.

use necmail::store::Store;
use serde_json::Value;

use crate::scheduler::{at, config, mails, scheduler};
use crate::support::cli::{run, run_allowing_loopback};
use crate::support::http::{FeedServer, fixture_path};
use crate::support::{TestDb, on_both_backends};

/// Stores a pasted report titled `title`, published now; returns its slug.
async fn paste(store: &dyn Store, title: &str) -> String {
    let body = "## Party Membership\n\nWe have 575,000 members.\n";
    crate::campaigns::paste(store, title, body).await.slug
}

/// `meeting ls --json`, as (date, the linked report's slug, why linked).
fn links(db: &TestDb) -> Vec<(String, Option<String>, Option<String>)> {
    let json = run(db, &["meeting", "ls", "--json"]).json();
    let text = |v: &Value| v.as_str().map(str::to_owned);
    json.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["held_on"].as_str().unwrap().to_owned(),
                text(&m["report"]["slug"]),
                text(&m["report"]["linked_by"]),
            )
        })
        .collect()
}

fn link(date: &str, slug: &str, why: &str) -> (String, Option<String>, Option<String>) {
    (date.into(), Some(slug.into()), Some(why.into()))
}

fn no_link(date: &str) -> (String, Option<String>, Option<String>) {
    (date.into(), None, None)
}

on_both_backends! {
    async fn a_meeting_between_two_undated_reports_takes_neither_and_no_false_alert_is_mailed(db) {
        let server = FeedServer::start();
        let feed = server.url("/fixtures/undated-2026.rss");
        run_allowing_loopback(db, &["source", "add", &feed, "--send-existing"]).ok();
        run_allowing_loopback(db, &["source", "poll"]).ok();
        let (june, september) = ("what-the-nec-decided", "notes-from-the-nec");

        let out = run(db, &["meeting", "add", "2026-06-16"]);
        assert!(out.ok().contains(june), "{}", out.stdout);
        // Published on 22 September, ten weeks after: not July's report.
        let out = run(db, &["meeting", "add", "2026-07-14"]);
        assert!(!out.ok().contains(september), "{}", out.stdout);
        assert_eq!(out.stdout, "recorded the meeting of 2026-07-14\n");
        let out = run(db, &["meeting", "add", "2026-09-15"]);
        assert!(out.ok().contains(september), "{}", out.stdout);

        assert_eq!(
            links(db),
            [
                link("2026-09-15", september, "published"),
                no_link("2026-07-14"),
                link("2026-06-16", june, "published"),
            ]
        );
        let reports = run(db, &["report", "ls", "--json"]).json();
        for report in reports.as_array().unwrap() {
            assert!(report["meeting_date"].is_null(), "a report keeps its own date: {report}");
        }

        // The overdue check after all three: July's report is missing, and only that.
        let store = db.store().await;
        let outbox = db.dir.path().join("outbox");
        let scheduler = scheduler(
            &store,
            config(&[("NECMAIL_REPORT_OVERDUE_DAYS", "14"), ("NECMAIL_ADMIN_EMAIL", "admin@nec.example")]),
            &outbox,
        );
        let polled = scheduler.poll(at("2026-10-01T12:00:00Z")).await.unwrap();
        let overdue: Vec<String> = polled.overdue.iter().map(|m| m.held_on.to_string()).collect();
        assert_eq!(overdue, ["2026-07-14"]);
        let sent = mails(&outbox);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("Subject: No report yet for the NEC meeting of 14 July 2026"), "{}", sent[0]);
    }

    async fn meeting_link_links_a_report_by_hand_for_good_and_leaves_its_date_alone(db) {
        let store = db.store().await;
        let march = paste(&*store, "NEC Report – March 2026").await;
        run(db, &["meeting", "add", "2020-01-14"]).ok();

        let out = run(db, &["meeting", "link", "2020-01-14", &march]);
        assert_eq!(out.ok(), format!("linked report {march} to the meeting of 2020-01-14\n"));
        assert_eq!(links(db), [link("2020-01-14", &march, "hand")]);
        let shown = run(db, &["report", "show", &march, "--json"]).json();
        assert!(shown[0]["meeting_date"].is_null(), "{shown}");

        // A meeting its title names does not take it from the hand link.
        run(db, &["meeting", "add", "2026-03-10"]).ok();
        assert_eq!(links(db), [no_link("2026-03-10"), link("2020-01-14", &march, "hand")]);
        let taken = run(db, &["meeting", "link", "2026-03-10", &march]);
        assert!(
            taken.fails(2).contains("linked by hand to the meeting of 2020-01-14; unlink it"),
            "{}",
            taken.stderr
        );

        // Another report, linked on evidence, is taken by a hand link.
        let other = paste(&*store, "NEC notes – 10 March 2026").await;
        assert_eq!(
            links(db),
            [link("2026-03-10", &other, "title"), link("2020-01-14", &march, "hand")]
        );
        let out = run(db, &["meeting", "link", "2020-01-14", &other]);
        assert!(
            out.ok().contains(&format!("linked report {march} to the meeting of 2026-03-10: the date in its title")),
            "the report let go finds its own meeting: {}",
            out.stdout
        );
        assert_eq!(
            links(db),
            [link("2026-03-10", &march, "title"), link("2020-01-14", &other, "hand")]
        );

        let unknown = run(db, &["meeting", "link", "2020-01-14", "no-such-report"]);
        assert!(unknown.fails(2).contains("there is no report no-such-report"), "{}", unknown.stderr);
        let no_meeting = run(db, &["meeting", "link", "2021-01-01", &march]);
        assert!(no_meeting.fails(2).contains("there is no meeting on 2021-01-01"), "{}", no_meeting.stderr);
        run(db, &["meeting", "link", "14/01/2020", &march]).fails(2);
    }

    async fn meeting_unlink_unlinks_a_report_that_is_then_never_linked_to_that_meeting_again(db) {
        let store = db.store().await;
        let march = paste(&*store, "NEC Report – March 2026").await;
        let out = run(db, &["meeting", "add", "2026-03-10"]);
        assert!(
            out.ok().contains(&format!("linked report {march} to the meeting of 2026-03-10: the date in its title")),
            "{}",
            out.stdout
        );

        let out = run(db, &["meeting", "unlink", "2026-03-10"]);
        assert_eq!(out.ok(), format!("unlinked report {march} from the meeting of 2026-03-10\n"));
        assert_eq!(links(db), [no_link("2026-03-10")], "the evidence does not bring it back");
        let again = run(db, &["meeting", "unlink", "2026-03-10"]);
        assert!(again.fails(2).contains("the meeting of 2026-03-10 has no report linked"), "{}", again.stderr);
        run(db, &["meeting", "unlink", "2026-03-11"]).fails(2);

        run(db, &["meeting", "link", "2026-03-10", &march]).ok();
        assert_eq!(links(db), [link("2026-03-10", &march, "hand")], "by hand it can be linked again");
    }

    async fn meeting_rm_forgets_a_meeting_and_keeps_its_report(db) {
        let store = db.store().await;
        let march = paste(&*store, "NEC Report – March 2026").await;
        run(db, &["meeting", "add", "2026-03-10"]).ok();
        run(db, &["meeting", "add", "2026-05-12"]).ok();

        let out = run(db, &["meeting", "rm", "2026-03-10"]);
        assert_eq!(out.ok(), format!("removed the meeting of 2026-03-10; its report {march} is kept\n"));
        assert_eq!(links(db), [no_link("2026-05-12")]);
        run(db, &["report", "show", &march]).ok();
        assert_eq!(run(db, &["meeting", "rm", "2026-05-12"]).ok(), "removed the meeting of 2026-05-12\n");

        let gone = run(db, &["meeting", "rm", "2026-05-12"]);
        assert!(gone.fails(2).contains("there is no meeting on 2026-05-12"), "{}", gone.stderr);
        run(db, &["meeting", "rm", "yesterday"]).fails(2);
    }

    async fn meeting_import_records_each_event_of_a_calendar_file_or_url_once(db) {
        let file = fixture_path("nec-2026.ics");
        let out = run(db, &["meeting", "import", &file]);
        assert_eq!(
            out.ok(),
            format!("imported {file}: added 4 meetings, 0 already known; 1 event left out as cancelled\n")
        );
        let json = run(db, &["meeting", "ls", "--json"]).json();
        let meetings: Vec<(&str, &str)> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["held_on"].as_str().unwrap(), m["title"].as_str().unwrap()))
            .collect();
        assert_eq!(
            meetings,
            [
                ("2026-11-17", "NEC meeting at the annual conference, with the new members of the committee"),
                ("2026-09-15", "NEC"),
                ("2026-07-14", "NEC away day, Leeds"),
                ("2026-06-16", "NEC"),
            ]
        );
        let again = run(db, &["meeting", "import", &file]);
        assert!(again.ok().contains("added 0 meetings, 4 already known"), "{}", again.stdout);

        let server = FeedServer::start();
        let url = server.url("/fixtures/nec-2026.ics");
        run(db, &["meeting", "rm", "2026-09-15"]).ok();
        let refused = run(db, &["meeting", "import", &url]);
        assert!(refused.fails(2).contains("NECMAIL_FEED_ALLOW_PRIVATE"), "{}", refused.stderr);
        let fetched = run_allowing_loopback(db, &["meeting", "import", &url]);
        assert!(fetched.ok().contains("added 1 meeting, 3 already known"), "{}", fetched.stdout);
        assert_eq!(links(db).len(), 4);
    }

    async fn meeting_import_refuses_what_is_not_a_calendar_and_changes_nothing(db) {
        assert!(links(db).is_empty());
        let not_ics = fixture_path("nec.rss");
        let out = run(db, &["meeting", "import", &not_ics]);
        assert!(out.fails(2).contains("is not valid iCalendar"), "{}", out.stderr);
        let missing = run(db, &["meeting", "import", "no-such-calendar.ics"]);
        assert!(missing.fails(2).contains("cannot read no-such-calendar.ics"), "{}", missing.stderr);

        let server = FeedServer::start();
        let huge = run_allowing_loopback(db, &["meeting", "import", &server.url("/fail/huge")]);
        assert!(huge.fails(2).contains("larger than"), "{}", huge.stderr);
        let down = run_allowing_loopback(db, &["meeting", "import", &server.url("/fail/500")]);
        down.fails(1);
        assert!(links(db).is_empty());
    }
}
