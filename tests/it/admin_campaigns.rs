//! The web admin's campaign pages over HTTP, on both backends: a campaign
//! made in the admin and followed to done while the daemon's scheduler and
//! delivery workers send it to the test SMTP server; the confirmation steps;
//! roles, CSRF, the audit log and escaping.

use std::sync::Arc;
use std::time::Duration;

use necmail::admin::Role;
use necmail::campaigns::{CampaignState, CampaignStore};
use necmail::delivery::supervisor::Supervisor;
use necmail::store::Store;
use tokio::sync::watch;

use crate::admin::{Admin, Session, assert_to_login};
use crate::support::app::spawn_app_with;
use crate::support::on_both_backends;
use crate::support::smtp::SmtpServer;

const WAIT: Duration = Duration::from_secs(20);

/// An owner and an editor, signed in.
struct Office {
    admin: Admin,
    owner: Session,
    editor: Session,
}

impl Office {
    async fn open(admin: Admin) -> Office {
        admin.account("owner@example.org", Role::Owner).await;
        admin.account("editor@example.org", Role::Editor).await;
        let owner = admin.sign_in("owner@example.org").await;
        let editor = admin.sign_in("editor@example.org").await;
        Office {
            admin,
            owner,
            editor,
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.admin.app.store
    }

    async fn page(&self, path: &str, who: &Session) -> String {
        let response = self.admin.get(path, Some(who)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    async fn state(&self, id: i64) -> CampaignState {
        self.store().campaign(id).await.unwrap().state
    }

    async fn actions(&self) -> Vec<String> {
        self.admin
            .audit()
            .await
            .into_iter()
            .rev()
            .map(|e| e.action)
            .filter(|a| a.starts_with("campaign."))
            .collect()
    }
}

/// The id a redirect to a campaign's page names.
fn campaign_in(response: &reqwest::Response) -> i64 {
    assert_eq!(response.status(), 303, "{}", response.url());
    let location = response.headers()["location"].to_str().unwrap();
    let id = location.strip_prefix("/admin/campaigns/").expect(location);
    id.parse().unwrap()
}

/// The hidden fields of the form in `page` that posts to `action`.
fn form_fields(page: &str, action: &str) -> Vec<(String, String)> {
    let start = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action} in:\n{page}"));
    let form = &page[start..page[start..].find("</form>").unwrap() + start];
    form.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .map(|tag| (attribute(tag, "name"), attribute(tag, "value")))
        .collect()
}

fn attribute(tag: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker).unwrap() + marker.len();
    tag[start..start + tag[start..].find('"').unwrap()]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// Posts the confirmation form of `page` to `action`, as a person would.
async fn confirm(office: &Office, page: &str, action: &str, who: &Session) -> reqwest::Response {
    let fields = form_fields(page, action);
    assert!(
        fields.contains(&("confirm".into(), "yes".into())),
        "{fields:?}"
    );
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    office.admin.post(action, Some(who), &fields).await
}

/// The daemon's scheduler and delivery workers, sending to `server`, until
/// dropped.
pub(crate) struct Daemon {
    _stop: watch::Sender<bool>,
}

pub(crate) fn daemon(store: &Arc<dyn Store>, server: &SmtpServer) -> Daemon {
    let config = crate::campaigns::config(server, &[]);
    let engine = Arc::new(crate::campaigns::engine(store, config.clone()));
    let transport = necmail::delivery::transport(&config).unwrap();
    let supervisor = Supervisor::new(Arc::clone(store) as Arc<dyn CampaignStore>, engine);
    let scheduler = crate::scheduler::scheduler_with(store, config, transport)
        .wake_on_start(supervisor.waker());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(scheduler.run(stopped.clone()));
    tokio::spawn(supervisor.run(stopped));
    Daemon { _stop: stop }
}

on_both_backends! {
    async fn a_campaign_made_in_the_admin_is_sent_and_followed_to_done_on_its_page(db) {
        let (store, report) = crate::campaigns::world(db, 3).await;
        let server = SmtpServer::start().await;
        let app = spawn_app_with(db, &[("NECMAIL_SMTP_URL", &server.url())]).await;
        let office = Office::open(Admin::with(app)).await;
        let (admin, owner) = (&office.admin, &office.owner);
        let form = office.page(&format!("/admin/campaigns/new?report={report}"), owner).await;
        assert!(form.contains(&format!("<option value=\"{report}\" selected>")), "{form}");
        assert!(form.contains("name=\"list:members\""), "{form}");
        let made = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report.to_string()),
                ("list:members", "on"),
                ("when", "now"),
            ])
            .await;
        let id = campaign_in(&made);
        assert_eq!(office.state(id).await, CampaignState::Scheduled);
        let listed = office.page("/admin/campaigns", owner).await;
        assert!(listed.contains(&format!("href=\"/admin/campaigns/{id}\"")), "{listed}");
        assert!(listed.contains("Labour NEC Report – March 2026"), "{listed}");

