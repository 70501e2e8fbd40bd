//! Feed sources: fetching, polling and the `source` commands, against a
//! local HTTP server.

use std::time::Duration;

use chrono::{DateTime, Utc};
use necmail::lists::{ListSlug, OptIn};
use necmail::reports::feeds::{
    AddressPolicy, FetchError, Fetched, Fetcher, ItemsImported, PollOutcome, SourcePoll,
    parse_feed, parse_url, poll_all, poll_source,
};
use necmail::reports::{ImageCopier, NewSource, ReportSource, Source};
use necmail::store::Store;

use crate::lists::new_list;
use crate::serve::{Daemon, campaigns_when};
use crate::support::cli::{ALLOW_LOOPBACK_FEEDS, Run, run, run_allowing_loopback, run_command};
use crate::support::http::{Behaviour, ETAG, FeedServer, HUGE_BYTES, LAST_MODIFIED, fixture};
use crate::support::on_both_backends;

/// A fetcher with a short timeout and a 1 MB limit, allowed to fetch from
/// the test server on 127.0.0.1.
fn fetcher() -> Fetcher {
    Fetcher::new(
        "necmail-test",
        Duration::from_secs(1),
        1_000_000,
        AddressPolicy::Any,
    )
    .unwrap()
}

/// A source of `url` for `members`, added with no item recorded as seen.
async fn add_source(store: &dyn Store, url: &str, category: Option<&str>) -> Source {
    let new = NewSource {
        url: url.to_owned(),
        category: category.map(str::to_owned),
        lists: vec![ListSlug::parse("members").unwrap()],
    };
    store.add_source(&new, &[]).await.unwrap()
}

/// The source as stored now, with the validators of its last fetch.
async fn stored(store: &dyn Store, id: i64) -> Source {
    let sources = store.sources().await.unwrap();
    sources
        .into_iter()
        .find(|s| s.id == id)
        .expect("the source is stored")
}

/// What copies images for the site at https://news.example.org/.
fn images(fetcher: &Fetcher) -> ImageCopier {
    ImageCopier::new(fetcher, &"https://news.example.org/".parse().unwrap())
}

async fn poll(store: &dyn Store, fetcher: &Fetcher, id: i64) -> SourcePoll {
    poll_source(store, fetcher, &images(fetcher), &stored(store, id).await)
        .await
        .unwrap()
}

#[track_caller]
fn items(poll: &SourcePoll) -> &ItemsImported {
    match &poll.outcome {
        PollOutcome::Fetched(items) => items,
        other => panic!("expected the feed to be read, got {other:?}"),
    }
}

#[track_caller]
fn failure(poll: &SourcePoll) -> &str {
    match &poll.outcome {
        PollOutcome::Failed(error) => error,
        other => panic!("expected the poll to fail, got {other:?}"),
    }
}

fn titles(items: &ItemsImported) -> Vec<&str> {
    items.new.iter().map(|r| r.title.as_str()).collect()
}

async fn report_ids(store: &dyn Store) -> Vec<i64> {
    store
        .reports()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().into()
}

/// Makes `/live.rss` the blog posts numbered `numbers`, newest (highest)
/// first: guid `post-N`, title `NEC post N`, a day apart.
fn publish(server: &FeedServer, numbers: std::ops::RangeInclusive<u32>) {
    let posts: Vec<[String; 3]> = numbers
        .rev()
        .map(|n| {
            [
                format!("post-{n}"),
                format!("NEC post {n}"),
                format!("<p>The NEC met, time {n}.</p>"),
            ]
        })
        .collect();
    let items: Vec<(&str, &str, &str)> = posts
        .iter()
        .map(|[guid, title, html]| (guid.as_str(), title.as_str(), html.as_str()))
        .collect();
    server.set_live(&items);
}

/// A dispatch window at 09:00 on 1 January, so that every poll of a test
/// comes before the same window.
const NEW_YEAR: (&str, &str) = ("NECMAIL_DISPATCH_SCHEDULE", "0 9 1 1 *");

