//! The pages in a real browser: Debian's Chromium, driven through
//! chromedriver over WebDriver. It fills in and submits the subscribe form,
//! presses the confirm page's button, and uses the unsubscribe and
//! preferences pages — no JavaScript, just forms, as a person would.
//! The test needs `chromium` and `chromedriver` on the PATH, so it is
//! `#[ignore]`d; `scripts/test` runs it when they are installed and counts
//! it as skipped otherwise.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use necmail::lists::{ListSlug, NewList, OptIn};
use necmail::subscribers::{Subscriber, SubscriberEmail, SubscriptionStatus};

use crate::support::TestDb;
use crate::support::app::{TestApp, spawn_app};

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver and a headless Chromium session.
async fn browser() -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)"),
    );
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=400,900"],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cannot start a Chromium session: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits for the page (perhaps still loading after a button press) whose
/// heading is `text`.
async fn expect_heading(client: &Client, text: &str) {
    let found = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("//h1[normalize-space()='{text}']")))
        .await;
    if found.is_err() {
        let source = client.source().await.unwrap_or_default();
        panic!("no page headed {text:?}; the browser shows:\n{source}");
    }
}

/// Presses the element `locator` finds.
async fn click(client: &Client, locator: Locator<'_>) {
    client.find(locator).await.unwrap().click().await.unwrap();
}

/// Types `text` into the field `css` selects.
async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// The stored subscriber `email`.
async fn subscriber(app: &TestApp, email: &str) -> Subscriber {
    app.store
        .subscriber(&SubscriberEmail::parse(email).unwrap())
        .await
        .unwrap()
}

/// Each list of `email` (in slug order) with its status.
async fn status(app: &TestApp, email: &str) -> Vec<(String, SubscriptionStatus)> {
    subscriber(app, email)
        .await
        .lists
        .into_iter()
        .map(|m| (m.slug.as_str().to_owned(), m.status))
        .collect()
}

async fn journey(app: &TestApp, client: &Client) {
    // Subscribe: type into the form and press its button.
    client.goto(&app.url("/subscribe")).await.unwrap();
    type_into(client, "#email", "ann@example.org").await;
    type_into(client, "#name", "Ann Smith").await;
    for choice in ["#list-members", "#list-councillors", "#role-councillor"] {
        click(client, Locator::Css(choice)).await;
    }
    click(client, Locator::Css("form button[type=submit]")).await;
    expect_heading(client, "Check your inbox").await;
    assert_eq!(
        status(app, "ann@example.org").await,
        [
            ("councillors".to_owned(), SubscriptionStatus::Unconfirmed),
            ("members".to_owned(), SubscriptionStatus::Unconfirmed)
        ]
    );

    // Confirm: the emailed link opens a page whose one button confirms.
    let confirm = app.confirmation_link().await;
    client.goto(&app.url(&confirm)).await.unwrap();
    expect_heading(client, "Confirm your subscription").await;
    assert_eq!(
        status(app, "ann@example.org").await[0].1,
        SubscriptionStatus::Unconfirmed,
        "opening the link changes nothing"
    );
    click(client, Locator::Css("form button[type=submit]")).await;
    expect_heading(client, "You are subscribed").await;
    assert!(
        status(app, "ann@example.org")
            .await
            .iter()
            .all(|(_, s)| *s == SubscriptionStatus::Confirmed)
    );

    // Unsubscribe from one list with the page's first button.
    let ann = subscriber(app, "ann@example.org").await;
    let members = app
        .store
        .list(&ListSlug::parse("members").unwrap())
        .await
        .unwrap();
    client
        .goto(&app.url(&app.unsubscribe_path(ann.id, members.id)))
        .await
        .unwrap();
    expect_heading(client, "Unsubscribe").await;
    click(client, Locator::Css("button[value=list]")).await;
    expect_heading(client, "You have unsubscribed").await;
    assert_eq!(
        status(app, "ann@example.org").await,
        [
            ("councillors".to_owned(), SubscriptionStatus::Confirmed),
            ("members".to_owned(), SubscriptionStatus::Unsubscribed)
        ]
    );

    // Preferences, reached from the done page's link: rename, rejoin members.
    click(client, Locator::LinkText("manage your other subscriptions")).await;
    expect_heading(client, "Your preferences").await;
    let name = client.find(Locator::Css("#name")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("Ann Jones").await.unwrap();
    click(client, Locator::Css("#list-members")).await;
    click(client, Locator::XPath("//button[text()='Save']")).await;
    let saved = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[role=status]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(saved, "Your changes are saved.");
    let ann = subscriber(app, "ann@example.org").await;
    assert_eq!(ann.name.as_deref(), Some("Ann Jones"));
    assert!(
        ann.lists
            .iter()
            .all(|m| m.status == SubscriptionStatus::Confirmed)
    );
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver: scripts/test runs it when they are installed"]
async fn a_person_subscribes_confirms_unsubscribes_and_changes_preferences_in_chromium() {
    let (_driver, client) = browser().await;
    let db = TestDb::sqlite();
    let app = spawn_app(&db).await;
    for (slug, name) in [("members", "Party members"), ("councillors", "Councillors")] {
        app.store
            .create_list(&NewList {
                slug: ListSlug::parse(slug).unwrap(),
                name: name.into(),
                description: String::new(),
                opt_in: OptIn::Double,
                public: true,
            })
            .await
            .unwrap();
    }
    journey(&app, &client).await;
    client.close().await.unwrap();
}
