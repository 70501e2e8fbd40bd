//! The web admin's feed sources, meetings and new reports from a file or a
//! URL, on both backends: each through the same domain code as the command
//! line, each refusal (too big, malformed, a refused address, a form
//! without its CSRF token) changing nothing, and script escaped.

use necmail::admin::Role;
use necmail::store::Store;

use crate::admin::{Admin, Session};
use crate::admin_people::{actions, office, text};
use crate::support::app::spawn_app_with;
use crate::support::cli::ALLOW_LOOPBACK_FEEDS;
use crate::support::http::{Behaviour, FeedServer, fixture};
use crate::support::on_both_backends;

const SCRIPT: &str = "<script>alert(1)</script>";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

async fn report_count(store: &dyn Store) -> usize {
    store.reports().await.unwrap().len()
}

async fn meeting_count(store: &dyn Store) -> usize {
    store.meetings().await.unwrap().len()
}

/// Uploads a report file to the new-report page.
async fn upload_report(
    admin: &Admin,
    s: &Session,
    csrf: &str,
    name: &str,
    file: &[u8],
) -> Result<reqwest::Response, reqwest::Error> {
    let fields = [("csrf", csrf), ("format", "auto")];
    admin
        .upload("/admin/reports/upload", s, &fields, name, file)
        .await
}

/// Uploads an iCalendar file to the meetings page.
async fn upload_calendar(
    admin: &Admin,
    s: &Session,
    csrf: &str,
    file: &[u8],
) -> Result<reqwest::Response, reqwest::Error> {
    admin
        .upload(
            "/admin/meetings/import",
            s,
            &[("csrf", csrf)],
            "nec.ics",
            file,
        )
        .await
}

/// The path a 303 sends the browser to.
fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "{}", response.url());
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// An item of `/live.rss`: (guid, title, HTML).
fn item(n: u32) -> (String, String, String) {
    (
        format!("post-{n}"),
        format!("NEC report number {n}"),
        format!("<p>The NEC met and agreed item {n} of the agenda, after a long debate.</p>"),
    )
}

fn publish(server: &FeedServer, numbers: &[u32]) {
    let items: Vec<_> = numbers.iter().map(|n| item(*n)).collect();
    let borrowed: Vec<_> = items
        .iter()
        .map(|(g, t, h)| (g.as_str(), t.as_str(), h.as_str()))
        .collect();
    server.set_live(&borrowed);
}