        let tested = admin
            .submit(&format!("/admin/campaigns/{id}/test"), owner, &[("to", "tester@example.org")])
            .await;
        assert_eq!(tested.status(), 200);
        assert!(tested.text().await.unwrap().contains("Test message sent"));
        let test = server.wait_for(1, WAIT).await;
        assert_eq!(test[0].header("To").as_deref(), Some("tester@example.org"));
        let subject = test[0].header("Subject").unwrap();
        assert!(subject.starts_with("[TEST] "), "{subject}");

        let waiting = office.page(&format!("/admin/campaigns/{id}"), owner).await;
        assert!(waiting.contains("http-equiv=\"refresh\""), "it refreshes as it starts");

        let _daemon = daemon(&store, &server);
        let deadline = tokio::time::Instant::now() + WAIT;
        let done = loop {
            let page = office.page(&format!("/admin/campaigns/{id}"), owner).await;
            if page.contains("state-done") {
                break page;
            }
            assert!(page.contains("http-equiv=\"refresh\""), "{page}");
            assert!(tokio::time::Instant::now() < deadline, "not done:\n{page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!done.contains("http-equiv=\"refresh\""), "a done campaign stays still");
        assert!(done.contains("3 of 3 done (100%)"), "{done}");
        assert!(done.contains("<dt>Sent</dt><dd>3</dd>"), "{done}");
        for n in 0..3 {
            assert!(done.contains(&format!("title=\"m00{n}@example.org\">m00{n}@example.org</span>")), "{done}");
        }
        assert_eq!(server.messages().len(), 4, "three members and the test");
        assert_eq!(office.actions().await, ["campaign.create", "campaign.test"]);
        let dashboard = office.page("/admin", owner).await;
        assert!(dashboard.contains("Nothing is sending."), "{dashboard}");
    }

    async fn sending_to_more_than_a_hundred_people_asks_first_with_the_count_and_subject(db) {
        let (_, report) = crate::campaigns::world(db, 101).await;
        let office = Office::open(Admin::start(db).await).await;
        let (admin, owner) = (&office.admin, &office.owner);
        let fields = [
            ("report", report.to_string()),
            ("list:members", "on".into()),
            ("when", "now".into()),
            ("subject", "Budget <b>news</b>".into()),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let asked = admin.submit("/admin/campaigns/new", owner, &fields).await;
        assert_eq!(asked.status(), 200);
        let page = asked.text().await.unwrap();
        assert!(page.contains("<dt>Recipients</dt><dd>101</dd>"), "{page}");
        let subject = "Subject: <strong>Budget &lt;b&gt;news&lt;/b&gt;</strong>";
        assert!(page.contains(subject), "{page}");
        assert!(page.contains("Yes, send it"), "{page}");
        assert!(office.store().campaigns().await.unwrap().is_empty(), "nothing yet");
        let id = campaign_in(&confirm(&office, &page, "/admin/campaigns/new", owner).await);
        let campaign = office.store().campaign(id).await.unwrap();
        assert_eq!(campaign.state, CampaignState::Scheduled);
        assert_eq!(campaign.subject.as_deref(), Some("Budget <b>news</b>"));

        // An editor prepares one, held without a question; the owner's
        // approval asks.
        let held = admin
            .submit("/admin/campaigns/new", &office.editor, &[
                ("report", &report.to_string()),
                ("list:members", "on"),
                ("when", "now"),
                ("again", "on"),
            ])
            .await;
        let held = campaign_in(&held);
        assert_eq!(office.state(held).await, CampaignState::Held);
        let approve = format!("/admin/campaigns/{held}/approve");
        let asked = admin.submit(&approve, owner, &[]).await;
        assert_eq!(asked.status(), 200);
        let page = asked.text().await.unwrap();
        assert!(page.contains("<dt>Recipients</dt><dd>101</dd>"), "{page}");
        assert!(page.contains("Subject: <strong>Labour NEC Report"), "the template's: {page}");
        assert_eq!(office.state(held).await, CampaignState::Held, "not yet");
        assert_eq!(campaign_in(&confirm(&office, &page, &approve, owner).await), held);
        assert_eq!(office.state(held).await, CampaignState::Scheduled);
        assert_eq!(
            office.actions().await,
            ["campaign.create", "campaign.create", "campaign.approve"]
        );
    }

    async fn a_hundred_or_fewer_go_without_a_question_and_nobody_is_refused(db) {
        let (store, report) = crate::campaigns::world(db, 2).await;
        let office = Office::open(Admin::start(db).await).await;
        let (admin, owner) = (&office.admin, &office.owner);
        let report = report.to_string();
        let nobody = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:councillors", "on"),
                ("when", "now"),
            ])
            .await;
        assert_eq!(nobody.status(), 422);
        assert!(nobody.text().await.unwrap().contains("Nobody would get it"));
        let no_list = admin
            .submit("/admin/campaigns/new", owner, &[("report", &report), ("when", "now")])
            .await;
        assert_eq!(no_list.status(), 422);
        let bad_filter = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:members", "on"),
                ("where", "role"),
                ("when", "now"),
            ])
            .await;
        assert_eq!(bad_filter.status(), 422);
        let many = vec!["role=councillor"; 5000].join(" ");
        let huge_filter = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:members", "on"),
                ("where", &many),
                ("when", "now"),
            ])
            .await;
        assert_eq!(huge_filter.status(), 422);
        let page = huge_filter.text().await.unwrap();
        assert!(page.contains("at most 20 attribute values"), "{page}");
        let past = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:members", "on"),
                ("when", "at"),
                ("at", "2020-01-01T09:00"),
            ])
            .await;
        assert_eq!(past.status(), 422);
        assert!(past.text().await.unwrap().contains("has passed"));
        let long = "x".repeat(201);
        let too_long = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:members", "on"),
                ("when", "now"),
                ("subject", &long),
            ])
            .await;
        assert_eq!(too_long.status(), 422);
        let page = too_long.text().await.unwrap();
        assert!(page.contains("The subject must be one line of at most 200 characters"), "{page}");
        assert!(store.campaigns().await.unwrap().is_empty(), "nothing made");
        let later = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report),
                ("list:members", "on"),
                ("when", "at"),
                ("at", "2099-01-01T09:00"),
            ])
            .await;
        let id = campaign_in(&later);
        let campaign = store.campaign(id).await.unwrap();
        assert_eq!(campaign.state, CampaignState::Scheduled);
        assert_eq!(campaign.send_at.unwrap().to_rfc3339(), "2099-01-01T09:00:00+00:00");
    }

    async fn a_report_sent_to_a_list_is_not_sent_there_again_unless_asked(db) {
        let (store, report) = crate::campaigns::world(db, 2).await;
        crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let report = report.to_string();
        let fields = [("report", report.as_str()), ("list:members", "on"), ("when", "now")];
        let refused = office.admin.submit("/admin/campaigns/new", &office.owner, &fields).await;
        assert_eq!(refused.status(), 422);
        let page = refused.text().await.unwrap();
        assert!(page.contains("went to members in campaign 1"), "{page}");
        assert!(page.contains("name=\"list:members\" value=\"on\" checked"), "kept: {page}");
        let mut again = fields.to_vec();
        again.push(("again", "on"));
        campaign_in(&office.admin.submit("/admin/campaigns/new", &office.owner, &again).await);
    }

    async fn owners_pause_resume_retry_and_cancel_after_a_confirmation(db) {
        let (store, report) = crate::campaigns::world(db, 3).await;
        let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let (admin, owner) = (&office.admin, &office.owner);
        let path = |action: &str| format!("/admin/campaigns/{id}/{action}");
        let page = office.page(&format!("/admin/campaigns/{id}"), owner).await;
        assert!(page.contains("http-equiv=\"refresh\""), "it refreshes while sending");
        assert!(page.contains("0 of 3 done"), "{page}");
        assert_eq!(campaign_in(&admin.submit(&path("pause"), owner, &[]).await), id);
        let campaign = store.campaign(id).await.unwrap();
        assert_eq!(campaign.state, CampaignState::Paused);
        assert_eq!(campaign.pause_reason.as_deref(), Some("paused by owner@example.org"));
        let page = office.page(&format!("/admin/campaigns/{id}"), owner).await;
        assert!(page.contains("paused by owner@example.org") && !page.contains("refresh\""));
        assert_eq!(campaign_in(&admin.submit(&path("resume"), owner, &[]).await), id);
        assert_eq!(office.state(id).await, CampaignState::Sending);
        assert_eq!(campaign_in(&admin.submit(&path("retry"), owner, &[]).await), id);

        let asked = admin.submit(&path("cancel"), owner, &[]).await;
        assert_eq!(asked.status(), 200);
        let page = asked.text().await.unwrap();
        assert!(page.contains("Cancel this campaign?"), "{page}");
        assert!(page.contains("has gone to 0 of 3 recipients; the 3 not sent yet never will be"));
        assert_eq!(office.state(id).await, CampaignState::Sending, "not yet");
        assert_eq!(campaign_in(&confirm(&office, &page, &path("cancel"), owner).await), id);
        assert_eq!(office.state(id).await, CampaignState::Cancelled);
        let page = office.page(&format!("/admin/campaigns/{id}"), owner).await;
        assert!(!page.contains(&path("cancel")), "nothing left to cancel");
        let again = admin.submit(&path("resume"), owner, &[]).await;
        assert_eq!(again.status(), 422, "a cancelled campaign stays cancelled");

        let log = admin.audit().await;
        let lines: Vec<(String, String, String)> = log
            .iter()
            .rev()
            .filter(|e| e.action.starts_with("campaign."))
            .map(|e| (e.actor.clone(), e.action.clone(), e.detail.clone()))
            .collect();
        let title = "1 Labour NEC Report – March 2026";
        let expected = [
            ("campaign.pause", title.to_owned()),
            ("campaign.resume", title.to_owned()),
            ("campaign.retry", format!("{title}: 0 deliveries")),
            ("campaign.cancel", title.to_owned()),
        ];
        let expected: Vec<(String, String, String)> = expected
            .into_iter()
            .map(|(a, d)| ("owner@example.org".to_owned(), a.to_owned(), d))
            .collect();
        assert_eq!(lines, expected);
        assert!(log.iter().filter(|e| e.action.starts_with("campaign.")).all(|e| e.ip.is_some()));
    }

    async fn an_editor_prepares_and_tests_but_neither_lets_go_nor_sees_recipients(db) {
        let (store, report) = crate::campaigns::world(db, 3).await;
        let started = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let (admin, editor) = (&office.admin, &office.editor);
        let form = office.page("/admin/campaigns/new", editor).await;
        assert!(form.contains("An owner approves the campaign before it is sent."));
        let made = admin
            .submit("/admin/campaigns/new", editor, &[
                ("report", &report.to_string()),
                ("list:councillors", "on"),
                ("list:members", "on"),
                ("when", "now"),
                ("again", "on"),
            ])
            .await;
        let id = campaign_in(&made);
        assert_eq!(office.state(id).await, CampaignState::Held);
        let refused = admin.submit(&format!("/admin/campaigns/{id}/approve"), editor, &[]).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(office.state(id).await, CampaignState::Held);
        let page = office.page(&format!("/admin/campaigns/{started}"), editor).await;
        assert!(page.contains("<dt>Queued</dt><dd>3</dd>"), "{page}");
        assert!(!page.contains("m000@example.org"), "no subscriber data: {page}");
        assert!(!page.contains("/approve\"") && !page.contains("/cancel\""), "{page}");
        let tested = admin
            .submit(&format!("/admin/campaigns/{id}/test"), editor, &[("to", "m000@example.org")])
            .await;
        assert_eq!(tested.status(), 200);
        let sent = admin.app.wait_for_emails(1).await;
        assert!(sent[0].contains("To: editor@example.org"), "only to themselves: {}", sent[0]);
        let log = admin.audit().await;
        let test = log.iter().find(|e| e.action == "campaign.test").unwrap();
        assert_eq!(test.actor, "editor@example.org");
        assert!(test.detail.ends_with("to editor@example.org"), "{}", test.detail);
    }

    async fn the_recipient_table_searches_filters_and_pages_by_keyset(db) {
        let (store, report) = crate::campaigns::world(db, 60).await;
        let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let owner = &office.owner;
        let base = format!("/admin/campaigns/{id}");
        let first = office.page(&base, owner).await;
        assert_eq!(first.matches("<span class=\"clip\"").count(), 50, "{first}");
        assert!(first.contains("m049@example.org") && !first.contains("m050@example.org"));
        let next = first.split("<a href=\"").find(|l| l.contains("after=")).unwrap();
        let next = next[..next.find('"').unwrap()].replace("&amp;", "&");
        let second = office.page(&next, owner).await;
        assert_eq!(second.matches("<span class=\"clip\"").count(), 10, "{second}");
        assert!(second.contains("m059@example.org") && !second.contains("m049@example.org"));
        assert!(second.contains("First</a>") && !second.contains(">Next</a>"));
        let found = office.page(&format!("{base}?q=M05"), owner).await;
        assert_eq!(found.matches("<span class=\"clip\"").count(), 10, "{found}");
        let wild = office.page(&format!("{base}?q=%25"), owner).await;
        assert_eq!(wild.matches("<span class=\"clip\"").count(), 0, "% is a character");
        let sent = office.page(&format!("{base}?state=sent"), owner).await;
        assert!(sent.contains("Nobody here."), "{sent}");
        let queued = office.page(&format!("{base}?state=queued&q=m00"), owner).await;
        assert_eq!(queued.matches("<span class=\"clip\"").count(), 10, "{queued}");
        let unknown = office.admin.get(&format!("{base}?state=lost"), Some(owner)).await;
        assert_eq!(unknown.status(), 404);
    }

    async fn the_recipient_search_finds_addresses_by_their_start_in_any_case_a_page_at_a_time(db) {
        let (store, report) = crate::campaigns::world(db, 60).await;
        let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let owner = &office.owner;
        let base = format!("/admin/campaigns/{id}");
        let rows = |page: &str| page.matches("<span class=\"clip\"").count();
        let first = office.page(&format!("{base}?state=queued&q=M0"), owner).await;
        assert_eq!(rows(&first), 50, "{first}");
        assert!(first.contains("m049@example.org") && !first.contains("m050@example.org"));
        let next = first.split("<a href=\"").find(|l| l.contains("from=")).unwrap();
        let next = next[..next.find('"').unwrap()].replace("&amp;", "&");
        assert!(next.contains("state=queued") && next.contains("q=M0"), "{next}");
        let second = office.page(&next, owner).await;
        assert_eq!(rows(&second), 10, "{second}");
        assert!(second.contains("m050@example.org") && second.contains("m059@example.org"));
        assert!(!second.contains("m049@example.org") && !second.contains(">Next</a>"));
        assert!(second.contains("First</a>"), "{second}");
        let middle = office.page(&format!("{base}?q=example.org"), owner).await;
        assert!(middle.contains("Nobody here."), "only the start of an address: {middle}");
        let sent = office.page(&format!("{base}?state=sent&q=m0"), owner).await;
        assert!(sent.contains("Nobody here."), "{sent}");
        let hostile = office
            .page(&format!("{base}?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"), owner)
            .await;
        assert!(!hostile.contains("<script>alert(1)"), "{hostile}");
        assert!(hostile.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{hostile}");
    }

    async fn the_campaign_list_pages_newest_first_by_keyset(db) {
        let (store, report) = crate::campaigns::world(db, 1).await;
        for _ in 0..52 {
            let new = necmail::campaigns::NewCampaign {
                report: necmail::reports::ReportRef::Id(report),
                lists: vec![necmail::lists::ListSlug::parse("members").unwrap()],
                filter: Vec::new(),
                send_at: None,
                subject: None,
                hold: true,
                allow_excerpt: false,
            };
            store.create_campaign(&new).await.unwrap();
        }
        let office = Office::open(Admin::start(db).await).await;
        let first = office.page("/admin/campaigns", &office.owner).await;
        assert_eq!(first.matches("state-held").count(), 50);
        assert!(first.contains("href=\"/admin/campaigns/52\""), "{first}");
        assert!(!first.contains("/campaigns/2\""), "{first}");
        assert!(first.contains("href=\"/admin/campaigns?before=3\""), "{first}");
        let older = office.page("/admin/campaigns?before=3", &office.owner).await;
        assert_eq!(older.matches("state-held").count(), 2);
        assert!(older.contains("Newest</a>") && !older.contains("Older</a>"));
        let dashboard = office.page("/admin", &office.owner).await;
        assert!(dashboard.contains("href=\"/admin/campaigns/52\""), "held ones wait: {dashboard}");
    }

    async fn every_campaign_form_refuses_a_missing_or_foreign_csrf_token(db) {
        let (store, report) = crate::campaigns::world(db, 3).await;
        let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let admin = &office.admin;
        let other = admin.sign_in("owner@example.org").await;
        let report = report.to_string();
        let forms = [
            "/admin/campaigns/new".to_owned(),
            format!("/admin/campaigns/{id}/test"),
            format!("/admin/campaigns/{id}/approve"),
            format!("/admin/campaigns/{id}/pause"),
            format!("/admin/campaigns/{id}/resume"),
            format!("/admin/campaigns/{id}/cancel"),
            format!("/admin/campaigns/{id}/retry"),
        ];
        for path in &forms {
            for token in [None, Some(""), Some(other.csrf.as_str())] {
                let mut fields = vec![
                    ("report", report.as_str()),
                    ("list:members", "on"),
                    ("when", "now"),
                    ("confirm", "yes"),
                ];
                fields.extend(token.map(|t| ("csrf", t)));
                let refused = admin.post(path, Some(&office.owner), &fields).await;
                assert_eq!(refused.status(), 403, "{path} with {token:?}");
            }
            assert_to_login(&admin.post(path, None, &[]).await);
        }
        assert_eq!(store.campaigns().await.unwrap().len(), 1, "nothing made");
        assert_eq!(office.state(id).await, CampaignState::Sending, "nothing changed");
        assert!(admin.app.emails().is_empty(), "no test sent");
        assert!(office.actions().await.is_empty());
    }

    async fn html_in_a_report_title_or_subject_is_escaped_on_every_campaign_page(db) {
        let (store, _) = crate::campaigns::world(db, 2).await;
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let report = crate::campaigns::paste(&*store, evil, "## Finance\n\nFine.\n").await.id;
        let id = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let office = Office::open(Admin::start(db).await).await;
        let (admin, owner) = (&office.admin, &office.owner);
        let made = admin
            .submit("/admin/campaigns/new", owner, &[
                ("report", &report.to_string()),
                ("list:members", "on"),
                ("where", evil),
                ("subject", evil),
                ("when", "now"),
            ])
            .await;
        assert_eq!(made.status(), 422);
        let mut pages = vec![made.text().await.unwrap()];
        for path in ["/admin/campaigns".to_owned(), format!("/admin/campaigns/{id}"),
                     "/admin/campaigns/new".to_owned(), "/admin".to_owned()] {
            pages.push(office.page(&path, owner).await);
        }
        let cancel = admin.submit(&format!("/admin/campaigns/{id}/cancel"), owner, &[]).await;
        pages.push(cancel.text().await.unwrap());
        for page in &pages {
            assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "{page}");
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        }
    }
}
