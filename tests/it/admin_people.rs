//! The web admin's pages about people, on both backends: subscribers (the
//! search, a person's page and what an owner may do there, the CSV import
//! and export), lists, suppressions, bounces and events. Owners only.

use std::time::Duration;

use necmail::admin::Role;
use necmail::feedback::{EventKind, EventSource, NewEvent};
use necmail::lists::{ListSlug, OptIn};
use necmail::store::Store;
use necmail::subscribers::import::ImportState;
use necmail::subscribers::{
    SubscriberEmail, SubscriberFilter, SubscriptionStatus, SuppressionReason,
};

use crate::admin::{Admin, Session, assert_to_login};
use crate::lists::{new_list, subscriber};
use crate::serve::Daemon;
use crate::support::app::{csrf_of, spawn_app_with};
use crate::support::{TestDb, http_client, on_both_backends};

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).unwrap()
}

/// Every page of this part: method and path.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/subscribers"),
    ("POST", "/admin/subscribers"),
    ("GET", "/admin/subscribers/export"),
    ("GET", "/admin/subscribers/import"),
    ("POST", "/admin/subscribers/upload"),
    ("GET", "/admin/subscribers/import/x"),
    ("GET", "/admin/subscribers/import/x/rejects.csv"),
    ("GET", "/admin/subscribers/1"),
    ("POST", "/admin/subscribers/1/edit"),
    ("POST", "/admin/subscribers/1/subscribe"),
    ("POST", "/admin/subscribers/1/unsubscribe"),
    ("POST", "/admin/subscribers/1/block"),
    ("POST", "/admin/subscribers/1/unblock"),
    ("POST", "/admin/subscribers/1/erase"),
    ("GET", "/admin/lists"),
    ("POST", "/admin/lists"),
    ("POST", "/admin/lists/members/rename"),
    ("GET", "/admin/suppressions"),
    ("POST", "/admin/suppressions"),
    ("POST", "/admin/suppressions/remove"),
    ("GET", "/admin/bounces"),
    ("GET", "/admin/events"),
];

/// A running admin with a `members` list (single opt-in), an owner and
/// their session.
pub(crate) async fn office(db: &TestDb, extra: &[(&str, &str)]) -> (Admin, Session) {
    let admin = Admin::with(spawn_app_with(db, extra).await);
    admin
        .app
        .store
        .create_list(&new_list("members", OptIn::Single))
        .await
        .unwrap();
    admin.account("owner@example.org", Role::Owner).await;
    let owner = admin.sign_in("owner@example.org").await;
    (admin, owner)
}

/// Adds `address` to `members`, named `name`; returns their id.
async fn person(store: &dyn Store, address: &str, name: Option<&str>) -> i64 {
    let mut new = subscriber(address, &["members"], true);
    new.name = name.map(|n| {
        necmail::subscribers::SubscriberName::parse(n)
            .unwrap()
            .unwrap()
    });
    store.add_subscriber(&new).await.unwrap().id
}

