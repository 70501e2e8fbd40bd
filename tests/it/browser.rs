//! The pages in a real browser: Debian's Chromium, driven through
//! chromedriver over WebDriver. It fills in and submits the subscribe form,
//! presses the confirm page's button, and uses the unsubscribe and
//! preferences pages — no JavaScript, just forms, as a person would.
//! It also lays out emails and the archive at a phone's 375 px and a
//! desktop's 800 px, and measures that nothing is wider than the screen.
//! The office signs in from its one-time link, pastes a report and sees its
//! preview, makes a campaign of it and watches the campaign finish.
//! The test needs `chromium` and `chromedriver` on the PATH, so it is
//! `#[ignore]`d; `scripts/test` runs it when they are installed and counts
//! it as skipped otherwise.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use necmail::lists::{ListSlug, NewList, OptIn};
use necmail::reports::ReportRef;
use necmail::subscribers::{Subscriber, SubscriberEmail, SubscriptionStatus};

use crate::campaigns::campaign;
use crate::support::TestDb;
use crate::support::app::{TestApp, spawn_app};
use crate::support::cli::run;

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

/// How wide the window is, how wide the page at the browser's current
/// address is laid out and how wide it may be (the window less a scroll
/// bar), and where each of its images ends up.
const MEASURE: &str = "
    const view = document.documentElement.clientWidth;
    const images = Array.from(document.images).map((img) => {
        const box = img.getBoundingClientRect();
        return { src: img.src.slice(0, 40), loaded: img.complete && img.naturalWidth > 0,
                 left: box.left, right: box.right };
    });
    return { window: window.innerWidth, view, document: document.documentElement.scrollWidth,
             images };
";

/// Lays out the window at `width` CSS pixels: the window's outer size is
/// adjusted until the page's viewport is that wide.
async fn viewport(client: &Client, width: u32) {
    client.set_window_size(width, 900).await.unwrap();
    let inner = client
        .execute("return window.innerWidth;", Vec::new())
        .await
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    if inner != width {
        client
            .set_window_size(2 * width - inner, 900)
            .await
            .unwrap();
    }
}

/// Opens `url` at 375 and 800 px and asserts that the document is no wider
/// than the viewport and that every image has loaded and fits in it.
async fn fits(client: &Client, what: &str, url: &str, images: usize) {
    for width in [375, 800] {
        viewport(client, width).await;
        client.goto(url).await.unwrap();
        let m = client.execute(MEASURE, Vec::new()).await.unwrap();
        assert_eq!(m["window"], width, "{what}: {m}");
        let view = m["view"].as_f64().unwrap();
        assert!(
            m["document"].as_f64().unwrap() <= view,
            "{what} at {width} px is wider than the viewport: {m}"
        );
        let found = m["images"].as_array().unwrap();
        assert_eq!(found.len(), images, "{what}: {m}");
        for image in found {
            assert_eq!(image["loaded"], true, "{what} at {width} px: {image}");
            assert!(
                image["left"].as_f64().unwrap() >= 0.0 && image["right"].as_f64().unwrap() <= view,
                "{what} at {width} px: an image does not fit: {image}"
            );
        }
    }
}

