//! Excerpts (issue 12, item 17): the opening of a post that an archive page
//! or a summary-only feed shows, cut off with "Continue reading". Through
//! the real binary and a local HTTP server that serves the full posts.

use std::sync::Arc;

use chrono::Utc;
use necmail::campaigns::{CampaignState, NewCampaign};
use necmail::lists::{ListSlug, OptIn};
use necmail::reports::{Excerpt, ReportDraft, ReportRef, ReportSource};
use necmail::store::Store;

use crate::lists::{new_list, subscriber};
use crate::scheduler::{config, scheduler};
use crate::support::cli::{run, run_allowing_loopback, run_with_stdin};
use crate::support::http::FeedServer;
use crate::support::on_both_backends;

const JULY: &str = "Labour NEC Report – July 2017";

/// The fixture `name` of `tests/fixtures/reports/`.
fn report_fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `report ls --json`'s rows as (title, excerpt, sections).
fn listed(db: &crate::support::TestDb) -> Vec<(String, bool, i64)> {
    let rows = run(db, &["report", "ls", "--json"]).json();
    let mut rows: Vec<(String, bool, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["title"].as_str().unwrap().to_owned(),
                r["excerpt"].as_bool().unwrap(),
                r["sections"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

on_both_backends! {
    async fn the_archive_pages_excerpt_of_a_stored_post_is_that_post_and_the_others_are_marked(db) {
        let imported = run(db, &["report", "import", &report_fixture("july-2017.txt")]).ok().to_owned();
        assert!(imported.starts_with("imported report 1 labour-nec-report-july-2017"), "{imported}");

        let archive = std::fs::read(report_fixture("archive-three-posts.txt")).unwrap();
        let pasted = run_with_stdin(db, &["report", "import", "-"], &archive);
        let out = pasted.ok();
        assert!(
            out.contains(&format!(
                "{JULY:?} is an excerpt of report 1 labour-nec-report-july-2017, stored complete already"
            )),
            "{out}"
        );
        assert!(out.contains("NEC Report- March 2017 (0 sections, an excerpt only)"), "{out}");
        assert!(out.contains("an excerpt only"), "{out}");
        assert!(
            pasted.stderr.contains("warning: \"NEC Report- March 2017\" is only an excerpt of its post")
                && pasted.stderr.contains("it does not link to its full post"),
            "{}",
            pasted.stderr
        );
        assert_eq!(
            listed(db),
            [
                (JULY.to_owned(), false, 4),
                ("NEC Report- March 2017".to_owned(), true, 0),
                ("Report from April’s Emergency NEC meeting".to_owned(), true, 0),
            ]
        );
        let table = run(db, &["report", "ls"]).ok().to_owned();
        assert!(table.lines().next().unwrap().ends_with("EXCERPT"), "{table}");
        assert_eq!(table.lines().filter(|l| l.ends_with("excerpt")).count(), 2, "{table}");
        let shown = run(db, &["report", "show", "nec-report-march-2017"]).ok().to_owned();
        assert!(shown.contains("excerpt:    yes: only the opening of its post"), "{shown}");
        let full = run(db, &["report", "show", "1"]).ok().to_owned();
        assert!(!full.contains("excerpt:"), "{full}");
        assert_eq!(run(db, &["report", "show", "2", "--json"]).json()[0]["excerpt"], true);

        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        let refused = run(
            db,
            &["campaign", "create", "--report", "nec-report-march-2017", "--list", "members", "--now"],
        );
        let why = refused.fails(2);
        assert!(
            why.contains("report nec-report-march-2017 is only an excerpt of its post")
                && why.contains("--allow-excerpt"),
            "{why}"
        );
        assert!(run(db, &["campaign", "ls", "--json"]).json().as_array().unwrap().is_empty());
        run(
            db,
            &[
                "campaign", "create", "--report", "nec-report-march-2017", "--list", "members",
                "--now", "--allow-excerpt",
            ],
        )
        .ok();
        run(db, &["campaign", "create", "--report", "1", "--list", "members", "--now"]).ok();
    }

    async fn a_summary_only_feed_gets_each_full_post_from_its_link_and_keeps_the_rest_as_excerpts(db) {
        let server = FeedServer::start();
        let feed = server.url("/templated/excerpts.rss");
        let imported = run_allowing_loopback(db, &["report", "import", &feed]);
        let out = imported.ok().to_owned();
        assert!(out.contains(&format!("{JULY} (3 sections)")), "{out}");
        assert!(out.contains("NEC Report- March 2017 (0 sections, an excerpt only)"), "{out}");
        assert!(
            imported.stderr.contains("\"NEC Report- March 2017\" is only an excerpt of its post")
                && imported.stderr.contains("/fail/500 answered 500"),
            "{}",
            imported.stderr
        );
        assert_eq!(server.hits("/fixtures/july-2017.html").len(), 1);
        let july = run(db, &["report", "show", "labour-nec-report-july-2017", "--json"]).json();
        let july = &july[0];
        assert_eq!(july["excerpt"], false);
        assert!(
            july["intro"].as_str().unwrap().ends_with("in twenty years, and membership has passed 575,000 again."),
            "{july}"
        );
        let headings: Vec<&str> = july["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["heading"].as_str().unwrap())
            .collect();
        assert_eq!(headings, ["Leader’s Report", "Preparing for another snap election", "Party Membership"]);
        let text = july.to_string();
        for cruft in ["thoughts on", "Thanks for this", "Posted", "Jane Doe"] {
            assert!(!text.contains(cruft), "{cruft:?} in {text}");
        }

        let again = run_allowing_loopback(db, &["report", "import", &feed]).ok().to_owned();
        assert!(again.contains("already stored as report 1 labour-nec-report-july-2017"), "{again}");
        assert_eq!(listed(db).len(), 2);
    }

    async fn an_archive_page_at_a_url_gets_each_full_post_from_its_posts_link(db) {
        let server = FeedServer::start();
        let page = server.url("/templated/archive.html");
        let imported = run_allowing_loopback(db, &["report", "import", &page]);
        let out = imported.ok().to_owned();
        assert!(out.contains(&format!("{JULY} (3 sections)")), "{out}");
        assert!(out.contains("NEC Report- March 2017 (0 sections, an excerpt only)"), "{out}");
        assert!(imported.stderr.contains("/fail/500 answered 500"), "{}", imported.stderr);
        assert_eq!(
            listed(db),
            [(JULY.to_owned(), false, 3), ("NEC Report- March 2017".to_owned(), true, 0)]
        );
        let private = run(db, &["report", "import", &page]);
        assert!(private.fails(2).contains("127.0.0.1"), "{}", private.stderr);
    }

    async fn the_scheduler_pauses_a_campaign_of_an_excerpt_with_the_reason_and_sends_an_allowed_one(db) {
        let store: Arc<dyn Store> = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("ann@example.org", &["members"], true)).await.unwrap();
        let draft = ReportDraft {
            title: "NEC Report- March 2017".into(),
            meeting_date: None,
            summary: None,
            body_markdown: "This was a long meeting, dominated by the by-elections.\n".into(),
            source: ReportSource::Paste,
            published_at: None,
            excerpt: Some(Excerpt::default()),
        };
        let stored = store.insert_report(&draft, &Default::default()).await.unwrap();
        let necmail::reports::Stored::New(report) = stored else { panic!("{stored:?}") };
        assert!(report.excerpt);
        let campaign = |allow_excerpt| NewCampaign {
            report: ReportRef::Id(report.id),
            lists: vec![ListSlug::parse("members").unwrap()],
            filter: Vec::new(),
            send_at: Some(Utc::now() - chrono::Duration::minutes(1)),
            subject: None,
            hold: false,
            allow_excerpt,
        };
        let held = store.create_campaign(&campaign(false)).await.unwrap();
        let allowed = store.create_campaign(&campaign(true)).await.unwrap();
        let outbox = db.dir.path().join("outbox");
        let scheduler = scheduler(&store, config(&[]), &outbox);
        let started = scheduler.start_due_campaigns(Utc::now()).await;
        assert_eq!(started, [allowed.id]);
        let held = store.campaign(held.id).await.unwrap();
        assert_eq!(held.state, CampaignState::Paused);
        assert!(held.started_at.is_none());
        let reason = held.pause_reason.unwrap();
        assert!(
            reason.contains("report nec-report-march-2017 is only an excerpt of its post")
                && reason.contains(&format!("cancel campaign {} and create it again with --allow-excerpt", held.id)),
            "{reason}"
        );
        let refused = run(db, &["campaign", "send", &held.id.to_string()]);
        assert!(refused.fails(2).contains("was not started: report nec-report-march-2017 is only an excerpt"));
    }
}
