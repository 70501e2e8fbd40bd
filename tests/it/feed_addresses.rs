//! Server-side request forgery: with NECMAIL_FEED_ALLOW_PRIVATE off, no feed
//! URL, redirect or DNS answer makes necmail connect to an address that is
//! not globally routable. Every server here is on a loopback address, and
//! each test proves the refused server saw no connection at all.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use necmail::reports::feeds::{
    AddressPolicy, FetchError, Fetched, Fetcher, Refused, non_global_range, parse_url,
};

use crate::support::TestDb;
use crate::support::cli::{necmail, run, run_allowing_loopback, run_command};
use crate::support::http::{FeedServer, fixture};
use crate::support::on_both_backends;

const OTHER_LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn fetcher(addresses: AddressPolicy) -> Fetcher {
    Fetcher::new("necmail-test", Duration::from_secs(5), 1_000_000, addresses).unwrap()
}

/// Fetches `url` and returns the refusal it must end in.
#[track_caller]
fn refused(result: Result<Fetched, FetchError>, url: &str) -> Refused {
    match result {
        Err(FetchError::Refused {
            url: failed,
            refused,
        }) => {
            assert_eq!(failed.as_str(), parse_url(url).unwrap().as_str());
            *refused
        }
        Err(other) => panic!("{url}: expected a refusal, got {other:?}"),
        Ok(_) => panic!("{url}: expected a refusal, got a page"),
    }
}

