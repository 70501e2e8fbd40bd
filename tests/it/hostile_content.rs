//! Hostile reports and feed items, through the real binary: nesting
//! thousands deep and oversized items neither stop `necmail serve` nor
//! change what is stored, and a stored report nested deeper than any import
//! allows still renders. The inputs are generated here (see
//! tests/fixtures/hostile/README.md).

use necmail::reports::{ReportDraft, ReportSource};

use crate::serve::{Daemon, campaigns_done};
use crate::support::cli::{run, run_allowing_loopback};
use crate::support::http::FeedServer;
use crate::support::smtp::SmtpServer;
use crate::support::{http_client, on_both_backends};

/// `open` × `depth`, then `text`, then `close` × `depth`.
fn nested(open: &str, close: &str, depth: usize, text: &str) -> String {
    format!("{}{text}{}", open.repeat(depth), close.repeat(depth))
}

/// A report stored without going through an importer, as one stored
/// before the importers refused deep nesting would be.
fn stored_draft(title: &str, body: String) -> ReportDraft {
    ReportDraft {
        title: title.into(),
        meeting_date: None,
        summary: None,
        body_markdown: body,
        source: ReportSource::Paste,
        published_at: None,
        excerpt: None,
    }
}

on_both_backends! {
    async fn feed_items_nested_thousands_deep_neither_stop_the_daemon_nor_change_what_is_stored(db) {
        let smtp = SmtpServer::start().await;
        let feed = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run_allowing_loopback(db, &["source", "add", &feed.url("/live.rss"), "--list", "members"]).ok();
        run(db, &["subscriber", "add", "kept@example.org", "--list", "members", "--confirmed"]).ok();
        let store = db.store().await;
        let deep = store
            .insert_report(&stored_draft("Stored deep", format!("{} stored deep text\n", ">".repeat(10_000))), &Default::default())
            .await
            .unwrap();
        let deep = match deep {
            necmail::reports::Stored::New(report) => report,
            other => panic!("{other:?}"),
        };
        run(db, &["campaign", "create", "--report", &deep.slug, "--list", "members", "--now"]).ok();
        let before = run(db, &["report", "show", &deep.slug, "--json"]).json();

        let blockquotes = nested("<blockquote>", "</blockquote>", 4_000, "<p>quoted 4000 deep</p>");
        let divs = nested("<div>", "</div>", 10_000, "<p>divided 10000 deep</p>");
        let too_large = format!("<p>{}</p>", "575,000 members. ".repeat(70_000));
        let items = [
            ("too-large", "Over a megabyte", too_large.as_str()),
            ("deep-quotes", "Quotes 4000 deep", blockquotes.as_str()),
            ("deep-divs", "Divs 10000 deep", divs.as_str()),
            ("plain", "A plain report", "<p>The NEC met.</p>"),
        ];
        let daemon = Daemon::start(db, &[
            ("NECMAIL_SMTP_URL", smtp.url()),
            ("NECMAIL_POLL_SCHEDULE", "* * * * * *".into()),
            ("NECMAIL_DISPATCH_SCHEDULE", "*/2 * * * * *".into()),
            ("NECMAIL_FEED_ALLOW_PRIVATE", "true".into()),
        ]).await;

        // The stored report and the three importable items are each sent:
        // they appear one at a time, as a source gets one campaign per
        // dispatch window.
        for published in 2..=items.len() {
            feed.set_live(&items[..published]);
            campaigns_done(db, published).await;
        }
        let sources = run(db, &["source", "ls", "--json"]).json();
        let error = sources[0]["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains("Over a megabyte") && error.contains("at most 1 MiB"), "{sources}");
        let reports = run(db, &["report", "ls", "--json"]).json();
        let titles: Vec<&str> = reports
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap())
            .collect();
        for title in ["Quotes 4000 deep", "Divs 10000 deep", "A plain report", "Stored deep"] {
            assert!(titles.contains(&title), "{title}: {reports}");
        }
        assert!(!titles.contains(&"Over a megabyte"), "{reports}");
        assert_eq!(smtp.messages_to("kept@example.org").len(), 4);

        // Anyone can read each report's web version, however deep it was.
        let client = http_client().build().unwrap();
        for report in reports.as_array().unwrap() {
            let slug = report["slug"].as_str().unwrap();
            let text = match report["title"].as_str().unwrap() {
                "Quotes 4000 deep" => "quoted 4000 deep",
                "Divs 10000 deep" => "divided 10000 deep",
                "A plain report" => "The NEC met.",
                _ => "stored deep text",
            };
            let page = client.get(daemon.url(&format!("/archive/{slug}"))).send().await.unwrap();
            assert_eq!(page.status(), 200, "{slug}");
            assert!(page.text().await.unwrap().contains(text), "{slug}");
        }

        // The daemon is still up, and the stored report is as it was.
        let health = client.get(daemon.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(run(db, &["report", "show", &deep.slug, "--json"]).json(), before);
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(!log.contains("panicked") && !log.contains("overflow"), "{log}");
    }

    async fn a_report_nested_ten_thousand_deep_is_refused_at_import_and_previews_flattened_if_stored(db) {
        let dir = db.dir.path();
        let file = dir.join("deep.md");
        std::fs::write(&file, format!("# Deep\n\n{} text\n", ">".repeat(10_000))).unwrap();
        let refused = run(db, &["report", "import", file.to_str().unwrap()]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains("10001 levels deep, and at most 64"), "{}", refused.stderr);
        assert!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().is_empty());

        let store = db.store().await;
        store
            .insert_report(&stored_draft("Stored deep", format!("{} stored deep text\n", ">".repeat(10_000))), &Default::default())
            .await
            .unwrap();
        let before = run(db, &["report", "show", "stored-deep", "--json"]).json();
        let out = dir.join("preview");
        let preview = run(db, &["report", "preview", "stored-deep", "--out", out.to_str().unwrap()]);
        assert_eq!(preview.code, 0, "{}", preview.stderr);
        let html = std::fs::read_to_string(out.join("preview.html")).unwrap();
        assert!(html.contains("stored deep text"));
        assert!(html.matches("<blockquote").count() <= 64);
        assert_eq!(run(db, &["report", "show", "stored-deep", "--json"]).json(), before);
    }
}