pub(crate) async fn text(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

/// The audit log's actions, oldest first.
pub(crate) async fn actions(admin: &Admin) -> Vec<String> {
    admin
        .audit()
        .await
        .into_iter()
        .rev()
        .map(|e| e.action)
        .collect()
}

/// Uploads `file` with `fields` (the CSRF token among them when wanted).
async fn upload(
    admin: &Admin,
    session: &Session,
    fields: &[(&str, &str)],
    file: &[u8],
) -> Result<reqwest::Response, reqwest::Error> {
    admin
        .upload(
            "/admin/subscribers/upload",
            session,
            fields,
            "people.csv",
            file,
        )
        .await
}

/// Follows an import's page until it says it is done; returns the page.
async fn finished(admin: &Admin, owner: &Session, page: &str) -> String {
    for _ in 0..400 {
        let html = text(admin.get(page, Some(owner)).await).await;
        if !html.contains("Importing…") {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the import at {page} did not finish");
}

async fn count(store: &dyn Store) -> usize {
    store
        .subscribers(&SubscriberFilter::default(), 0, 1000)
        .await
        .unwrap()
        .len()
}

on_both_backends! {
    async fn every_people_page_refuses_an_anonymous_visitor_and_an_editor(db) {
        let (admin, _) = office(db, &[]).await;
        person(&*admin.app.store, "jo@example.org", Some("Jo")).await;
        admin.account("editor@example.org", Role::Editor).await;
        let editor = admin.sign_in("editor@example.org").await;
        let logged = admin.audit().await.len();
        let fields = [("email", "x@example.org"), ("list", "members"), ("sure", "yes"),
            ("name", "X"), ("slug", "x"), ("reason", "complaint"), ("note", "n")];
        for (method, path) in ROUTES {
            let anonymous = match *method {
                "GET" => admin.get(path, None).await,
                _ => admin.post(path, None, &fields).await,
            };
            assert_to_login(&anonymous);
            let refused = match *method {
                "GET" => admin.get(path, Some(&editor)).await,
                _ if path.ends_with("/upload") => {
                    upload(&admin, &editor, &[("csrf", &editor.csrf), ("list", "members")],
                        b"email\nx@example.org\n").await.unwrap()
                }
                _ => admin.submit(path, &editor, &fields).await,
            };
            assert_eq!(refused.status(), 403, "{method} {path} as an editor");
            assert!(text(refused).await.contains("For owners only"), "{method} {path}");
        }
        let store = &admin.app.store;
        assert_eq!(count(&**store).await, 1, "nobody added");
        let jo = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(jo.lists[0].status, SubscriptionStatus::Confirmed, "nobody unsubscribed");
        assert!(store.suppression(&email("x@example.org")).await.unwrap().is_none());
        assert_eq!(store.lists().await.unwrap().len(), 1);
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
    }

    async fn a_search_finds_people_by_the_start_of_their_address_or_name(db) {
        let (admin, owner) = office(db, &[]).await;
        let store = &*admin.app.store;
        store.create_list(&new_list("councillors", OptIn::Single)).await.unwrap();
        let ann = person(store, "ann@example.org", Some("Ann Lee")).await;
        let annabel = person(store, "annabel@example.org", None).await;
        let bob = person(store, "bob@example.org", Some("Annie Bowes")).await;
        person(store, "joann@example.org", Some("Jo Ann")).await;
        person(store, "a_nn@example.org", None).await;
        store.add_subscriber(&subscriber("ann@example.org", &["councillors"], true)).await.unwrap();
        let found = |q: &str| {
            let path = format!("/admin/subscribers?{q}");
            let (admin, owner) = (&admin, &owner);
            async move {
                let page = admin.get(&path, Some(owner)).await;
                assert_eq!(page.status(), 200, "{path}");
                let page = text(page).await;
                let mut ids: Vec<i64> = page
                    .match_indices("href=\"/admin/subscribers/")
                    .filter_map(|(at, m)| {
                        let rest = &page[at + m.len()..];
                        rest[..rest.find('"')?].parse().ok()
                    })
                    .collect();
                ids.sort();
                ids
            }
        };
        assert_eq!(found("q=ann").await, [ann, annabel, bob], "address or name, never inside");
        assert_eq!(found("q=ANN").await, [ann, annabel, bob], "any case");
        assert_eq!(found("q=annabel%40").await, [annabel]);
        assert_eq!(found("q=annie+b").await, [bob]);
        assert_eq!(found("q=a_").await.len(), 1, "_ is no wildcard");
        assert!(found("q=%25").await.is_empty(), "nor is %");
        assert_eq!(found("q=ann&list=councillors").await, [ann]);
        assert_eq!(found("q=ann&status=blocklisted").await, Vec::<i64>::new());
        let refused = admin.get("/admin/subscribers?status=boss", Some(&owner)).await;
        assert_eq!(refused.status(), 422);
        let page = text(admin.get("/admin/subscribers?q=ann", Some(&owner)).await).await;
        assert!(page.contains("Ann Lee") && page.contains("councillors (confirmed)"), "{page}");
    }

    async fn the_search_pages_by_id_and_the_export_streams_every_match(db) {
        let (admin, owner) = office(db, &[]).await;
        for i in 0..55 {
            person(&*admin.app.store, &format!("m{i:02}@example.org"), Some("Mem =ber")).await;
        }
        let row = "<td class=\"wrap\"><a href=\"/admin/subscribers/";
        let first = text(admin.get("/admin/subscribers?q=m", Some(&owner)).await).await;
        assert_eq!(first.matches(row).count(), 50);
        let marker = "href=\"/admin/subscribers?";
        let next = first
            .match_indices(marker)
            .map(|(at, _)| &first[at + marker.len()..])
            .find(|rest| rest.contains("after="))
            .map(|rest| rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
            .expect("a next page");
        let second = text(admin.get(&format!("/admin/subscribers?{next}"), Some(&owner)).await).await;
        assert_eq!(second.matches(row).count(), 5, "{second}");
        assert!(second.contains("m54@example.org") && !second.contains("m00@example.org"));

        let export = admin.get("/admin/subscribers/export?q=m", Some(&owner)).await;
        assert_eq!(export.status(), 200);
        assert!(export.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = text(export).await;
        assert_eq!(csv.lines().count(), 56, "a header and every match");
        assert!(csv.starts_with("email,name\n"));
        assert!(csv.contains("m00@example.org,Mem =ber\n"));
        assert!(actions(&admin).await.contains(&"subscriber.export".to_owned()));
    }

    async fn a_person_is_edited_blocked_unsubscribed_and_erased_with_a_confirmation_step(db) {
        let (admin, owner) = office(db, &[]).await;
        let store = &*admin.app.store;
        let jo = person(store, "jo@example.org", Some("Jo")).await;
        let path = |action: &str| format!("/admin/subscribers/{jo}/{action}");
        let page = text(admin.get(&format!("/admin/subscribers/{jo}"), Some(&owner)).await).await;
        assert!(page.contains("jo@example.org") && page.contains("wording <code>cli-admin</code>"),
            "the consent record: {page}");

        let edited = admin
            .submit(&path("edit"), &owner, &[("name", "Jo Bloggs"), ("attributes", "role=councillor\ncouncil=Leeds")])
            .await;
        assert_eq!(edited.status(), 303);
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Jo Bloggs"));
        assert_eq!(s.attributes.get("council"), Some("Leeds"));
        admin.submit(&path("edit"), &owner, &[("name", "Jo Bloggs"), ("attributes", "role=councillor")]).await;
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(s.attributes.get("council"), None, "a line taken away is unset");
        let bad = admin.submit(&path("edit"), &owner, &[("attributes", "no equals sign")]).await;
        assert_eq!(bad.status(), 422);

        assert_eq!(admin.submit(&path("block"), &owner, &[]).await.status(), 303);
        let page = text(admin.get(&format!("/admin/subscribers/{jo}"), Some(&owner)).await).await;
        assert!(page.contains("Blocked: they get no mail"), "{page}");
        assert_eq!(admin.submit(&path("unblock"), &owner, &[]).await.status(), 303);

        let asked = admin.submit(&path("unsubscribe"), &owner, &[]).await;
        assert_eq!(asked.status(), 200, "first a confirmation step");
        assert!(text(asked).await.contains("name=\"sure\" value=\"yes\""));
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Confirmed, "nothing changed yet");
        let done = admin.submit(&path("unsubscribe"), &owner, &[("sure", "yes")]).await;
        assert_eq!(done.status(), 303);
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Unsubscribed);
        assert_eq!(s.suppression.unwrap().reason, SuppressionReason::Unsubscribed);
        let left = store.events(&necmail::feedback::EventFilter {
            email: Some(email("jo@example.org")),
            kinds: vec![EventKind::Leave],
            limit: 10,
            ..Default::default()
        }).await.unwrap();
        assert_eq!(left.len(), 1, "the leave is recorded: {left:?}");
        assert_eq!((left[0].source, left[0].list_id), (EventSource::Admin, None));
        let page = text(admin.get(&format!("/admin/subscribers/{jo}"), Some(&owner)).await).await;
        assert!(page.contains("unsubscribed by the office"), "{page}");

        let again = admin.submit(&path("subscribe"), &owner, &[("list", "members"), ("confirmed", "yes")]).await;
        assert_eq!(again.status(), 422, "not without their request");
        assert!(text(again).await.contains("asked to be added again"));
        let back = admin.submit(&path("subscribe"), &owner, &[("list", "members"), ("resubscribe", "yes")]).await;
        assert_eq!(back.status(), 303, "resubscribed on their request");
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Confirmed);
        assert_eq!(s.lists[0].consent.wording, "web-admin-resubscribe");
        let joined = store.events(&necmail::feedback::EventFilter {
            email: Some(email("jo@example.org")),
            kinds: vec![EventKind::Join],
            limit: 10,
            ..Default::default()
        }).await.unwrap();
        assert_eq!(joined.len(), 1, "coming back is recorded: {joined:?}");
        assert_eq!((joined[0].source, joined[0].list_id.is_some()), (EventSource::Admin, true));
        assert_eq!(joined[0].reason, "added again at their request");

        let asked = admin.submit(&path("erase"), &owner, &[]).await;
        assert_eq!(asked.status(), 200);
        assert!(text(asked).await.contains("This cannot be undone"));
        assert!(store.subscriber(&email("jo@example.org")).await.is_ok(), "not yet erased");
        let erased = admin.submit(&path("erase"), &owner, &[("sure", "yes")]).await;
        assert_eq!(erased.status(), 303);
        assert_eq!(erased.headers()["location"], "/admin/subscribers");
        assert!(store.subscriber(&email("jo@example.org")).await.is_err());
        let kept = store.suppression(&email("jo@example.org")).await.unwrap().unwrap();
        assert_eq!(kept.reason, SuppressionReason::Erased);
        assert_eq!(admin.get(&format!("/admin/subscribers/{jo}"), Some(&owner)).await.status(), 404);
        let log = admin.audit().await;
        assert!(log.iter().all(|e| !e.detail.contains("jo@example.org")), "the log keeps no address");
    }

    async fn an_uploaded_csv_is_imported_with_a_rejects_file_to_download(db) {
        let (admin, owner) = office(db, &[]).await;
        let csv = "email,name,role\n\
            ann@example.org,Ann,councillor\n\
            not an address,Bob,member\n\
            cat@example.org,Cat,member\n\
            =HYPERLINK(1),Eve,member\n";
        let sent = upload(&admin, &owner, &[("csrf", &owner.csrf), ("list", "members"), ("confirmed", "yes")],
            csv.as_bytes()).await.unwrap();
        assert_eq!(sent.status(), 303);
        let page = sent.headers()["location"].to_str().unwrap().to_owned();
        assert!(page.starts_with("/admin/subscribers/import/"), "{page}");
        let done = finished(&admin, &owner, &page).await;
        assert!(done.contains("The import is done"), "{done}");
        assert!(done.contains("<dt>New</dt><dd>2</dd>") && done.contains("<dt>Rejected</dt><dd>2</dd>"), "{done}");
        let store = &*admin.app.store;
        let ann = store.subscriber(&email("ann@example.org")).await.unwrap();
        assert_eq!(ann.attributes.get("role"), Some("councillor"));
        assert_eq!(ann.lists[0].status, SubscriptionStatus::Confirmed);
        assert_eq!(ann.lists[0].consent.wording, "web-import");
        let rejects = admin.get(&format!("{page}/rejects.csv"), Some(&owner)).await;
        assert_eq!(rejects.status(), 200);
        assert!(rejects.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
        let rejects = text(rejects).await;
        assert!(rejects.starts_with("line,email,reason\n"), "{rejects}");
        assert!(rejects.contains("\n3,not an address,"), "{rejects}");
        assert!(rejects.contains("\n5,'=HYPERLINK(1),"), "a formula is neutralised: {rejects}");
        assert!(actions(&admin).await.ends_with(&["subscriber.import".into(), "subscriber.import.done".into()]));
        let imports = db.dir.path().join("spool").join("imports");
        let left: Vec<_> = std::fs::read_dir(&imports).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "the upload is deleted, the rejects file kept: {left:?}");
    }

    async fn an_upload_too_big_malformed_or_without_a_list_is_refused_and_changes_nothing(db) {
        let (admin, owner) = office(db, &[("NECMAIL_ADMIN_UPLOAD_MAX_BYTES", "4096")]).await;
        let logged = admin.audit().await.len();
        let csrf = owner.csrf.clone();
        let fields = [("csrf", csrf.as_str()), ("list", "members")];
        let no_email = upload(&admin, &owner, &fields, b"name,role\nAnn,member\n").await.unwrap();
        assert_eq!(no_email.status(), 422);
        assert!(text(no_email).await.contains("Nothing was imported"));
        let binary = upload(&admin, &owner, &fields, &[0x89, b'P', b'N', b'G', 0, 0, 0xff]).await.unwrap();
        assert_eq!(binary.status(), 422);
        let no_list = upload(&admin, &owner, &[("csrf", &csrf)], b"email\nann@example.org\n").await.unwrap();
        assert_eq!(no_list.status(), 422);
        let no_such_list = upload(&admin, &owner, &[("csrf", &csrf), ("list", "nope")],
            b"email\nann@example.org\n").await.unwrap();
        assert_eq!(no_such_list.status(), 422);
        let big = format!("email\n{}", "someone@example.org\n".repeat(400));
        // The server answers 413 and closes a connection whose body it
        // refused; a client still writing may see the close first.
        match upload(&admin, &owner, &fields, big.as_bytes()).await {
            Ok(response) => assert_eq!(response.status(), 413),
            Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        }
        assert_eq!(count(&*admin.app.store).await, 0, "nobody imported");
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
        let imports = db.dir.path().join("spool").join("imports");
        let left = std::fs::read_dir(&imports).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "no upload is left behind");
    }

    async fn a_people_form_without_its_sessions_csrf_token_is_refused_and_changes_nothing(db) {
        let (admin, owner) = office(db, &[]).await;
        admin.account("second@example.org", Role::Owner).await;
        let other = admin.sign_in("second@example.org").await;
        let jo = person(&*admin.app.store, "jo@example.org", None).await;
        let logged = admin.audit().await.len();
        let erase = format!("/admin/subscribers/{jo}/erase");
        for token in [None, Some(""), Some(other.csrf.as_str())] {
            let mut fields = vec![("email", "new@example.org"), ("list", "members"), ("sure", "yes")];
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            for path in ["/admin/subscribers", erase.as_str(), "/admin/suppressions", "/admin/lists"] {
                let refused = admin.post(path, Some(&owner), &fields).await;
                assert_eq!(refused.status(), 403, "{path} with {token:?}");
            }
            let mut upload_fields = vec![("list", "members")];
            if let Some(token) = token {
                upload_fields.insert(0, ("csrf", token));
            }
            let refused = upload(&admin, &owner, &upload_fields, b"email\nnew@example.org\n").await.unwrap();
            assert_eq!(refused.status(), 403, "an upload with {token:?}");
        }
        assert_eq!(count(&*admin.app.store).await, 1);
        assert!(admin.app.store.suppression(&email("new@example.org")).await.unwrap().is_none());
        assert_eq!(admin.audit().await.len(), logged);
    }

    async fn every_people_action_writes_the_audit_log(db) {
        let (admin, owner) = office(db, &[]).await;
        let added = admin
            .submit("/admin/subscribers", &owner, &[("email", "jo@example.org"), ("name", "Jo"), ("list", "members")])
            .await;
        assert_eq!(added.status(), 303);
        let jo = admin.app.store.subscriber(&email("jo@example.org")).await.unwrap().id;
        let at = |action: &str| format!("/admin/subscribers/{jo}/{action}");
        for (path, fields) in [
            (at("edit"), vec![("name", "Jo B")]),
            (at("unsubscribe"), vec![("list", "members")]),
            (at("subscribe"), vec![("list", "members"), ("confirmed", "yes")]),
            (at("block"), vec![]),
            (at("unblock"), vec![]),
            ("/admin/lists".into(), vec![("slug", "councillors"), ("name", "Councillors")]),
            ("/admin/lists/councillors/rename".into(), vec![("name", "Our councillors")]),
            ("/admin/suppressions".into(), vec![("email", "x@example.org"), ("reason", "complaint")]),
            ("/admin/suppressions/remove".into(), vec![("email", "x@example.org"), ("note", "a mistake")]),
            (at("erase"), vec![("sure", "yes")]),
        ] {
            assert_eq!(admin.submit(&path, &owner, &fields).await.status(), 303, "{path}");
        }
        let log = admin.audit().await;
        let ours: Vec<(String, String)> = log
            .iter()
            .rev()
            .filter(|e| !e.action.starts_with("sign-in") && !e.action.starts_with("account")
                && !e.action.starts_with("password"))
            .map(|e| (e.action.clone(), e.detail.clone()))
            .collect();
        let subscriber = format!("subscriber {jo}");
        let x = email("x@example.org").suppression_hash();
        let x = format!("hash {}", &x[..12]);
        let expected = [
            ("subscriber.subscribe", format!("{subscriber} to members")),
            ("subscriber.edit", subscriber.clone()),
            ("subscriber.unsubscribe", format!("{subscriber} from members")),
            ("subscriber.subscribe", format!("{subscriber} to members")),
            ("subscriber.block", subscriber.clone()),
            ("subscriber.unblock", subscriber.clone()),
            ("list.create", "councillors".into()),
            ("list.rename", "councillors to Our councillors".into()),
            ("suppression.add", format!("{x} (complaint)")),
            ("suppression.remove", x.clone()),
            ("subscriber.erase", subscriber.clone()),
        ];
        let expected: Vec<(String, String)> =
            expected.into_iter().map(|(a, d)| (a.to_owned(), d)).collect();
        assert_eq!(ours, expected);
        assert!(log.iter().all(|e| e.actor == "cli" || e.ip.is_some()), "with the IP");
    }

    async fn the_lists_suppressions_bounces_and_events_pages_show_what_is_stored_a_page_at_a_time(db) {
        let (admin, owner) = office(db, &[]).await;
        let store = &*admin.app.store;
        person(store, "jo@example.org", None).await;
        person(store, "al@example.org", None).await;
        store.set_blocklisted(&email("al@example.org"), true).await.unwrap();
        let lists = text(admin.get("/admin/lists", Some(&owner)).await).await;
        assert!(lists.contains("<td>1</td>\n<td>0</td>\n<td>0</td>\n<td>1</td>"), "{lists}");
        for i in 0..55 {
            let address = email(&format!("b{i:02}@example.org"));
            person(store, address.as_str(), None).await;
            store
                .record_event(&NewEvent {
                    kind: if i % 2 == 0 { EventKind::Bounce } else { EventKind::Join },
                    source: EventSource::Mailbox,
                    email: &address,
                    list_id: None,
                    delivery: None,
                    status: Some("5.1.1"),
                    reason: "no such user",
                })
                .await
                .unwrap();
            store.add_suppression(&address, SuppressionReason::HardBounce, "", EventSource::Admin).await.unwrap();
        }
        // Newest first: the older page of events holds earlier ones, that
        // of suppressions the oldest.
        for (path, rows, newest, older_holds) in [
            ("/admin/events", 50, "b54@", "b29@"),
            ("/admin/bounces", 28, "b54@", ""),
            ("/admin/suppressions", 50, "b54@", "b00@"),
        ] {
            let page = text(admin.get(path, Some(&owner)).await).await;
            assert!(page.matches("@example.org").count() > rows, "{path}: {page}");
            assert!(page.contains(newest), "{path}");
            if older_holds.is_empty() {
                assert!(!page.contains("Older</a>"), "{path} has one page");
                continue;
            }
            let marker = format!("href=\"{path}?");
            let start = page.find(&marker).expect("an older page") + marker.len() - 1;
            let next = page[start..start + page[start..].find('"').unwrap()].replace("&amp;", "&");
            let older = admin.get(&format!("{path}{next}"), Some(&owner)).await;
            assert_eq!(older.status(), 200);
            let older = text(older).await;
            assert!(older.contains(older_holds) && !older.contains(newest), "{path}{next}: {older}");
        }
        let kinds = text(admin.get("/admin/events?kind=join", Some(&owner)).await).await;
        assert!(kinds.contains("b01@example.org") && !kinds.contains("b00@example.org"));
        assert_eq!(admin.get("/admin/events?kind=boss", Some(&owner)).await.status(), 422);
    }

    async fn script_in_a_name_an_attribute_or_a_list_is_escaped(db) {
        let (admin, owner) = office(db, &[]).await;
        let evil = "<script>alert(1)</script>";
        let added = admin
            .submit("/admin/subscribers", &owner, &[
                ("email", "jo@example.org"),
                ("name", evil),
                ("list", "members"),
                ("attributes", "note=<img src=x onerror=alert(2)>"),
            ])
            .await;
        assert_eq!(added.status(), 303);
        admin.submit("/admin/lists/members/rename", &owner, &[("name", evil)]).await;
        let jo = added.headers()["location"].to_str().unwrap().to_owned();
        for path in [jo.as_str(), "/admin/subscribers?q=jo", "/admin/lists", "/admin/subscribers/import"] {
            let page = text(admin.get(path, Some(&owner)).await).await;
            assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "{path}: {page}");
            assert!(page.contains("&lt;script&gt;"), "{path}");
        }
        let refused = admin.submit("/admin/subscribers", &owner, &[("email", evil), ("list", "members")]).await;
        assert_eq!(refused.status(), 422);
        assert!(!text(refused).await.contains("<script>alert"));
        let lists = admin.app.store.lists().await.unwrap();
        assert_eq!(lists[0].slug, ListSlug::parse("members").unwrap());
    }

    async fn an_upload_interrupted_by_a_crash_is_resumed_by_the_next_start_and_imports_each_row_once(db) {
        const ROWS: usize = 40_000;
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Single)).await.unwrap();
        let actor = necmail::admin::Actor::cli();
        let owner = "owner@example.org";
        let (_, token) = necmail::admin::add_account(&*store, owner, Role::Owner, &actor)
            .await
            .unwrap();
        let env = [("NECMAIL_ADMIN_ADDR", "public".to_owned())];
        let daemon = Daemon::start(db, &env).await;
        let owner = sign_in_to(&daemon, &token).await;
        let mut csv = String::from("email,name\n");
        for i in 0..ROWS {
            if i % 1000 == 999 {
                csv.push_str(&format!("not an address {i},Nobody\n"));
            } else {
                csv.push_str(&format!("member{i}@example.org,Member {i}\n"));
            }
        }
        let (content_type, body) = crate::admin::multipart(
            &[("csrf", &owner.csrf), ("list", "members"), ("confirmed", "yes")],
            "people.csv",
            csv.as_bytes(),
        );
        let sent = client()
            .post(daemon.url("/admin/subscribers/upload"))
            .header("Cookie", &owner.cookie)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 303, "{}", sent.text().await.unwrap());
        let page = sent.headers()["location"].to_str().unwrap().to_owned();
        let job = page.rsplit('/').next().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while store.import_job(&job).await.unwrap().unwrap().counts.rows() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the import never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        daemon.kill().await;
        let killed = store.import_job(&job).await.unwrap().unwrap();
        assert_eq!(killed.state, ImportState::Running, "killed mid-import: {killed:?}");
        assert!(killed.counts.rows() < ROWS as u64, "{killed:?}");

        let daemon = Daemon::start(db, &env).await;
        let done = loop {
            let job = store.import_job(&job).await.unwrap().unwrap();
            if job.state != ImportState::Running {
                break job;
            }
            assert!(tokio::time::Instant::now() < deadline, "the import was not resumed: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(done.state, ImportState::Done, "{done:?}");
        let rejected = (ROWS / 1000) as u64;
        assert_eq!(done.counts.imported, ROWS as u64 - rejected, "{done:?}");
        assert_eq!(done.counts.rejected, rejected, "{done:?}");
        assert_eq!(done.counts.rows(), ROWS as u64, "each row counted once: {done:?}");
        let html = client()
            .get(daemon.url(&page))
            .header("Cookie", &owner.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("The import is done"), "{html}");
        let members = ListSlug::parse("members").unwrap();
        let filter = SubscriberFilter { list: Some(members), ..SubscriberFilter::default() };
        let mut seen = std::collections::BTreeSet::new();
        let mut after = 0;
        loop {
            let page = store.subscribers(&filter, after, 5000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            for s in &page {
                assert_eq!(s.lists.len(), 1, "{s:?}");
                assert!(seen.insert(s.email.as_str().to_owned()), "twice: {s:?}");
            }
        }
        let expected: std::collections::BTreeSet<String> = (0..ROWS)
            .filter(|i| i % 1000 != 999)
            .map(|i| format!("member{i}@example.org"))
            .collect();
        assert!(seen == expected, "{} subscribers for {} rows", seen.len(), expected.len());
        let rejects = std::fs::read_to_string(db.dir.path().join(&done.rejects)).unwrap();
        assert_eq!(rejects.lines().count() as u64, 1 + rejected, "each reject once: {rejects}");
        daemon.stop().await;
    }
}

fn client() -> reqwest::Client {
    http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sets the owner's password from the one-time link `token` on the real
/// daemon and signs in.
async fn sign_in_to(daemon: &Daemon, token: &str) -> Session {
    const PASSWORD: &str = "a long enough password for the test";
    let link = daemon.url(&format!("/admin/set-password/{token}"));
    let http = client();
    let csrf = csrf_of(&http.get(&link).send().await.unwrap().text().await.unwrap());
    let set = [
        ("csrf", csrf.as_str()),
        ("password", PASSWORD),
        ("again", PASSWORD),
    ];
    assert_eq!(
        http.post(&link).form(&set).send().await.unwrap().status(),
        200
    );
    let login = daemon.url("/admin/login");
    let csrf = csrf_of(&http.get(&login).send().await.unwrap().text().await.unwrap());
    let form = [
        ("csrf", csrf.as_str()),
        ("email", "owner@example.org"),
        ("password", PASSWORD),
    ];
    let signed_in = http.post(&login).form(&form).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let account = http
        .get(daemon.url("/admin/account"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&account.text().await.unwrap());
    Session { cookie, csrf }
}