/// `necmail source poll`, allowed to fetch from loopback addresses, with the
/// [`NEW_YEAR`] window and `env`.
fn source_poll(db: &crate::support::TestDb, env: &[(&str, &str)]) -> Run {
    let mut command = crate::support::cli::necmail(db);
    let (name, value) = ALLOW_LOOPBACK_FEEDS;
    command
        .env(name, value)
        .env(NEW_YEAR.0, NEW_YEAR.1)
        .envs(env.iter().copied());
    run_command(command.args(["source", "poll"]))
}

const NEC_TITLES: [&str; 3] = [
    "Labour NEC Report – January 2017",
    "Labour NEC Report – March 2017",
    "Report from April’s Emergency NEC meeting",
];

#[test]
fn rss_items_carry_their_guid_or_link_title_date_categories_and_full_html() {
    let items = parse_feed(&fixture("nec.rss"), None).unwrap();
    assert_eq!(items.len(), 5);
    let march = &items[3];
    assert_eq!(march.guid, "https://nec-rep.example.org/?p=112");
    assert_eq!(
        march.link.as_deref(),
        Some("https://nec-rep.example.org/2017/03/24/nec-report-march-2017/")
    );
    assert_eq!(
        march.title.as_deref(),
        Some("Labour NEC Report – March 2017")
    );
    assert_eq!(march.published, Some(at("2017-03-24T12:00:00Z")));
    assert_eq!(march.categories, ["NEC", "Party business"]);
    let html = march.html.as_deref().unwrap();
    assert!(
        html.starts_with("<p>The NEC met on Tuesday 21 March."),
        "{html}"
    );
    assert!(html.contains("<h2>Local Government Report</h2>"), "{html}");

    let emergency = &items[1];
    assert_eq!(
        emergency.guid, "https://nec-rep.example.org/2017/04/20/emergency-nec-meeting/",
        "an item without a guid is known by its link"
    );
    let in_nec: Vec<&str> = items
        .iter()
        .filter(|i| i.has_category("NEC"))
        .map(|i| i.name())
        .collect();
    assert_eq!(in_nec.len(), 3);
    assert!(in_nec.contains(&"Report from April’s Emergency NEC meeting"));
}

#[test]
fn atom_entries_carry_their_id_link_date_categories_and_content() {
    let items = parse_feed(&fixture("nec.atom"), None).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].guid, "tag:nec-rep.example.org,2017:post-151");
    assert_eq!(
        items[0].link.as_deref(),
        Some("https://nec-rep.example.org/2017/06/02/nec-report-may-2017/")
    );
    assert_eq!(
        items[0].title.as_deref(),
        Some("Labour NEC Report – May 2017")
    );
    assert_eq!(items[0].published, Some(at("2017-06-02T08:00:00Z")));
    assert!(
        items[0]
            .html
            .as_deref()
            .unwrap()
            .contains("<h2>Party Membership</h2>")
    );
    assert_eq!(
        items[1].published,
        Some(at("2017-05-15T19:00:00Z")),
        "else the date it was updated"
    );
    assert!(items[1].has_category("NEC"), "by its label, in any case");
    assert!(
        items[1]
            .html
            .as_deref()
            .unwrap()
            .starts_with("<p>The away day")
    );
}

#[tokio::test]
async fn a_50_mb_body_is_refused_while_it_streams_and_never_read_whole() {
    let server = FeedServer::start();
    for path in ["/fail/huge", "/fail/huge-declared"] {
        let before = server.huge_bytes_sent();
        let url = parse_url(&server.url(path)).unwrap();
        let err = fetcher()
            .fetch(&url, &Default::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::TooLarge {
                    limit: 1_000_000,
                    ..
                }
            ),
            "{path}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{url} is larger than the limit of 1000000 bytes (NECMAIL_FEED_MAX_BYTES)")
        );
        // What the server produced beyond the limit sat in the kernel's socket buffers.
        let sent = server.huge_bytes_sent() - before;
        assert!(
            sent < HUGE_BYTES / 2,
            "{path}: the server produced {sent} bytes: the body was read on"
        );
    }
}