/// The HTML part of an email (decoded), written to a file the browser opens.
fn html_file(dir: &std::path::Path, name: &str, email: &str) -> String {
    let start = email.find("<!DOCTYPE html>").expect("an HTML part");
    let end = email[start..].find("</html>").expect("a whole HTML part") + start;
    let path = dir.join(name);
    std::fs::write(&path, &email[start..end + "</html>".len()]).unwrap();
    format!("file://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: scripts/test runs it when they are installed"]
async fn emails_and_the_archive_fit_a_phone_and_a_desktop_in_chromium() {
    let db = TestDb::sqlite();
    let fixture = format!(
        "{}/tests/fixtures/reports/wide-content.md",
        env!("CARGO_MANIFEST_DIR")
    );
    let preview = db.dir.path().join("preview");
    for args in [
        &["list", "create", "members", "--name", "Party members"][..],
        &[
            "subscriber",
            "add",
            "jo@example.org",
            "--name",
            "Jo Bloggs",
            "--list",
            "members",
            "--attr",
            "role=councillor",
            "--confirmed",
        ],
        &["report", "import", &fixture],
        &[
            "report",
            "preview",
            "1",
            "--as",
            "jo@example.org",
            "--out",
            preview.to_str().unwrap(),
        ],
    ] {
        run(&db, args).ok();
    }
    let app = spawn_app(&db).await;
    campaign(&*app.store, 1, &["members"]).await;
    let slug = app.store.report(&ReportRef::Id(1)).await.unwrap().slug;
    assert_eq!(
        app.subscribe("sam@example.org", &["members"])
            .await
            .status(),
        200
    );
    let confirmation = app.wait_for_emails(1).await.remove(0);

    let (_driver, client) = browser().await;
    let email = std::fs::read_to_string(preview.join("preview.html")).unwrap();
    let email = html_file(db.dir.path(), "email.html", &email);
    fits(&client, "the report's email", &email, 1).await;
    fits(
        &client,
        "its web version",
        &app.url(&format!("/archive/{slug}")),
        1,
    )
    .await;
    fits(&client, "the archive", &app.url("/archive"), 0).await;
    let confirmation = html_file(db.dir.path(), "confirm.html", &confirmation);
    fits(&client, "the confirmation email", &confirmation, 0).await;
    client.close().await.unwrap();
}

/// Step by step, as the office would: the one-time link, signing in,
/// pasting a report and seeing its preview, then making a campaign of it and
/// watching its page, which refreshes itself, until it is done.
#[tokio::test]
#[ignore = "needs chromium and chromedriver: scripts/test runs it when they are installed"]
async fn the_office_signs_in_pastes_a_report_and_watches_its_campaign_finish_in_chromium() {
    let (_driver, client) = browser().await;
    let db = TestDb::sqlite();
    let (store, _) = crate::campaigns::world(&db, 3).await;
    let server = crate::support::smtp::SmtpServer::start().await;
    let app =
        crate::support::app::spawn_app_with(&db, &[("NECMAIL_SMTP_URL", &server.url())]).await;
    let admin = app.admin.clone().expect("the admin's own listener");
    let (_, token) = necmail::admin::add_account(
        &*store,
        "owner@example.org",
        necmail::admin::Role::Owner,
        &necmail::admin::Actor::cli(),
    )
    .await
    .unwrap();
    let password = "a long enough password";

    client
        .goto(&format!("{admin}/admin/set-password/{token}"))
        .await
        .unwrap();
    type_into(&client, "#password", password).await;
    type_into(&client, "#again", password).await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Set the password']"),
    )
    .await;
    expect_heading(&client, "Your password is set").await;
    client.goto(&format!("{admin}/admin/login")).await.unwrap();
    type_into(&client, "#email", "owner@example.org").await;
    type_into(&client, "#password", password).await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Sign in']"),
    )
    .await;
    expect_heading(&client, "Dashboard").await;

    client
        .goto(&format!("{admin}/admin/reports/new"))
        .await
        .unwrap();
    let text = "# Report of the December NEC\n\n## Finance\n\nThe budget passed.\n";
    type_into(&client, "#text", text).await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Import and preview']"),
    )
    .await;
    expect_heading(&client, "Report of the December NEC").await;
    client.find(Locator::Css("iframe.email")).await.unwrap();

    click(&client, Locator::LinkText("Send as a campaign…")).await;
    expect_heading(&client, "New campaign").await;
    click(&client, Locator::Css("input[name='list:members']")).await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Create campaign']"),
    )
    .await;
    expect_heading(&client, "Report of the December NEC").await;
    let _daemon = crate::admin_campaigns::daemon(&store, &server);
    let done = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".tag.state-done"))
        .await;
    if done.is_err() {
        let source = client.source().await.unwrap_or_default();
        panic!("the campaign did not finish; the browser shows:\n{source}");
    }
    let page = client.source().await.unwrap();
    assert!(page.contains("3 of 3 done (100%)"), "{page}");
    assert_eq!(server.messages().len(), 3);
    client.close().await.unwrap();
}