on_both_backends! {
    async fn an_owner_adds_a_source_polls_it_now_sees_its_error_and_removes_it(db) {
        let (admin, owner) = office(db, &[ALLOW_LOOPBACK_FEEDS]).await;
        let server = FeedServer::start();
        publish(&server, &[1]);
        let live = server.url("/live.rss");
        let added = admin.submit("/admin/sources", &owner,
            &[("url", &live), ("list:members", "yes"), ("existing", "seen")]).await;
        assert_eq!(added.status(), 200);
        let page = text(added).await;
        assert!(page.contains("Its 1 items are recorded as seen"), "{page}");
        assert!(page.contains(&live), "the new source is listed");
        let store = &admin.app.store;
        let sources = store.sources().await.unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].lists[0].as_str(), "members");

        publish(&server, &[2, 1]);
        let polled = admin.submit("/admin/sources/poll", &owner, &[]).await;
        assert_eq!(polled.status(), 200);
        let page = text(polled).await;
        assert!(page.contains("Polled just now: 1 new report"), "{page}");
        assert!(page.contains("NEC report number 2"), "{page}");
        let reports = store.reports().await.unwrap();
        assert_eq!(reports.len(), 1, "only the new post is imported");
        let campaigns = store.campaigns().await.unwrap();
        assert_eq!(campaigns.len(), 1, "the scheduler's poll made its campaign");
        assert_eq!(campaigns[0].report_id, reports[0].id);

        let flaky = server.url("/flaky.rss");
        let second = admin.submit("/admin/sources", &owner, &[("url", &flaky)]).await;
        assert_eq!(second.status(), 200);
        server.set_flaky(Behaviour::ServerError);
        let polled = text(admin.submit("/admin/sources/poll", &owner, &[]).await).await;
        assert!(polled.contains("1 source failed"), "{polled}");
        assert!(polled.contains("role=\"alert\">Failed:"), "{polled}");
        assert!(polled.contains("answered 500"), "{polled}");
        let listed = text(admin.get("/admin/sources", Some(&owner)).await).await;
        assert!(listed.contains("answered 500"), "the last error stays on the list: {listed}");

        let flaky_id = store.sources().await.unwrap()[1].id;
        let removed = admin.submit(&format!("/admin/sources/{flaky_id}/remove"), &owner, &[]).await;
        assert_eq!(location(&removed), "/admin/sources");
        assert_eq!(store.sources().await.unwrap().len(), 1);
        assert_eq!(report_count(&**store).await, 1, "its reports are kept");
        let done = actions(&admin).await;
        for action in ["source.add", "source.poll", "source.remove"] {
            assert!(done.iter().any(|a| a == action), "{action} in {done:?}");
        }
    }

    async fn a_source_at_a_private_address_a_bad_url_or_no_feed_is_refused_and_nothing_is_added(db) {
        let (admin, owner) = office(db, &[]).await;
        let server = FeedServer::start();
        let logged = admin.audit().await.len();
        let private = admin.submit("/admin/sources", &owner,
            &[("url", &server.url("/fixtures/nec.rss"))]).await;
        assert_eq!(private.status(), 422);
        let page = text(private).await;
        assert!(page.contains("Not added: cannot fetch"), "{page}");
        assert!(page.contains("NECMAIL_FEED_ALLOW_PRIVATE"), "{page}");
        let malformed = admin.submit("/admin/sources", &owner, &[("url", "feed me")]).await;
        assert_eq!(malformed.status(), 422);
        assert!(text(malformed).await.contains("is not an http:// or https:// URL"));
        let no_list = admin.submit("/admin/sources", &owner,
            &[("url", "https://rep.example.org/feed/"), ("list:nope", "yes")]).await;
        assert_eq!(no_list.status(), 422);
        assert!(admin.app.store.sources().await.unwrap().is_empty());
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");

        let admin = Admin::with(spawn_app_with(db, &[ALLOW_LOOPBACK_FEEDS]).await);
        let owner = admin.sign_in("owner@example.org").await;
        let garbage = admin.submit("/admin/sources", &owner,
            &[("url", &server.url("/fail/garbage"))]).await;
        assert_eq!(garbage.status(), 422);
        assert!(text(garbage).await.contains("is not an RSS or Atom feed"));
        assert!(admin.app.store.sources().await.unwrap().is_empty());
    }

    async fn meetings_are_added_imported_from_a_calendar_and_linked_to_a_report_by_an_editor(db) {
        let (admin, _) = office(db, &[]).await;
        admin.account("editor@example.org", Role::Editor).await;
        let editor = admin.sign_in("editor@example.org").await;
        let added = admin.submit("/admin/meetings", &editor,
            &[("date", "2017-03-21"), ("title", &format!("Special {SCRIPT}"))]).await;
        assert_eq!(location(&added), "/admin/meetings");
        let page = text(admin.get("/admin/meetings", Some(&editor)).await).await;
        assert!(page.contains(&format!("Special {ESCAPED}")), "{page}");
        assert!(!page.contains(SCRIPT));
        assert!(page.contains("class=\"tag overdue\""), "a meeting of 2017 with no report: {page}");

        let imported = upload_calendar(&admin, &editor, &editor.csrf,
            &fixture("nec-2026.ics")).await.unwrap();
        assert_eq!(imported.status(), 200);
        let page = text(imported).await;
        assert!(page.contains("4 new meetings, 0 already known; 1 left out as cancelled"), "{page}");
        let store = &admin.app.store;
        assert_eq!(meeting_count(&**store).await, 5);

        let pasted = admin.submit("/admin/reports/new", &editor,
            &[("text", "# An undated report\n\nThe NEC met and talked at length.\n"),
              ("format", "md")]).await;
        let report = location(&pasted).rsplit('/').next().unwrap().to_owned();
        let linked = admin.submit("/admin/meetings/2017-03-21/link", &editor,
            &[("report", &report)]).await;
        assert_eq!(location(&linked), "/admin/meetings");
        let meetings = store.meetings().await.unwrap();
        let march = meetings.iter().find(|m| m.held_on.to_string() == "2017-03-21").unwrap();
        let linked_report = march.report.as_ref().expect("linked");
        assert_eq!(linked_report.id.to_string(), report);
        assert_eq!(linked_report.linked_by.as_str(), "hand");
        let page = text(admin.get("/admin/meetings", Some(&editor)).await).await;
        assert!(page.contains("An undated report"), "{page}");
        assert!(page.contains("linked by hand"), "{page}");

        let unlinked = admin.submit("/admin/meetings/2017-03-21/unlink", &editor, &[]).await;
        assert_eq!(location(&unlinked), "/admin/meetings");
        let meetings = store.meetings().await.unwrap();
        let march = meetings.iter().find(|m| m.held_on.to_string() == "2017-03-21").unwrap();
        assert!(march.report.is_none());
        let twice = admin.submit("/admin/meetings", &editor, &[("date", "2017-03-21")]).await;
        assert_eq!(twice.status(), 422, "a second meeting on one day");
        let no_report = admin.submit("/admin/meetings/2017-03-21/link", &editor,
            &[("report", "999")]).await;
        assert_eq!(no_report.status(), 404);
        let done = actions(&admin).await;
        for action in ["meeting.add", "meeting.import", "meeting.link", "meeting.unlink"] {
            assert!(done.iter().any(|a| a == action), "{action} in {done:?}");
        }
    }

    async fn an_editor_removes_a_meeting_its_report_kept_and_a_forged_token_removes_nothing(db) {
        let (admin, _) = office(db, &[]).await;
        admin.account("editor@example.org", Role::Editor).await;
        let editor = admin.sign_in("editor@example.org").await;
        admin.account("second@example.org", Role::Editor).await;
        let theirs = admin.sign_in("second@example.org").await;
        let store = &admin.app.store;
        for day in ["2017-03-21", "2017-05-16", "2099-01-20"] {
            store.add_meeting(day.parse().unwrap(), None).await.unwrap();
        }
        let pasted = admin.submit("/admin/reports/new", &editor,
            &[("text", "# An undated report\n\nThe NEC met.\n"), ("format", "md")]).await;
        let report = location(&pasted).rsplit('/').next().unwrap().to_owned();
        admin.submit("/admin/meetings/2017-03-21/link", &editor, &[("report", &report)]).await;
        let page = text(admin.get("/admin/meetings", Some(&editor)).await).await;
        for day in ["2017-03-21", "2017-05-16", "2099-01-20"] {
            assert!(page.contains(&format!("action=\"/admin/meetings/{day}/remove\"")), "{page}");
        }
        let logged = admin.audit().await.len();

        let path = "/admin/meetings/2017-03-21/remove";
        let without = admin.post(path, Some(&editor), &[]).await;
        assert_eq!(without.status(), 403, "without a token");
        let foreign = admin.post(path, Some(&editor), &[("csrf", &theirs.csrf)]).await;
        assert_eq!(foreign.status(), 403, "with another session's token");
        assert_eq!(meeting_count(&**store).await, 3, "nothing removed");
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");

        let removed = admin.submit(path, &editor, &[]).await;
        assert_eq!(location(&removed), "/admin/meetings");
        let days: Vec<String> =
            store.meetings().await.unwrap().iter().map(|m| m.held_on.to_string()).collect();
        assert_eq!(days, ["2099-01-20", "2017-05-16"]);
        assert_eq!(report_count(&**store).await, 1, "its report is kept");
        let log = admin.audit().await;
        assert_eq!(log.len(), logged + 1);
        assert_eq!(log[0].action, "meeting.remove");
        assert_eq!(log[0].detail, "2017-03-21; its report an-undated-report is kept");
        let again = admin.submit(path, &editor, &[]).await;
        assert_eq!(again.status(), 404, "it is gone");
        let no_date = admin.submit("/admin/meetings/tomorrow/remove", &editor, &[]).await;
        assert_eq!(no_date.status(), 404);
        assert_eq!(admin.audit().await.len(), logged + 1);
    }

    async fn a_calendar_too_big_or_malformed_is_refused_and_records_nothing(db) {
        let (admin, owner) = office(db, &[("NECMAIL_ADMIN_UPLOAD_MAX_BYTES", "4096")]).await;
        let logged = admin.audit().await.len();
        let csrf = owner.csrf.clone();
        let not_ics = upload_calendar(&admin, &owner, &csrf, b"<rss>not a calendar</rss>\n")
            .await.unwrap();
        assert_eq!(not_ics.status(), 422);
        let page = text(not_ics).await;
        assert!(page.contains("nec.ics cannot be imported"), "{page}");
        assert!(page.contains("Nothing was recorded"), "{page}");
        let binary = upload_calendar(&admin, &owner, &csrf, &[0xff, 0xfe, 0, 1]).await.unwrap();
        assert_eq!(binary.status(), 422);
        let big = fixture("nec-2026.ics").repeat(4);
        match upload_calendar(&admin, &owner, &csrf, &big).await {
            Ok(response) => {
                assert_eq!(response.status(), 413);
                assert!(text(response).await.contains("Nothing was recorded"));
            }
            Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        }
        assert_eq!(meeting_count(&*admin.app.store).await, 0);
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
    }

    async fn a_report_is_made_from_an_uploaded_markdown_or_html_file_or_from_a_url(db) {
        let (admin, owner) = office(db, &[ALLOW_LOOPBACK_FEEDS]).await;
        let store = &admin.app.store;
        let markdown = upload_report(&admin, &owner, &owner.csrf, "march-2017.md",
            &fixture("march-2017.md")).await.unwrap();
        let first = location(&markdown);
        let page = text(admin.get(&first, Some(&owner)).await).await;
        assert!(page.contains("Labour NEC Report – March 2017"), "{page}");
        let html = upload_report(&admin, &owner, &owner.csrf, "july.html",
            &fixture("july-2017.html")).await.unwrap();
        assert_ne!(location(&html), first);
        let reports = store.reports().await.unwrap();
        assert_eq!(reports.len(), 2);
        assert!(reports.iter().any(|r| r.title == "Labour NEC Report – July 2017"), "{reports:?}");

        let server = FeedServer::start();
        let url = server.url("/templated/with-images.html");
        let fetched = admin.submit("/admin/reports/fetch", &owner, &[("url", &url)]).await;
        assert_eq!(fetched.status(), 200, "shown with its warnings");
        let page = text(fetched).await;
        assert!(page.contains("Saved, but:"), "{page}");
        assert!(page.contains("missing.jpg is left out"), "{page}");
        assert!(page.contains("/preview/member"), "the preview is there: {page}");
        let reports = store.reports().await.unwrap();
        assert_eq!(reports.len(), 3);
        let september = reports.iter().find(|r| r.title.contains("September 2017")).unwrap();
        assert!(september.body_markdown.contains("/media/"), "its image is copied");

        publish(&server, &[2, 1]);
        let feed = admin.submit("/admin/reports/fetch", &owner,
            &[("url", &server.url("/live.rss"))]).await;
        assert_eq!(location(&feed), "/admin/reports", "a feed's items are all imported");
        assert_eq!(report_count(&**store).await, 5);
        let log = admin.audit().await;
        assert!(log.iter().any(|e| e.action == "report.import"
            && e.detail.ends_with("from the file march-2017.md")), "{log:?}");
        assert!(log.iter().any(|e| e.action == "report.import" && e.detail.ends_with(&url)));
    }

    async fn a_report_file_too_big_malformed_or_at_a_refused_address_is_refused_and_stores_nothing(db) {
        let (admin, owner) = office(db, &[("NECMAIL_ADMIN_UPLOAD_MAX_BYTES", "4096")]).await;
        let logged = admin.audit().await.len();
        let csrf = owner.csrf.clone();
        let empty = upload_report(&admin, &owner, &csrf, "empty.md", b"  \n").await.unwrap();
        assert_eq!(empty.status(), 422);
        assert!(text(empty).await.contains("empty.md is empty. Nothing was stored."));
        let binary = upload_report(&admin, &owner, &csrf, "photo.md",
            &fixture("photo.png")).await.unwrap();
        assert_eq!(binary.status(), 422);
        assert!(text(binary).await.contains("Cannot import photo.md"));
        let no_file = admin.upload("/admin/reports/upload", &owner, &[("csrf", &csrf)], "", b"")
            .await.unwrap();
        assert_eq!(no_file.status(), 422);
        let big = fixture("july-2017.html").repeat(10);
        match upload_report(&admin, &owner, &csrf, "big.html", &big).await {
            Ok(response) => {
                assert_eq!(response.status(), 413);
                assert!(text(response).await.contains("larger than"));
            }
            Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        }
        let server = FeedServer::start();
        let private = admin.submit("/admin/reports/fetch", &owner,
            &[("url", &server.url("/fixtures/july-2017.html"))]).await;
        assert_eq!(private.status(), 422);
        let page = text(private).await;
        assert!(page.contains("NECMAIL_FEED_ALLOW_PRIVATE"), "{page}");
        assert!(page.contains("Nothing was stored"), "{page}");
        assert!(server.all_hits().is_empty(), "nothing was sent to a refused address");
        let malformed = admin.submit("/admin/reports/fetch", &owner,
            &[("url", "javascript:alert(1)")]).await;
        assert_eq!(malformed.status(), 422);
        assert_eq!(report_count(&*admin.app.store).await, 0);
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
    }

    async fn the_new_forms_without_their_sessions_csrf_token_are_refused_and_change_nothing(db) {
        let (admin, owner) = office(db, &[ALLOW_LOOPBACK_FEEDS]).await;
        admin.account("second@example.org", Role::Owner).await;
        let theirs = admin.sign_in("second@example.org").await;
        let server = FeedServer::start();
        let store = &admin.app.store;
        store.add_meeting("2017-03-21".parse().unwrap(), None).await.unwrap();
        let logged = admin.audit().await.len();
        let forms: [(&str, Vec<(&str, String)>); 6] = [
            ("/admin/sources", vec![("url", server.url("/fixtures/nec.rss"))]),
            ("/admin/sources/poll", vec![]),
            ("/admin/meetings", vec![("date", "2017-04-01".into())]),
            ("/admin/meetings/2017-03-21/link", vec![("report", "1".into())]),
            ("/admin/meetings/2017-03-21/unlink", vec![]),
            ("/admin/reports/fetch", vec![("url", server.url("/fixtures/july-2017.html"))]),
        ];
        for (path, fields) in &forms {
            let mut with_theirs: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let without = admin.post(path, Some(&owner), &with_theirs).await;
            assert_eq!(without.status(), 403, "{path} without a token");
            with_theirs.push(("csrf", &theirs.csrf));
            let foreign = admin.post(path, Some(&owner), &with_theirs).await;
            assert_eq!(foreign.status(), 403, "{path} with another session's token");
        }
        let uploads = [
            ("/admin/reports/upload", "march-2017.md", fixture("march-2017.md")),
            ("/admin/meetings/import", "nec.ics", fixture("nec-2026.ics")),
        ];
        for (path, name, file) in &uploads {
            let foreign = admin.upload(path, &owner, &[("csrf", &theirs.csrf)], name, file)
                .await.unwrap();
            assert_eq!(foreign.status(), 403, "{path} with another session's token");
            let without = admin.upload(path, &owner, &[], name, file).await.unwrap();
            assert_eq!(without.status(), 403, "{path} without a token");
        }
        assert!(store.sources().await.unwrap().is_empty());
        assert_eq!(meeting_count(&**store).await, 1);
        assert_eq!(report_count(&**store).await, 0);
        assert!(server.all_hits().is_empty(), "nothing was fetched");
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
    }

    async fn script_in_a_source_a_meeting_or_a_report_file_is_escaped(db) {
        let (admin, owner) = office(db, &[ALLOW_LOOPBACK_FEEDS]).await;
        let server = FeedServer::start();
        let typed = format!("https://rep.example.org/{SCRIPT}");
        let refused = text(admin.submit("/admin/sources", &owner,
            &[("url", &typed), ("category", SCRIPT)]).await).await;
        assert!(!refused.contains(SCRIPT), "{refused}");
        let added = text(admin.submit("/admin/sources", &owner,
            &[("url", &server.url("/fixtures/nec.rss")), ("category", SCRIPT)]).await).await;
        assert!(added.contains(&format!("only items in category {ESCAPED}")), "{added}");
        let listed = text(admin.get("/admin/sources", Some(&owner)).await).await;
        assert!(!listed.contains(SCRIPT));
        let file = format!("# Report {SCRIPT}\n\nThe NEC met {SCRIPT} and talked.\n");
        let name = format!("{SCRIPT}.md");
        let uploaded = upload_report(&admin, &owner, &owner.csrf, &name, file.as_bytes())
            .await.unwrap();
        let page = text(admin.get(&location(&uploaded), Some(&owner)).await).await;
        assert!(!page.contains(SCRIPT), "{page}");
        assert!(page.contains(&format!("Report {ESCAPED}")), "{page}");
        let bad = upload_report(&admin, &owner, &owner.csrf, &format!("{SCRIPT}.md"), b"\xff\xfe")
            .await.unwrap();
        assert!(!text(bad).await.contains(SCRIPT));
    }
}
