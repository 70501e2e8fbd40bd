//! `necmail report …` end to end: the real binary, a temporary database and
//! a local HTTP server.

use std::fs;

use crate::support::cli::{run, run_allowing_loopback, run_with_stdin};
use crate::support::http::{FeedServer, fixture, fixture_path};
use crate::support::on_both_backends;

const MARCH: &str = "labour-nec-report-march-2017";

/// What `report import` prints for `march-2017.md` in an empty database.
fn march_imported() -> String {
    format!("imported report 1 {MARCH}: Labour NEC Report – March 2017 (4 sections)")
}

on_both_backends! {
    async fn a_report_file_is_imported_listed_shown_and_removed(db) {
        let file = db.dir.path().join("march-2017.md");
        fs::copy(fixture_path("march-2017.md"), &file).unwrap();
        let path = file.to_str().unwrap();
        let imported = run(db, &["report", "import", path]).ok().to_owned();
        assert_eq!(imported.trim(), march_imported());
        let again = run(db, &["report", "import", path]).ok().to_owned();
        assert_eq!(again.trim(), format!("already stored as report 1 {MARCH}"));

        let listed = run(db, &["report", "ls", "--json"]).json();
        let rows = listed.as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["id"], 1);
        assert_eq!(rows[0]["slug"], MARCH);
        assert_eq!(rows[0]["title"], "Labour NEC Report – March 2017");
        assert_eq!(rows[0]["meeting_date"], "2017-03-21");
        assert!(rows[0]["published_at"].is_string());
        assert_eq!(rows[0]["sections"], 4);
        let table = run(db, &["report", "ls"]).ok().to_owned();
        assert!(table.starts_with("ID  SLUG"), "{table}");
        assert!(table.contains("2017-03-21"), "{table}");
        let published = chrono::DateTime::parse_from_rfc3339(rows[0]["published_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
            .format("%Y-%m-%d %H:%M")
            .to_string();
        let in_tokyo = crate::support::cli::run_command(
            crate::support::cli::necmail(db).env("NECMAIL_TIMEZONE", "Asia/Tokyo").args(["report", "ls"]),
        );
        assert!(in_tokyo.ok().contains(&published), "{published} in NECMAIL_TIMEZONE: {}", in_tokyo.stdout);

        let shown = run(db, &["report", "show", "1", "--json"]).json();
        let report = &shown[0];
        assert_eq!(report["summary"], "Budget, the digital review, regional offices and the policy consultation.");
        assert_eq!(report["intro"], "The NEC met on Tuesday 21 March. This is my summary of the main items.");
        assert_eq!(report["source"]["kind"], "file");
        assert_eq!(report["source"]["path"], fs::canonicalize(&file).unwrap().to_str().unwrap());
        let sections = report["sections"].as_array().unwrap();
        assert_eq!(sections.len(), 4);
        assert_eq!(sections[0]["heading"], "Leader’s Report");
        assert_eq!(sections[0]["anchor"], "leaders-report");
        assert_eq!(
            sections[0]["markdown"],
            "The Leader spoke about the budget and the ‘80 million’ cut to school funding."
        );
        let text = run(db, &["report", "show", MARCH]).ok().to_owned();
        assert!(text.contains("title:      Labour NEC Report – March 2017"), "{text}");
        assert!(text.contains("meeting:    2017-03-21"), "{text}");
        assert!(
            text.contains("## Local Government Report  {#local-government-report}\n\nThere are 7million people"),
            "{text}"
        );

        let removed = run(db, &["report", "rm", MARCH]).ok().to_owned();
        assert_eq!(removed.trim(), format!("deleted report 1 {MARCH}"));
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), serde_json::json!([]));
        run(db, &["report", "show", "1"]).fails(2);
    }

    async fn a_report_on_stdin_is_stored_as_a_paste_and_recognised_again(db) {
        let markdown = fixture("march-2017.md");
        let first = run_with_stdin(db, &["report", "import", "-", "--format", "md"], &markdown);
        assert_eq!(first.ok().trim(), march_imported());
        let shown = run(db, &["report", "show", MARCH, "--json"]).json();
        assert_eq!(shown[0]["source"], serde_json::json!({"kind": "paste"}));
        assert_eq!(shown[0]["meeting_date"], "2017-03-21");
        let again = run(db, &["report", "import", &fixture_path("march-2017.md")]).ok().to_owned();
        assert_eq!(again.trim(), format!("already stored as report 1 {MARCH}"), "the same content, from a file");
    }

    async fn a_page_url_is_imported_as_a_url_and_a_feed_url_imports_every_item(db) {
        let server = FeedServer::start();
        let page = server.url("/fixtures/march-2017.md");
        let imported = run_allowing_loopback(db, &["report", "import", &page]).ok().to_owned();
        assert_eq!(imported.trim(), march_imported());
        let shown = run(db, &["report", "show", "1", "--json"]).json();
        assert_eq!(shown[0]["source"], serde_json::json!({"kind": "url", "url": page}));

        let feed = server.url("/fixtures/nec.rss");
        let items = run_allowing_loopback(db, &["report", "import", &feed]).ok().to_owned();
        let lines: Vec<&str> = items.lines().collect();
        assert_eq!(lines.len(), 5, "{items}");
        assert!(lines.iter().all(|l| l.starts_with("imported report ")), "{items}");
        assert!(items.contains(": Labour NEC Report – March 2017 (5 sections)"), "{items}");
        assert!(items.contains("report-from-aprils-emergency-nec-meeting"), "{items}");
        let shown = run(db, &["report", "show", "report-from-aprils-emergency-nec-meeting", "--json"]).json();
        let link = "https://nec-rep.example.org/2017/04/20/emergency-nec-meeting/";
        let source = serde_json::json!({"kind": "feed", "feed_url": feed, "guid": link, "link": link});
        assert_eq!(shown[0]["source"], source);
        assert_eq!(shown[0]["published_at"], "2017-04-20T21:40:00Z");

        let again = run_allowing_loopback(db, &["report", "import", &feed]).ok().to_owned();
        assert_eq!(again.lines().count(), 5);
        assert!(again.lines().all(|l| l.starts_with("already stored as report ")), "{again}");
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 6);
    }

    async fn bad_report_input_exits_2_with_one_sentence_and_stores_nothing(db) {
        let server = FeedServer::start();
        let empty = db.dir.path().join("empty.md");
        fs::write(&empty, "").unwrap();
        let missing = db.dir.path().join("missing.md");
        let not_found = server.url("/fixtures/missing.md");
        let cases: Vec<(Vec<&str>, String)> = vec![
            (vec!["report", "import", "-", "--format", "docx"], "\"docx\" is not a format; use md, text".into()),
            (vec!["report", "import", missing.to_str().unwrap()], format!("cannot read {}", missing.display())),
            (vec!["report", "import", empty.to_str().unwrap()], format!("cannot import {}: ", empty.display())),
            (vec!["report", "import", &not_found], format!("{not_found} answered 404 Not Found")),
            (vec!["report", "import", "ftp://nec-rep.example.org/a.md"], "is not an http:// or https:// URL".into()),
            (vec!["report", "show", "99"], "there is no report 99".into()),
            (vec!["report", "rm", "no-such-report"], "there is no report no-such-report".into()),
        ];
        for (args, expected) in cases {
            let err = run_allowing_loopback(db, &args).fails(2).to_owned();
            assert!(err.contains(&expected), "{args:?}: expected {expected:?} in:\n{err}");
            assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{args:?}: {err}");
        }
        let unavailable = run_allowing_loopback(db, &["report", "import", &server.url("/fail/500")]).fails(1).to_owned();
        assert!(unavailable.contains("answered 500 Internal Server Error"), "{unavailable}");
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), serde_json::json!([]));
    }
}
