//! The pages in a real browser: Debian's Chromium, driven through
//! chromedriver over WebDriver. It fills in and submits the subscribe form,
//! presses the confirm page's button, and uses the unsubscribe and
//! preferences pages — no JavaScript, just forms, as a person would.
//! It also lays out emails and the archive at a phone's 375 px and a
//! desktop's 800 px, and measures that nothing is wider than the screen.
//! The office signs in from its one-time link, pastes a report and sees its
//! preview, makes a campaign of it and watches the campaign finish; an
//! owner finds a subscriber and unsubscribes them, and uploads a CSV and
//! follows its import to the end (all three on both backends). A campaign's
//! recipients table fits a phone and a desktop whatever the addresses.
//! The tests need `chromium` and `chromedriver` on the PATH, so they are
//! `#[ignore]`d; `scripts/test` runs them when they are installed and counts
//! them as skipped otherwise.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use necmail::admin::{Actor, Role, add_account};
use necmail::feedback::{EventFilter, EventKind, EventSource};
use necmail::lists::{ListSlug, NewList, OptIn};
use necmail::reports::ReportRef;
use necmail::store::Store;
use necmail::subscribers::{
    Subscriber, SubscriberEmail, SubscriberFilter, SubscriberName, SubscriptionStatus,
    SuppressionReason,
};

use crate::campaigns::campaign;
use crate::lists::new_list;
use crate::support::app::{TestApp, spawn_app};
use crate::support::cli::run;
use crate::support::{TestDb, on_both_backends_needing};

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

/// An owner account made as `necmail admin add` makes it; its owner sets
/// the password from the one-time link and signs in to the admin at `admin`.
async fn owner_signs_in(client: &Client, store: &dyn Store, admin: &str) {
    let (_, token) = add_account(store, "owner@example.org", Role::Owner, &Actor::cli())
        .await
        .unwrap();
    let password = "a long enough password";
    client
        .goto(&format!("{admin}/admin/set-password/{token}"))
        .await
        .unwrap();
    type_into(client, "#password", password).await;
    type_into(client, "#again", password).await;
    click(
        client,
        Locator::XPath("//button[normalize-space()='Set the password']"),
    )
    .await;
    expect_heading(client, "Your password is set").await;
    client.goto(&format!("{admin}/admin/login")).await.unwrap();
    type_into(client, "#email", "owner@example.org").await;
    type_into(client, "#password", password).await;
    click(
        client,
        Locator::XPath("//button[normalize-space()='Sign in']"),
    )
    .await;
    expect_heading(client, "Dashboard").await;
}

/// Where a campaign's recipients table ends up: the page's width, the
/// viewport's, the table's scrolling box, and the long address's box.
const RECIPIENTS: &str = "
    const scroll = document.querySelector('#recipients ~ .scroll');
    const long = Array.from(document.querySelectorAll('table.recipients .clip'))
        .find((clip) => clip.title.length > 60);
    const cell = long.getBoundingClientRect();
    const last = document.querySelector('table.recipients tbody tr td:last-child')
        .getBoundingClientRect();
    return { view: document.documentElement.clientWidth,
             document: document.documentElement.scrollWidth,
             scroll: scroll.scrollWidth, box: scroll.clientWidth,
             text: long.textContent, title: long.title,
             clipped: long.scrollWidth > long.clientWidth,
             right: cell.right, last: last.right };
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: scripts/test runs it when they are installed"]
async fn a_campaigns_recipients_fit_a_phone_and_a_desktop_whatever_their_address_in_chromium() {
    let db = TestDb::sqlite();
    let (store, report) = crate::campaigns::world(&db, 2).await;
    let long = "a.very.long.address.of.someone.on.the.council@hackney-and-islington.example";
    let mut councillor = crate::lists::subscriber(long, &["members"], true);
    councillor.name = SubscriberName::parse("Someone on the council").unwrap();
    store.add_subscriber(&councillor).await.unwrap();
    let id = campaign(&*store, report, &["members"]).await;
    run(&db, &["campaign", "pause", &id.to_string()]).ok();
    let app = spawn_app(&db).await;
    let admin = app.admin.clone().expect("the admin's own listener");
    let (_driver, client) = browser().await;
    owner_signs_in(&client, &*store, &admin).await;

    for width in [375, 800, 1280] {
        viewport(&client, width).await;
        let page = format!("{admin}/admin/campaigns/{id}");
        client.goto(&page).await.unwrap();
        let m = client.execute(RECIPIENTS, Vec::new()).await.unwrap();
        let number = |key: &str| m[key].as_f64().unwrap();
        assert!(number("document") <= number("view"), "at {width} px: {m}");
        assert!(
            number("scroll") <= number("box"),
            "no sideways scroll at {width} px: {m}"
        );
        assert!(
            number("last") <= number("view"),
            "the last column shows at {width} px: {m}"
        );
        assert_eq!(
            (m["text"].as_str(), m["title"].as_str()),
            (Some(long), Some(long)),
            "{m}"
        );
        let clipped = m["clipped"].as_bool().unwrap();
        if width == 375 {
            assert!(
                !clipped && number("right") <= number("view"),
                "whole on a phone: {m}"
            );
        } else {
            assert!(
                clipped,
                "an ellipsis on a desktop, the whole address in its title: {m}"
            );
        }
    }
    client.close().await.unwrap();
}

