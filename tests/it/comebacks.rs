//! People who left and come back, and people who never confirmed, through
//! the real binary and the web pages, on both backends: someone who left
//! everything signs up again, or asks the admin; `subscriber show` shows
//! suppressions; an import says who gets nothing until they confirm, and
//! `list confirm-pending` asks them within the limits; a campaign with
//! nobody to send to is refused by the command line and paused by the
//! daemon, and never appears in the archive as sent.

use necmail::lists::ListSlug;
use necmail::subscribers::SubscriberEmail;

use crate::serve::{Daemon, WAIT, campaigns_done, decoded, hidden_fields, link_path, reports_to};
use crate::support::app::{spawn_app, spawn_app_with};
use crate::support::cli::{necmail, necmail_at, run, run_command, run_with_stdin};
use crate::support::http::fixture_path;
use crate::support::smtp::SmtpServer;
use crate::support::{TestDb, http_client, on_both_backends};

/// Records a suppression of `address` for `reason`, as the bounce and
/// complaint handling would.
async fn suppress(db: &TestDb, address: &str, reason: &str) {
    let hash = SubscriberEmail::parse(address).unwrap().suppression_hash();
    db.execute(&format!(
        "INSERT INTO suppressions (email_hash, reason, created_at) \
         VALUES ('{hash}', '{reason}', '2026-01-02T03:04:05Z')"
    ))
    .await;
}

/// Imports `addresses` into `members` without --confirmed; returns what it printed.
fn import_unconfirmed(db: &TestDb, addresses: &[&str]) -> String {
    let csv: String = std::iter::once("email")
        .chain(addresses.iter().copied())
        .map(|line| format!("{line}\n"))
        .collect();
    run_with_stdin(
        db,
        &["subscriber", "import", "-", "--list", "members"],
        csv.as_bytes(),
    )
    .ok()
    .to_owned()
}

/// The fixture report, imported as report 1, and a campaign of it to
/// `members` made with `extra` arguments; returns the campaign's id.
fn campaign_to_members(db: &TestDb, extra: &[&str]) -> String {
    run(db, &["report", "import", &fixture_path("march-2017.md")]).ok();
    let create = [
        "campaign", "create", "--report", "1", "--list", "members", "--json",
    ];
    run(db, &[&create[..], extra].concat()).json()[0]["id"].to_string()
}