#[tokio::test]
async fn a_fetch_follows_five_redirects_but_not_six() {
    let server = FeedServer::start();
    let five = parse_url(&server.url("/redirect/5")).unwrap();
    match fetcher().fetch(&five, &Default::default()).await.unwrap() {
        Fetched::Page(page) => {
            assert_eq!(page.url.path(), "/redirect/0");
            assert_eq!(page.body, fixture("nec.rss"));
        }
        Fetched::NotModified => panic!("a plain GET was answered 304"),
    }
    let six = parse_url(&server.url("/redirect/6")).unwrap();
    let err = fetcher()
        .fetch(&six, &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { .. }),
        "{err:?}"
    );
    assert!(err.is_bad_input());
}

#[tokio::test]
async fn a_server_that_is_not_listening_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = parse_url(&format!("http://{}/feed/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let err = fetcher()
        .fetch(&url, &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot fetch {url}: ")),
        "{err}"
    );
    assert!(!err.is_bad_input());
}

on_both_backends! {
    async fn polling_imports_only_the_categorys_items_and_polling_again_is_answered_304(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let url = server.url("/honours-validators/nec.rss");
        let source = add_source(&*store, &url, Some("NEC")).await;

        let first = poll(&*store, &fetcher(), source.id).await;
        let imported = items(&first);
        assert_eq!(titles(imported), NEC_TITLES, "oldest first");
        assert_eq!(imported.skipped_by_category, 2);
        assert!(imported.duplicates.is_empty() && imported.failed.is_empty());
        assert_eq!(first.source.lists, [ListSlug::parse("members").unwrap()]);

        let emergency = &imported.new[2];
        let link = "https://nec-rep.example.org/2017/04/20/emergency-nec-meeting/";
        assert_eq!(
            emergency.source,
            ReportSource::Feed { feed_url: url.clone(), guid: link.into(), link: Some(link.into()) }
        );
        assert_eq!(emergency.published_at, at("2017-04-20T21:40:00Z"));
        let march = &imported.new[1];
        assert_eq!(
            march.source,
            ReportSource::Feed {
                feed_url: url.clone(),
                guid: "https://nec-rep.example.org/?p=112".into(),
                link: Some("https://nec-rep.example.org/2017/03/24/nec-report-march-2017/".into()),
            }
        );
        let headings: Vec<String> = march.sections().sections.into_iter().map(|s| s.heading).collect();
        assert_eq!(
            headings,
            ["Leader’s Report", "Deputy Leader’s Report", "General Secretary’s Report", "Local Government Report",
             "National Policy Forum Update"]
        );
        assert!(march.body_markdown.contains("7million"), "{}", march.body_markdown);

        let after_first = stored(&*store, source.id).await;
        assert_eq!(after_first.etag.as_deref(), Some(ETAG));
        assert_eq!(after_first.last_modified.as_deref(), Some(LAST_MODIFIED));
        assert!(after_first.last_checked_at.is_some());
        assert_eq!(after_first.last_error, None);

        let second = poll(&*store, &fetcher(), source.id).await;
        assert!(matches!(second.outcome, PollOutcome::NotModified), "{:?}", second.outcome);
        let hits = server.hits("/honours-validators/nec.rss");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].header("if-none-match"), None);
        assert_eq!(hits[0].status, 200);
        assert_eq!(hits[1].header("if-none-match"), Some(ETAG));
        assert_eq!(hits[1].header("if-modified-since"), Some(LAST_MODIFIED));
        assert_eq!(hits[1].status, 304);
        assert_eq!(hits[1].header("user-agent"), Some("necmail-test"));
        assert_eq!(report_ids(&*store).await.len(), 3);
        let after_second = stored(&*store, source.id).await;
        assert_eq!(after_second.etag.as_deref(), Some(ETAG), "a 304 keeps the validators");
        assert!(after_second.last_checked_at >= after_first.last_checked_at);
    }

    async fn polling_a_server_that_ignores_validators_again_imports_nothing_new(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let source = add_source(&*store, &server.url("/ignores-validators/nec.rss"), Some("nec")).await;
        let first = poll(&*store, &fetcher(), source.id).await;
        assert_eq!(titles(items(&first)), NEC_TITLES);
        let before = report_ids(&*store).await;

        let second = poll(&*store, &fetcher(), source.id).await;
        let again = items(&second);
        assert!(again.new.is_empty(), "{:?}", titles(again));
        let mut duplicates: Vec<i64> = again.duplicates.iter().map(|r| r.id).collect();
        duplicates.sort();
        let mut stored_ids = before.clone();
        stored_ids.sort();
        assert_eq!(duplicates, stored_ids);
        assert_eq!(again.skipped_by_category, 2);
        let hits = server.hits("/ignores-validators/nec.rss");
        assert_eq!(hits[1].header("if-none-match"), Some(ETAG), "the validators were sent");
        assert_eq!(hits[1].status, 200, "and ignored");
        assert_eq!(report_ids(&*store).await, before);
    }

    async fn an_atom_feed_without_a_category_imports_every_entry(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let source = add_source(&*store, &server.url("/fixtures/nec.atom"), None).await;
        let polled = poll(&*store, &fetcher(), source.id).await;
        let imported = items(&polled);
        assert_eq!(titles(imported), ["NEC Away Day", "Labour NEC Report – May 2017"]);
        assert_eq!(imported.new[1].published_at, at("2017-06-02T08:00:00Z"));
        assert_eq!(imported.new[1].sections().sections.len(), 2);
        assert_eq!(imported.skipped_by_category, 0);
    }

    async fn each_failing_feed_is_recorded_on_its_own_source_and_the_others_still_import(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let good = add_source(&*store, &server.url("/fixtures/nec.rss"), Some("NEC")).await;
        let failing = ["/fail/500", "/fail/garbage", "/fail/huge", "/fail/slow"];
        for path in failing {
            add_source(&*store, &server.url(path), None).await;
        }
        let fetcher = fetcher();
        let polled = poll_all(&*store, &fetcher, &images(&fetcher)).await.unwrap();
        assert_eq!(polled.len(), 5);
        assert_eq!(polled[0].source.id, good.id);
        assert_eq!(titles(items(&polled[0])), NEC_TITLES);
        let expected = [
            format!("{} answered 500 Internal Server Error", server.url("/fail/500")),
            format!("{} answered, but it is not an RSS or Atom feed", server.url("/fail/garbage")),
            format!("{} is larger than the limit of 1000000 bytes", server.url("/fail/huge")),
            format!("{} did not answer in full within 1 s", server.url("/fail/slow")),
        ];
        let sources = store.sources().await.unwrap();
        for ((poll, source), expected) in polled[1..].iter().zip(&sources[1..]).zip(&expected) {
            let error = failure(poll);
            assert!(error.starts_with(expected.as_str()), "expected {expected:?}, got {error:?}");
            assert_eq!(source.last_error.as_deref(), Some(error), "recorded on its own source");
            assert!(source.last_checked_at.is_some());
        }
        assert_eq!(sources[0].last_error, None);
        assert_eq!(report_ids(&*store).await.len(), 3);
    }

    async fn a_feed_that_breaks_after_an_import_keeps_its_reports_and_recovers(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let source = add_source(&*store, &server.url("/flaky.rss"), Some("NEC")).await;
        assert_eq!(items(&poll(&*store, &fetcher(), source.id).await).new.len(), 3);
        let before = report_ids(&*store).await;

        for behaviour in [Behaviour::ServerError, Behaviour::Garbage, Behaviour::Huge, Behaviour::Slow] {
            server.set_flaky(behaviour);
            let polled = poll(&*store, &fetcher(), source.id).await;
            let error = failure(&polled).to_owned();
            assert_eq!(stored(&*store, source.id).await.last_error, Some(error), "{behaviour:?}");
            assert_eq!(report_ids(&*store).await, before, "{behaviour:?} lost a report");
        }

        server.set_flaky(Behaviour::Feed);
        let recovered = poll(&*store, &fetcher(), source.id).await;
        assert!(items(&recovered).new.is_empty());
        assert_eq!(items(&recovered).duplicates.len(), 3);
        assert_eq!(stored(&*store, source.id).await.last_error, None);
        assert_eq!(report_ids(&*store).await, before);
    }

    async fn an_item_that_cannot_be_imported_is_recorded_and_the_other_items_are_kept(db) {
        let server = FeedServer::start();
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let source = add_source(&*store, &server.url("/ignores-validators/broken-item.rss"), Some("NEC")).await;
        for round in 0..2 {
            let polled = poll(&*store, &fetcher(), source.id).await;
            let imported = items(&polled);
            assert_eq!(imported.new.len() + imported.duplicates.len(), 1, "round {round}");
            let failed: Vec<(&str, &str)> =
                imported.failed.iter().map(|f| (f.guid.as_str(), f.reason.as_str())).collect();
            assert_eq!(
                failed,
                [
                    ("https://nec-rep.example.org/?p=166", "the item has no content"),
                    ("https://nec-rep.example.org/?p=168", "the report has a title but no text"),
                ],
                "round {round}"
            );
            assert_eq!(imported.failed[0].title.as_deref(), Some("Labour NEC Report – June 2017 (draft)"));
            let error = stored(&*store, source.id).await.last_error.unwrap();
            assert_eq!(
                error,
                "2 of the feed's items could not be imported; the first, \
                 \"Labour NEC Report – June 2017 (draft)\": the item has no content"
            );
            assert_eq!(stored(&*store, source.id).await.etag, None, "so the next poll reads the feed again");
        }
        let reports = store.reports().await.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].title, "Labour NEC Report – July 2017");
    }

    async fn sources_are_added_listed_polled_and_removed_through_the_binary(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        let url = server.url("/honours-validators/nec.rss");
        let add = ["source", "add", &url, "--category", "NEC", "--list", "members", "--send-existing"];
        let added = run_allowing_loopback(db, &add).ok().to_owned();
        assert_eq!(
            added.lines().collect::<Vec<_>>(),
            [
                format!("added source 1 {url} (items in category NEC, for members)"),
                "recorded none of the feed's items as seen: the next poll imports all 3".to_owned(),
            ]
        );

        let listed = run(db, &["source", "ls", "--json"]).json();
        assert_eq!(listed[0]["id"], 1);
        assert_eq!(listed[0]["url"], url);
        assert_eq!(listed[0]["category"], "NEC");
        assert_eq!(listed[0]["lists"], serde_json::json!(["members"]));
        assert_eq!(listed[0]["last_checked_at"], serde_json::Value::Null);

        let polled = run_allowing_loopback(db, &["source", "poll"]).ok().to_owned();
        let lines: Vec<&str> = polled.lines().collect();
        assert_eq!(lines[0], format!("source 1 {url}: 3 new, 0 already stored, 2 not in category NEC, 0 failed"));
        assert_eq!(lines.len(), 7, "{polled}");
        let january = "  imported report 1 labour-nec-report-january-2017: Labour NEC Report – January 2017 (";
        assert!(lines[1].starts_with(january), "{polled}");
        assert!(lines[2].starts_with("    held: report 3 is newer"), "{polled}");
        assert!(lines[6].starts_with("    campaign 1 to members, scheduled for "), "{polled}");
        let again = run_allowing_loopback(db, &["source", "poll"]).ok().to_owned();
        assert_eq!(again.trim(), format!("source 1 {url}: not modified"));
        let hits = server.hits("/honours-validators/nec.rss");
        let agent = format!("necmail/{} (+http://127.0.0.1:8080/)", env!("CARGO_PKG_VERSION"));
        assert_eq!(hits.len(), 3, "adding, then polling twice");
        assert!(hits.iter().all(|hit| hit.header("user-agent") == Some(agent.as_str())));
        assert_eq!(hits[1].header("if-none-match"), None, "adding it stored no validators");
        assert_eq!(hits[2].status, 304);

        let text = run(db, &["source", "ls"]).ok().to_owned();
        assert!(text.starts_with("ID  URL"), "{text}");
        assert!(text.contains(&url), "{text}");
        let removed = run(db, &["source", "rm", "1"]).ok().to_owned();
        assert_eq!(removed.trim(), format!("removed source 1 {url}; its reports are kept"));
        assert_eq!(run(db, &["source", "ls", "--json"]).json(), serde_json::json!([]));
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 3);
    }

    async fn source_poll_reports_every_failing_feed_exits_0_and_keeps_what_was_imported(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        let flaky = server.url("/flaky.rss");
        let add = ["source", "add", &flaky, "--category", "nec", "--list", "members", "--send-existing"];
        run_allowing_loopback(db, &add).ok();
        // Feeds that broke after they were added.
        let store = db.store().await;
        for path in ["/fail/500", "/fail/garbage", "/fail/huge", "/fail/slow"] {
            add_source(&*store, &server.url(path), None).await;
        }
        let poll = || {
            let mut command = crate::support::cli::necmail(db);
            let (name, value) = ALLOW_LOOPBACK_FEEDS;
            run_command(command.env(name, value).env("NECMAIL_FEED_TIMEOUT_SECS", "1").args(["source", "poll"]))
        };
        let first = poll();
        assert!(first.ok().starts_with(&format!("source 1 {flaky}: 3 new,")), "{}", first.stdout);
        let reports = run(db, &["report", "ls", "--json"]).json();

        server.set_flaky(Behaviour::Garbage);
        let second = poll();
        let lines: Vec<&str> = second.ok().lines().collect();
        let expected = [
            format!("source 1 {flaky}: failed: {flaky} answered, but it is not an RSS or Atom feed"),
            format!("source 2 {0}: failed: {0} answered 500 Internal Server Error", server.url("/fail/500")),
            format!("source 3 {0}: failed: {0} answered, but it is not", server.url("/fail/garbage")),
            format!(
                "source 4 {0}: failed: {0} is larger than the limit of 5000000 bytes (NECMAIL_FEED_MAX_BYTES)",
                server.url("/fail/huge")
            ),
            format!(
                "source 5 {0}: failed: {0} did not answer in full within 1 s (NECMAIL_FEED_TIMEOUT_SECS)",
                server.url("/fail/slow")
            ),
        ];
        assert_eq!(lines.len(), expected.len(), "{}", second.stdout);
        for (line, expected) in lines.iter().zip(&expected) {
            assert!(line.starts_with(expected.as_str()), "expected {expected:?}, got {line:?}");
        }
        let listed = run(db, &["source", "ls", "--json"]).json();
        for (source, line) in listed.as_array().unwrap().iter().zip(&lines) {
            let error = source["last_error"].as_str().expect("a last error");
            assert!(line.ends_with(&format!("failed: {error}")), "{line:?} vs {error:?}");
        }
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), reports);
    }

    async fn bad_source_input_exits_2_and_changes_nothing(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        let feed = server.url("/fixtures/nec.rss");
        run_allowing_loopback(db, &["source", "add", &feed]).ok();
        let before = run(db, &["source", "ls", "--json"]).json();
        let other = "https://other.example.org/feed/";
        let garbage = server.url("/fail/garbage");
        let page = server.url("/fixtures/march-2017.md");
        let cases: [(&[&str], &str); 10] = [
            (&["source", "add", "ftp://nec-rep.example.org/feed/"], "is not an http:// or https:// URL"),
            (&["source", "add", "nec-rep.example.org/feed/"], "is not an http:// or https:// URL"),
            (&["source", "add", other, "--list", "nope"], "there is no list \"nope\""),
            (&["source", "add", &feed], "is already a source"),
            (&["source", "add", other, "--category", " "], "a category is"),
            (&["source", "add", other, "--since", "28/04/2017"], "is not a date like 2026-03-21"),
            (&["source", "add", other, "--since", "2017-04-28", "--send-existing"], "cannot be used with"),
            (&["source", "add", &garbage], "answered, but it is not an RSS or Atom feed"),
            (&["source", "add", &page], "answered, but it is not an RSS or Atom feed"),
            (&["source", "rm", "99"], "there is no source 99"),
        ];
        for (args, expected) in cases {
            let err = run_allowing_loopback(db, args).fails(2).to_owned();
            assert!(err.contains(expected), "{args:?}: expected {expected:?} in:\n{err}");
        }
        let loopback = run(db, &["source", "add", &server.url("/fixtures/nec.atom")]).fails(2).to_owned();
        assert!(loopback.contains("refused to connect to 127.0.0.1 (loopback)"), "{loopback}");
        assert_eq!(run(db, &["source", "ls", "--json"]).json(), before);
    }

    async fn a_feed_that_cannot_be_read_when_it_is_added_exits_1_and_adds_nothing(db) {
        let server = FeedServer::start();
        let url = server.url("/fail/500");
        let err = run_allowing_loopback(db, &["source", "add", &url]).fails(1).to_owned();
        let expected = format!(
            "error: {url} answered 500 Internal Server Error; the source is not added, \
             as the items it has now could not be recorded as seen"
        );
        assert_eq!(err.trim(), expected);
        assert_eq!(run(db, &["source", "ls", "--json"]).json(), serde_json::json!([]));
    }

    async fn adding_a_feed_records_its_ten_items_as_seen_so_polling_makes_no_campaign(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        publish(&server, 1..=10);
        let url = server.url("/live.rss");
        let added = run_allowing_loopback(db, &["source", "add", &url, "--list", "members"]).ok().to_owned();
        assert_eq!(
            added.lines().collect::<Vec<_>>(),
            [
                format!("added source 1 {url} (every item, for members)"),
                "recorded the feed's 10 items as seen: they will not be mailed".to_owned(),
            ]
        );

        let polled = source_poll(db, &[]).ok().to_owned();
        assert_eq!(polled.trim(), format!("source 1 {url}: 0 new, 0 already stored, 10 seen when added, 0 failed"));
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), serde_json::json!([]));
        assert_eq!(run(db, &["campaign", "ls", "--json"]).json(), serde_json::json!([]));

        publish(&server, 1..=11);
        let polled = source_poll(db, &[]).ok().to_owned();
        let first = format!("source 1 {url}: 1 new, 0 already stored, 10 seen when added, 0 failed\n");
        assert!(polled.starts_with(&first), "{polled}");
        let campaigns = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
        assert_eq!(campaigns[0]["report_title"], "NEC post 11");
        assert_eq!(campaigns[0]["state"], "scheduled");
    }

    async fn a_feed_added_with_send_existing_gets_one_campaign_for_its_newest_item_and_the_rest_held(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        publish(&server, 1..=10);
        let url = server.url("/live.rss");
        let add = ["source", "add", &url, "--list", "members", "--send-existing"];
        let added = run_allowing_loopback(db, &add).ok().to_owned();
        assert!(added.ends_with("recorded none of the feed's items as seen: the next poll imports all 10\n"), "{added}");

        let polled = source_poll(db, &[]).ok().to_owned();
        assert!(polled.starts_with(&format!("source 1 {url}: 10 new, 0 already stored, 0 failed\n")), "{polled}");
        assert_eq!(polled.matches("\n    held: report 10 is newer").count(), 9, "{polled}");
        let campaigns = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
        assert_eq!(campaigns[0]["report_title"], "NEC post 10");
        assert_eq!(campaigns[0]["lists"], serde_json::json!(["members"]));
        let reports = run(db, &["report", "ls", "--json"]).json();
        let unsent = reports.as_array().unwrap().iter().filter(|r| r["campaigns"] == 0).count();
        assert_eq!(unsent, 9, "{reports}");
    }

    async fn a_feed_added_with_since_a_date_treats_the_items_published_from_that_day_on_as_new(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        // Post 10 was published on 2 May 2017, post 6 on 28 April, post 5 on 27 April.
        publish(&server, 1..=10);
        let url = server.url("/live.rss");
        let add = ["source", "add", &url, "--list", "members", "--since", "2017-04-28"];
        let added = run_allowing_loopback(db, &add).ok().to_owned();
        let baseline = "recorded the feed's 5 items published before 2017-04-28 as seen; \
                        the next poll imports the 5 others\n";
        assert!(added.ends_with(baseline), "{added}");

        let polled = source_poll(db, &[]).ok().to_owned();
        let first = format!("source 1 {url}: 5 new, 0 already stored, 5 seen when added, 0 failed\n");
        assert!(polled.starts_with(&first), "{polled}");
        let reports = run(db, &["report", "ls", "--json"]).json();
        let mut titles: Vec<&str> = reports.as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
        titles.sort();
        assert_eq!(titles, ["NEC post 10", "NEC post 6", "NEC post 7", "NEC post 8", "NEC post 9"]);
        let campaigns = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
        assert_eq!(campaigns[0]["report_title"], "NEC post 10");
    }

    async fn a_poll_finding_three_new_items_makes_one_campaign_for_the_newest_and_holds_the_other_two(db) {
        let server = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        publish(&server, 1..=1);
        let url = server.url("/live.rss");
        run_allowing_loopback(db, &["source", "add", &url, "--list", "members"]).ok();

        publish(&server, 1..=4);
        let polled = source_poll(db, &[]).ok().to_owned();
        let lines: Vec<&str> = polled.lines().collect();
        let held = "    held: report 3 is newer, and a source gets one campaign per dispatch window";
        assert_eq!(
            lines[..6],
            [
                format!("source 1 {url}: 3 new, 0 already stored, 1 seen when added, 0 failed").as_str(),
                "  imported report 1 nec-post-2: NEC post 2 (0 sections)",
                held,
                "  imported report 2 nec-post-3: NEC post 3 (0 sections)",
                held,
                "  imported report 3 nec-post-4: NEC post 4 (0 sections)",
            ],
            "{polled}"
        );
        assert!(lines[6].starts_with("    campaign 1 to members, scheduled for "), "{polled}");
        assert!(lines[6].ends_with("-01-01 09:00"), "the next new year's window: {polled}");
        assert_eq!(lines.len(), 7, "{polled}");
        let campaigns = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
        assert_eq!(campaigns[0]["report_title"], "NEC post 4");
        let reports = run(db, &["report", "ls", "--json"]).json();
        let counts: Vec<(&str, Option<i64>)> = reports
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["slug"].as_str().unwrap(), r["campaigns"].as_i64()))
            .collect();
        assert_eq!(counts, [("nec-post-4", Some(1)), ("nec-post-3", Some(0)), ("nec-post-2", Some(0))]);

        // A later poll before that window holds its new item too.
        publish(&server, 1..=5);
        let later = source_poll(db, &[]).ok().to_owned();
        assert_eq!(
            later.lines().collect::<Vec<_>>(),
            [
                format!("source 1 {url}: 1 new, 3 already stored, 1 seen when added, 0 failed").as_str(),
                "  imported report 4 nec-post-5: NEC post 5 (0 sections)",
                "    held: campaign 1 already sends a report of this source in that dispatch window",
            ]
        );
        assert_eq!(run(db, &["campaign", "ls", "--json"]).json().as_array().unwrap().len(), 1);
    }

    async fn source_poll_makes_the_campaign_the_daemons_poll_tick_makes(db) {
        let feed = FeedServer::start();
        let daemons = db.another().await;
        publish(&feed, 1..=1);
        let url = feed.url("/live.rss");
        for db in [db, &daemons] {
            run(db, &["list", "create", "members", "--name", "Members"]).ok();
            run_allowing_loopback(db, &["source", "add", &url, "--list", "members"]).ok();
        }
        publish(&feed, 1..=4);
        let hold = ("NECMAIL_AUTO_DISPATCH", "hold");

        let polled = source_poll(db, &[hold]).ok().to_owned();
        assert!(polled.contains("\n    campaign 1 to members, held until `necmail campaign approve 1`"), "{polled}");
        let daemon = Daemon::start(&daemons, &[
            (ALLOW_LOOPBACK_FEEDS.0, ALLOW_LOOPBACK_FEEDS.1.into()),
            (NEW_YEAR.0, NEW_YEAR.1.into()),
            (hold.0, hold.1.into()),
            ("NECMAIL_POLL_SCHEDULE", "* * * * * *".into()),
        ]).await;
        let by_daemon = campaigns_when(&daemons, |campaigns| !campaigns.is_empty()).await;
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(log.matches("a new report is held").count(), 2, "logged at warn:\n{log}");

        let by_cli = run(db, &["campaign", "ls", "--json"]).json();
        let by_cli = by_cli.as_array().unwrap();
        let made = |c: &serde_json::Value| {
            ["report_slug", "report_title", "lists", "filter", "subject", "state", "send_at"].map(|k| c[k].clone())
        };
        assert_eq!(by_cli.len(), 1, "{by_cli:?}");
        assert_eq!(by_daemon.len(), 1, "{by_daemon:?}");
        assert_eq!(made(&by_cli[0]), made(&by_daemon[0]));
        assert_eq!(by_cli[0]["report_title"], "NEC post 4");
        assert_eq!(by_cli[0]["state"], "held");
        daemons.finish().await;
    }
}