/// The running application with a `members` list, its admin's address, and
/// a Chromium whose owner has signed in there.
async fn office(db: &TestDb) -> (TestApp, String, Driver, Client) {
    let app = spawn_app(db).await;
    app.store
        .create_list(&new_list("members", OptIn::Single))
        .await
        .unwrap();
    let admin = app.admin.clone().expect("the admin's own listener");
    let (driver, client) = browser().await;
    owner_signs_in(&client, &*app.store, &admin).await;
    (app, admin, driver, client)
}

/// Waits for the element `locator` finds, for up to `seconds`.
async fn wait_for(client: &Client, what: &str, locator: Locator<'_>, seconds: u64) {
    let found = client
        .wait()
        .at_most(Duration::from_secs(seconds))
        .for_element(locator)
        .await;
    if found.is_err() {
        let source = client.source().await.unwrap_or_default();
        panic!("{what} never came; the browser shows:\n{source}");
    }
}

on_both_backends_needing! {
    "needs chromium and chromedriver: scripts/test runs it when they are installed",
    "needs chromium, chromedriver and PostgreSQL: scripts/test runs it when all are here";

    // Step by step, as the office would: the one-time link, signing in,
    // pasting a report and seeing its preview, then making a campaign of it
    // and watching its page, which refreshes itself, until it is done.
    async fn the_office_signs_in_pastes_a_report_and_watches_its_campaign_finish_in_chromium(db) {
        let (_driver, client) = browser().await;
        let (store, _) = crate::campaigns::world(db, 3).await;
        let server = crate::support::smtp::SmtpServer::start().await;
        let app =
            crate::support::app::spawn_app_with(db, &[("NECMAIL_SMTP_URL", &server.url())]).await;
        let admin = app.admin.clone().expect("the admin's own listener");
        owner_signs_in(&client, &*store, &admin).await;

        client.goto(&format!("{admin}/admin/reports/new")).await.unwrap();
        let text = "# Report of the December NEC\n\n## Finance\n\nThe budget passed.\n";
        type_into(&client, "#text", text).await;
        click(&client, Locator::XPath("//button[normalize-space()='Import and preview']")).await;
        expect_heading(&client, "Report of the December NEC").await;
        client.find(Locator::Css("iframe.email")).await.unwrap();

        click(&client, Locator::LinkText("Send as a campaign…")).await;
        expect_heading(&client, "New campaign").await;
        click(&client, Locator::Css("input[name='list:members']")).await;
        click(&client, Locator::XPath("//button[normalize-space()='Create campaign']")).await;
        expect_heading(&client, "Report of the December NEC").await;
        let _daemon = crate::admin_campaigns::daemon(&store, &server);
        wait_for(&client, "the campaign's end", Locator::Css(".tag.state-done"), 30).await;
        let page = client.source().await.unwrap();
        assert!(page.contains("3 of 3 done (100%)"), "{page}");
        assert_eq!(server.messages().len(), 3);
        client.close().await.unwrap();
    }

    async fn an_owner_finds_a_subscriber_by_a_search_and_unsubscribes_them_in_chromium(db) {
        let (app, admin, _driver, client) = office(db).await;
        let people = [
            ("jo@example.org", "Jo Bloggs"),
            ("joanna@example.org", "Jo Anna"),
            ("sam@example.org", "Sam"),
        ];
        for (address, name) in people {
            let mut new = crate::lists::subscriber(address, &["members"], true);
            new.name = SubscriberName::parse(name).unwrap();
            app.store.add_subscriber(&new).await.unwrap();
        }

        client.goto(&format!("{admin}/admin/subscribers")).await.unwrap();
        type_into(&client, "#q", "Jo B").await;
        click(&client, Locator::XPath("//button[normalize-space()='Search']")).await;
        let searched = format!("{admin}/admin/subscribers?q=Jo+B&list=&status=&attr=");
        let arrived = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_url(&searched.parse().unwrap())
            .await;
        assert!(arrived.is_ok(), "at {:?}", client.current_url().await);
        let rows = client.find_all(Locator::Css("tbody td.wrap a")).await.unwrap();
        let mut found = Vec::new();
        for row in rows {
            found.push(row.text().await.unwrap());
        }
        assert_eq!(found, ["jo@example.org"], "by the start of the name");

        click(&client, Locator::LinkText("jo@example.org")).await;
        expect_heading(&client, "jo@example.org").await;
        click(&client, Locator::XPath("//button[normalize-space()='Unsubscribe from every list…']"))
            .await;
        expect_heading(&client, "Unsubscribe from every list?").await;
        let jo = subscriber(&app, "jo@example.org").await;
        assert_eq!(jo.lists[0].status, SubscriptionStatus::Confirmed, "not before confirming");
        click(&client, Locator::XPath("//button[normalize-space()='Unsubscribe from every list']"))
            .await;
        expect_heading(&client, "jo@example.org").await;
        let unsubscribed = Locator::XPath("//td[normalize-space()='unsubscribed']");
        wait_for(&client, "the list's new status", unsubscribed, 10).await;

        let jo = subscriber(&app, "jo@example.org").await;
        assert_eq!(jo.lists[0].status, SubscriptionStatus::Unsubscribed);
        assert_eq!(jo.suppression.unwrap().reason, SuppressionReason::Unsubscribed);
        let events = app.store.events(&EventFilter {
            email: Some(jo.email.clone()),
            kinds: vec![EventKind::Leave],
            limit: 10,
            ..EventFilter::default()
        }).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].source, EventSource::Admin);
        let others = subscriber(&app, "joanna@example.org").await;
        assert_eq!(others.lists[0].status, SubscriptionStatus::Confirmed, "only Jo");
        client.close().await.unwrap();
    }

    async fn an_owner_uploads_a_csv_and_its_page_follows_the_import_to_its_end_in_chromium(db) {
        let (app, admin, _driver, client) = office(db).await;
        let mut csv = String::from(
            "email,name,role\nann@example.org,Ann,councillor\nnot an address,Bob,member\n",
        );
        for i in 0..2000 {
            csv.push_str(&format!("person{i:04}@example.org,Person {i},member\n"));
        }
        let file = db.dir.path().join("people.csv");
        std::fs::write(&file, csv).unwrap();

        client.goto(&format!("{admin}/admin/subscribers/import")).await.unwrap();
        expect_heading(&client, "Import subscribers").await;
        click(&client, Locator::Css("input[name=list][value=members]")).await;
        click(&client, Locator::Css("input[name=confirmed]")).await;
        client
            .find(Locator::Css("#file"))
            .await
            .unwrap()
            .send_keys(file.to_str().unwrap())
            .await
            .unwrap();
        click(&client, Locator::XPath("//button[normalize-space()='Import']")).await;
        wait_for(
            &client,
            "the end of the import",
            Locator::XPath("//p[@role='status' and normalize-space()='The import is done.']"),
            60,
        )
        .await;
        let page = client.source().await.unwrap();
        assert!(page.contains("<dt>New</dt><dd>2001</dd>"), "{page}");
        assert!(page.contains("<dt>Rejected</dt><dd>1</dd>"), "{page}");

        let ann = subscriber(&app, "ann@example.org").await;
        assert_eq!(ann.attributes.get("role"), Some("councillor"));
        assert_eq!(ann.lists[0].status, SubscriptionStatus::Confirmed);
        subscriber(&app, "person1999@example.org").await;
        let everyone = app.store.subscribers(&SubscriberFilter::default(), 0, 5000).await.unwrap();
        assert_eq!(everyone.len(), 2001);

        // The rejects file, fetched from the page's link with the browser's session.
        let link = client
            .find(Locator::LinkText("Download the rejected rows (CSV)"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .expect("a link");
        let cookie = client.get_named_cookie("necmail_admin").await.unwrap();
        let rejects = app
            .client
            .get(format!("{admin}{link}"))
            .header("Cookie", format!("{}={}", cookie.name(), cookie.value()))
            .send()
            .await
            .unwrap();
        assert_eq!(rejects.status(), 200);
        let rejects = rejects.text().await.unwrap();
        assert!(rejects.starts_with("line,email,reason\n"), "{rejects}");
        assert!(rejects.contains("\n3,not an address,"), "{rejects}");
        assert_eq!(rejects.lines().count(), 2, "{rejects}");
        client.close().await.unwrap();
    }
}