/// Campaign `id` as `campaign status --json` shows it, once it is neither
/// scheduled nor sending.
async fn settled(db: &TestDb, id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (url, dir, id_arg) = (db.url.clone(), db.dir.path().to_owned(), id.to_owned());
        let status = tokio::task::spawn_blocking(move || {
            run_command(necmail_at(&url, &dir).args(["campaign", "status", &id_arg, "--json"]))
                .json()
        })
        .await
        .unwrap();
        let campaign = status[0]["campaign"].clone();
        if campaign["state"] != "scheduled" && campaign["state"] != "sending" {
            return campaign;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign {id} stays {campaign}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

on_both_backends! {
    async fn someone_who_left_everything_signs_up_again_and_confirming_brings_them_back(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run(db, &["list", "create", "news", "--name", "Quick news", "--single-opt-in"]).ok();
        run(db, &["subscriber", "add", "ann@example.org", "--list", "members", "--list", "news", "--confirmed"]).ok();
        suppress(db, "bo@example.org", "hard-bounce").await;
        let mut app = spawn_app(db).await;
        let ann = SubscriberEmail::parse("ann@example.org").unwrap();
        let path = app.preferences_path(app.store.subscriber(&ann).await.unwrap().id);
        let csrf = app.csrf(&path).await;
        assert_eq!(app.post_form(&format!("{path}/leave"), &[("csrf", &csrf)]).await.status(), 200);
        let left = run(db, &["subscriber", "show", "ann@example.org", "--json"]).json();
        assert_eq!(left[0]["suppression"]["reason"], "unsubscribed", "{left}");
        assert!(left[0]["suppression"]["at"].is_string(), "{left}");

        let page = app.subscribe("ann@example.org", &["members", "news"]).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Check your inbox"));
        let link = app.confirmation_link().await;
        let waiting = run(db, &["subscriber", "show", "ann@example.org", "--json"]).json();
        for list in [0, 1] {
            assert_eq!(waiting[0]["lists"][list]["status"], "unconfirmed", "even news: {waiting}");
        }
        assert_eq!(waiting[0]["suppression"]["reason"], "unsubscribed", "until they confirm");

        let csrf = app.csrf(&link).await;
        assert_eq!(app.post_form(&link, &[("csrf", &csrf)]).await.status(), 200);
        let back = run(db, &["subscriber", "show", "ann@example.org", "--json"]).json();
        for list in [0, 1] {
            let membership = &back[0]["lists"][list];
            assert_eq!(membership["status"], "confirmed", "{back}");
            assert_eq!(membership["consent"]["method"], "form", "the new consent: {back}");
            assert_eq!(membership["consent"]["ip"], "127.0.0.1");
            assert!(membership["unsubscribed_at"].is_null(), "{back}");
        }
        assert!(back[0]["suppression"].is_null(), "{back}");
        let shown = run(db, &["subscriber", "show", "ann@example.org"]).ok().to_owned();
        assert!(shown.contains("suppressed:  no"), "{shown}");

        assert_eq!(app.subscribe("bo@example.org", &["members"]).await.status(), 200);
        app.stop().await;
        assert_eq!(app.emails().len(), 1, "a hard bounce is not asked to come back");
    }

    async fn an_admin_adds_back_someone_who_asked_but_never_a_bounce_a_complaint_or_an_erasure(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        for who in ["jo", "bo", "cy", "di"] {
            let address = format!("{who}@example.org");
            run(db, &["subscriber", "add", &address, "--list", "members", "--confirmed"]).ok();
        }
        run(db, &["subscriber", "unsubscribe", "jo@example.org"]).ok();
        let shown = run(db, &["subscriber", "show", "jo@example.org"]).ok().to_owned();
        assert!(shown.contains("suppressed:  unsubscribed since 20"), "{shown}");
        let add = ["subscriber", "add", "jo@example.org", "--list", "members", "--confirmed"];
        let refused = run(db, &add).fails(2).to_owned();
        assert!(refused.contains("unsubscribed from everything"), "{refused}");
        assert!(
            refused.contains("if they have asked you to add them again, add --confirmed --resubscribe"),
            "{refused}"
        );
        let alone = ["subscriber", "add", "jo@example.org", "--list", "members", "--resubscribe"];
        assert!(run(db, &alone).fails(2).contains("--confirmed"));
        run(db, &[&add[..], &["--resubscribe"]].concat()).ok();
        let jo = run(db, &["subscriber", "show", "jo@example.org", "--json"]).json();
        assert_eq!(jo[0]["lists"][0]["status"], "confirmed", "{jo}");
        assert_eq!(jo[0]["lists"][0]["consent"]["method"], "admin");
        assert_eq!(jo[0]["lists"][0]["consent"]["wording"], "cli-admin-resubscribe");
        assert!(jo[0]["suppression"].is_null(), "{jo}");

        suppress(db, "bo@example.org", "hard-bounce").await;
        suppress(db, "cy@example.org", "complaint").await;
        run(db, &["subscriber", "rm", "di@example.org", "--erase"]).ok();
        for (who, why) in [("bo", "hard-bounced"), ("cy", "reported our mail as spam"), ("di", "erased")] {
            let address = format!("{who}@example.org");
            let args = ["subscriber", "add", &address, "--list", "members", "--confirmed", "--resubscribe"];
            let err = run(db, &args).fails(2).to_owned();
            assert!(err.contains(why), "{err}");
            assert!(err.contains("--resubscribe lifts only an unsubscribe from everything"), "{err}");
        }
        let bo = run(db, &["subscriber", "show", "bo@example.org", "--json"]).json();
        assert_eq!(bo[0]["suppression"]["reason"], "hard-bounce", "{bo}");
        assert_eq!(bo[0]["suppression"]["at"], "2026-01-02T03:04:05Z");
        assert_eq!(bo[0]["lists"][0]["status"], "confirmed", "nothing was changed");
        let di = run(db, &["subscriber", "show", "di@example.org"]).fails(2).to_owned();
        assert!(di.contains("there is no subscriber") && di.contains("erased"), "{di}");
    }

    async fn leaving_and_coming_back_on_the_command_line_are_recorded_as_events_from_it(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run(db, &["list", "create", "news", "--name", "Quick news"]).ok();
        let both = ["--list", "members", "--list", "news", "--confirmed"];
        run(db, &[&["subscriber", "add", "jo@example.org"][..], &both].concat()).ok();
        run(db, &["subscriber", "add", "bo@example.org", "--list", "members"]).ok();
        let store = db.store().await;
        let id = |slug: &'static str| {
            let store = &store;
            async move { store.list(&ListSlug::parse(slug).unwrap()).await.unwrap().id }
        };
        let (members, news) = (id("members").await, id("news").await);

        run(db, &["subscriber", "unsubscribe", "jo@example.org", "--list", "news"]).ok();
        run(db, &["subscriber", "unsubscribe", "jo@example.org"]).ok();
        let back = [&["subscriber", "add", "jo@example.org"][..], &both, &["--resubscribe"]];
        run(db, &back.concat()).ok();
        let note = ["--note", "told us by phone"];
        run(db, &[&["suppression", "add", "bo@example.org"][..], &note].concat()).ok();
        run(db, &["suppression", "rm", "bo@example.org", "--reason", "a typo"]).ok();
        for quiet in ["block", "unblock", "rm"] {
            run(db, &["subscriber", quiet, "bo@example.org"]).ok();
        }

        let events = run(db, &["events", "ls", "--json"]).json();
        let seen: Vec<_> = events
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| {
                let text = |key: &str| e[key].as_str().map(str::to_owned);
                (text("kind"), text("source"), text("email"), e["list_id"].as_i64(), text("reason"))
            })
            .collect();
        let event = |kind: &str, email: Option<&str>, list: Option<i64>, reason: &str| {
            let text = |s: &str| Some(s.to_owned());
            (text(kind), text("cli"), email.map(str::to_owned), list, text(reason))
        };
        let (jo, bo) = (Some("jo@example.org"), None);
        let left = "unsubscribed on the command line";
        let again = "added again at their request";
        assert_eq!(
            seen,
            [
                event("leave", jo, Some(news), left),
                event("leave", jo, None, left),
                event("join", jo, Some(members), again),
                event("join", jo, Some(news), again),
                event("suppress", bo, None, "hard-bounce: told us by phone"),
                event("unsuppress", bo, None, "a typo"),
            ],
            "blocking, unblocking and removing record nothing: {events}"
        );
    }

    async fn an_import_says_who_gets_nothing_and_confirm_pending_asks_them_within_the_limits(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run(db, &["list", "create", "councillors", "--name", "Councillors"]).ok();
        let people = ["p0@example.org", "p1@example.org", "p2@example.org", "p3@example.org",
                      "p4@example.org", "p5@example.org", "ann@example.org"];
        let summary = import_unconfirmed(db, &people);
        assert!(summary.starts_with("imported 7,"), "{summary}");
        assert!(summary.contains("7 of them are unconfirmed: they get nothing until they confirm"), "{summary}");
        assert!(summary.contains("`necmail list confirm-pending members`"), "{summary}");
        assert!(summary.contains("--send-confirmation"), "{summary}");

        let mut app = spawn_app_with(db, &[("NECMAIL_CONFIRMATIONS_PER_HOUR", "4")]).await;
        assert_eq!(app.subscribe("ann@example.org", &["councillors"]).await.status(), 200);
        app.wait_for_emails(1).await;
        let one_a_day = ("NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY", "1");
        let asked = run_command(necmail(db).env(one_a_day.0, one_a_day.1).args(["list", "confirm-pending", "members"]));
        let asked = asked.ok().to_owned();
        assert!(asked.starts_with("queued 6 confirmation emails to the unconfirmed members of members"), "{asked}");
        assert!(asked.contains("passed over 1 whose address already had 1 confirmation emails"), "{asked}");

        // The running web server finds them and sends what the hour allows.
        app.wait_for_emails(4).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while app.store.confirmations_waiting().await.unwrap() != 3 {
            assert!(tokio::time::Instant::now() < deadline, "three confirmations wait");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let link = app.confirmation_link().await;
        let csrf = app.csrf(&link).await;
        let confirmed = app.post_form(&link, &[("csrf", &csrf)]).await;
        assert!(confirmed.text().await.unwrap().contains("Party members"));
        app.stop().await;
        assert_eq!(app.emails().len(), 4, "NECMAIL_CONFIRMATIONS_PER_HOUR holds");
        let members = run(db, &["list", "show", "members", "--json"]).json();
        assert_eq!(members[0]["subscribers"]["confirmed"], 1, "{members}");
        assert_eq!(members[0]["subscribers"]["unconfirmed"], 6, "{members}");

        let again = run(db, &["list", "confirm-pending", "members"]).ok().to_owned();
        assert!(again.starts_with("queued 1 confirmation emails"), "only Ann, whose day allows it: {again}");
        assert!(again.contains("left alone 5 whose confirmation link still works"), "{again}");
        let more = ["subscriber", "import", "-", "--list", "members", "--send-confirmation"];
        let sent = run_with_stdin(db, &more, b"email\nnew@example.org\n").ok().to_owned();
        assert!(sent.contains("queued 1 confirmation emails to the unconfirmed members of members"), "{sent}");
        assert!(!sent.contains("get nothing until they confirm"), "{sent}");
    }

    async fn a_campaign_to_people_who_never_confirmed_is_refused_naming_why_and_is_not_archived(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        import_unconfirmed(db, &["p0@example.org", "p1@example.org", "p2@example.org",
                                 "p3@example.org", "p4@example.org", "p5@example.org"]);
        let id = campaign_to_members(db, &[]);
        let err = run(db, &["campaign", "send", &id]).fails(2).to_owned();
        assert!(
            err.contains("nobody on members is confirmed: 6 are unconfirmed; send them a confirmation \
                           with `necmail list confirm-pending members`"),
            "{err}"
        );
        let status = run(db, &["campaign", "status", &id, "--json"]).json();
        assert_eq!(status[0]["campaign"]["state"], "draft", "{status}");
        assert!(status[0]["campaign"]["finished_at"].is_null(), "{status}");
        let app = spawn_app(db).await;
        let archive = app.get("/archive").await.text().await.unwrap();
        assert!(!archive.contains("March 2017"), "{archive}");
    }

    async fn the_daemon_pauses_a_due_campaign_with_no_recipients_and_sends_it_once_resumed(db) {
        let smtp = SmtpServer::start().await;
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        import_unconfirmed(db, &["ann@example.org", "bob@example.org"]);
        let id = campaign_to_members(db, &["--now"]);
        let daemon = Daemon::start(db, &[("NECMAIL_SMTP_URL", smtp.url())]).await;
        let campaign = settled(db, &id).await;
        assert_eq!(campaign["state"], "paused", "{campaign}");
        let reason = campaign["pause_reason"].as_str().unwrap_or_default();
        assert!(reason.contains("nobody on members is confirmed: 2 are unconfirmed"), "{reason}");
        let client = http_client().build().unwrap();
        let archive = async || client.get(daemon.url("/archive")).send().await.unwrap().text().await.unwrap();
        assert!(!archive().await.contains("March 2017"));

        // Ann is asked, confirms, and gets the report once it is resumed.
        assert!(run(db, &["list", "confirm-pending", "members"]).ok().starts_with("queued 2"));
        smtp.wait_for(2, WAIT).await;
        let ask = smtp.messages_to("ann@example.org").remove(0);
        let confirm = link_path(&decoded(&ask), &daemon.url(""), "/confirm/");
        let page = client.get(daemon.url(&confirm)).send().await.unwrap().text().await.unwrap();
        let answer = client.post(daemon.url(&confirm)).form(&hidden_fields(&page)).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert!(run(db, &["campaign", "resume", &id]).ok().contains("scheduled"));
        campaigns_done(db, 1).await;
        assert_eq!(reports_to(&smtp, "ann@example.org").len(), 1);
        assert!(reports_to(&smtp, "bob@example.org").is_empty());
        assert!(archive().await.contains("March 2017"));
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("a scheduled campaign was paused, not sent"), "{log}");
    }
}