#[tokio::test]
async fn a_feed_on_127_0_0_1_is_refused_before_any_connection_is_made() {
    let server = FeedServer::start();
    let url = server.url("/fixtures/nec.rss");
    let result = fetcher(AddressPolicy::GlobalOnly)
        .fetch(&parse_url(&url).unwrap(), &Default::default())
        .await;
    let err = result.unwrap_err();
    assert!(err.is_bad_input());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot fetch {url}: refused to connect to 127.0.0.1 (loopback): \
             NECMAIL_FEED_ALLOW_PRIVATE is off"
        )
    );
    assert_eq!(server.connections(), 0);
    assert!(server.all_hits().is_empty());

    // The server answers whoever is allowed to ask.
    let allowed = fetcher(AddressPolicy::Any)
        .fetch(&parse_url(&url).unwrap(), &Default::default())
        .await;
    assert!(matches!(allowed, Ok(Fetched::Page(_))), "{allowed:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_host_name_that_resolves_to_loopback_is_refused_after_dns() {
    let server = FeedServer::start();
    let port = server.port();
    let url = format!("http://localhost:{port}/fixtures/nec.rss");
    let result = fetcher(AddressPolicy::GlobalOnly)
        .fetch(&parse_url(&url).unwrap(), &Default::default())
        .await;
    let refusal = refused(result, &url);
    assert_eq!(refusal.host.as_deref(), Some("localhost"));
    assert!(refusal.ip.is_loopback(), "{refusal:?}");
    assert_eq!(refusal.range, Some("loopback"));
    assert!(
        refusal
            .to_string()
            .starts_with("refused to connect to localhost at "),
        "{refusal}"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn every_spelling_of_a_loopback_address_is_refused() {
    let server = FeedServer::start();
    let port = server.port();
    for host in [
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "0.0.0.0",
        "0",
    ] {
        let url = format!("http://{host}:{port}/fixtures/nec.rss");
        let result = fetcher(AddressPolicy::GlobalOnly)
            .fetch(&parse_url(&url).unwrap(), &Default::default())
            .await;
        let refusal = refused(result, &url);
        assert_eq!(refusal.host, None, "{url}");
        assert!(refusal.range.is_some(), "{url}: {refusal:?}");
    }
    assert_eq!(server.connections(), 0);
}

/// A redirect from a server on 127.0.0.2 to `target` on 127.0.0.1.
fn redirect_to(from: &FeedServer, target: &str) -> String {
    let target: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    from.url(&format!("/redirect-to?url={target}"))
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_not_followed_by_name_or_by_literal() {
    // Only 127.0.0.2 is allowed, so the first hop is fetched and 127.0.0.1
    // stands in for a private address.
    let only_127_0_0_2 = AddressPolicy::Only(Arc::new(|ip| ip == OTHER_LOOPBACK));
    let first = FeedServer::start_on(OTHER_LOOPBACK);
    let target = FeedServer::start();
    let port = target.port();
    let targets = [
        (format!("http://127.0.0.1:{port}/fixtures/nec.rss"), None),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/fixtures/nec.rss"),
            None,
        ),
        (format!("http://2130706433:{port}/fixtures/nec.rss"), None),
        (
            format!("http://localhost:{port}/fixtures/nec.rss"),
            Some("localhost"),
        ),
    ];
    for (hop, host) in &targets {
        let url = redirect_to(&first, hop);
        let result = fetcher(only_127_0_0_2.clone())
            .fetch(&parse_url(&url).unwrap(), &Default::default())
            .await;
        let refusal = refused(result, &url);
        assert_eq!(refusal.host.as_deref(), *host, "{hop}");
        assert_eq!(refusal.range, Some("loopback"), "{hop}: {refusal:?}");
    }
    assert_eq!(first.hits("/redirect-to").len(), targets.len());
    assert_eq!(target.connections(), 0, "{:?}", target.all_hits());

    // Through a chain of redirects on the allowed server, the last hop is
    // still checked.
    let chain = first.url("/redirect/2");
    let page = fetcher(only_127_0_0_2.clone())
        .fetch(&parse_url(&chain).unwrap(), &Default::default())
        .await;
    assert!(matches!(page, Ok(Fetched::Page(_))), "{page:?}");

    // When 127.0.0.1 is allowed too, the same redirects reach the target.
    let any_loopback = AddressPolicy::Only(Arc::new(|ip| non_global_range(ip) == Some("loopback")));
    for (hop, _) in &targets {
        let url = redirect_to(&first, hop);
        match fetcher(any_loopback.clone())
            .fetch(&parse_url(&url).unwrap(), &Default::default())
            .await
        {
            Ok(Fetched::Page(page)) => assert_eq!(page.body, fixture("nec.rss"), "{hop}"),
            other => panic!("{hop}: {other:?}"),
        }
    }
    assert_eq!(
        target.hits("/fixtures/nec.rss").len(),
        targets.len(),
        "{:?}",
        target.all_hits()
    );
}

on_both_backends! {
    async fn a_source_on_a_loopback_address_is_refused_and_the_refusal_is_recorded_on_it(db) {
        let server = FeedServer::start();
        let url = server.url("/fixtures/nec.rss");
        run(db, &["list", "create", "members", "--name", "Members"]).ok();
        let error = format!(
            "cannot fetch {url}: refused to connect to 127.0.0.1 (loopback): NECMAIL_FEED_ALLOW_PRIVATE is off"
        );
        let add = ["source", "add", &url, "--list", "members", "--send-existing"];
        let refused = run(db, &add).fails(2).to_owned();
        assert!(refused.contains(&error), "{refused}");
        assert_eq!(run(db, &["source", "ls", "--json"]).json(), serde_json::json!([]));
        assert_eq!(server.connections(), 0);
        run_allowing_loopback(db, &add).ok();
        let connections = server.connections();

        let polled = run(db, &["source", "poll"]).ok().to_owned();
        assert_eq!(polled.trim(), format!("source 1 {url}: failed: {error}"));
        let listed = run(db, &["source", "ls", "--json"]).json();
        assert_eq!(listed[0]["last_error"], error.as_str(), "{listed}");
        let table = run(db, &["source", "ls"]).ok().to_owned();
        assert!(table.contains("refused to connect to 127.0.0.1 (loopback)"), "{table}");
        assert_eq!(server.connections(), connections);
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), serde_json::json!([]));

        let imported = run(db, &["report", "import", &url]).fails(2).to_owned();
        assert!(imported.contains(&error), "{imported}");
        assert_eq!(server.connections(), connections);
        assert_eq!(run(db, &["report", "ls", "--json"]).json(), serde_json::json!([]));

        // NECMAIL_FEED_ALLOW_PRIVATE=true lets the same source through.
        let allowed = run_allowing_loopback(db, &["source", "poll"]).ok().to_owned();
        assert!(allowed.starts_with(&format!("source 1 {url}: 5 new,")), "{allowed}");
        let listed = run(db, &["source", "ls", "--json"]).json();
        assert_eq!(listed[0]["last_error"], serde_json::Value::Null, "{listed}");
    }
}

#[tokio::test]
async fn a_proxy_named_in_the_environment_is_not_a_way_round_the_policy() {
    let db = TestDb::sqlite();
    let feed = FeedServer::start();
    let proxy = FeedServer::start();
    let url = format!("http://localhost:{}/fixtures/nec.rss", feed.port());
    let mut command = necmail(&db);
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        command.env(name, proxy.url(""));
    }
    command.env_remove("NO_PROXY").env_remove("no_proxy");
    let err = run_command(command.args(["report", "import", &url]))
        .fails(2)
        .to_owned();
    assert!(err.contains("refused to connect to localhost at "), "{err}");
    assert_eq!(proxy.connections(), 0, "{:?}", proxy.all_hits());
    assert_eq!(feed.connections(), 0);
}
