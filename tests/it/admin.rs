//! The web admin over HTTP, on both backends: accounts and sign-in,
//! sessions, CSRF, roles, the audit log and the dashboard; and `necmail
//! admin`.

use chrono::{Duration, Utc};
use necmail::admin::{self, Actor, NewSession, Role};

use crate::support::app::{TestApp, csrf_of, spawn_app, spawn_app_with};
use crate::support::cli::{necmail, run, run_command};
use crate::support::{TestDb, on_both_backends};

pub(crate) const PASSWORD: &str = "a long enough password";

/// The web admin of a running application, on its own listener.
pub(crate) struct Admin {
    pub(crate) app: TestApp,
    base: String,
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Admin {
    pub(crate) async fn start(db: &TestDb) -> Admin {
        Admin::with(spawn_app(db).await)
    }

    /// The admin of `app`, trusting 127.0.0.1 as a proxy so that a test can
    /// sign in from several addresses.
    pub(crate) fn with(app: TestApp) -> Admin {
        let base = app.admin.clone().expect("the admin has its own listener");
        Admin { app, base }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn get(&self, path: &str, session: Option<&Session>) -> reqwest::Response {
        let mut request = self.app.client.get(self.url(path));
        if let Some(s) = session {
            request = request.header("Cookie", &s.cookie);
        }
        request.send().await.expect("a response")
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        session: Option<&Session>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.app.client.post(self.url(path)).form(fields);
        if let Some(s) = session {
            request = request.header("Cookie", &s.cookie);
        }
        request.send().await.expect("a response")
    }

    /// Posts `fields` with the session's CSRF token.
    pub(crate) async fn submit(
        &self,
        path: &str,
        s: &Session,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut all = vec![("csrf", s.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, Some(s), &all).await
    }

    /// Creates an account through the domain and returns its link's path.
    pub(crate) async fn add(&self, email: &str, role: Role) -> String {
        let (_, token) = admin::add_account(&*self.app.store, email, role, &Actor::cli())
            .await
            .unwrap();
        format!("/admin/set-password/{token}")
    }

    /// Sets the password from the one-time link, as its owner would.
    pub(crate) async fn set_password(&self, link: &str, password: &str) -> reqwest::Response {
        let page = self.get(link, None).await;
        assert_eq!(page.status(), 200, "GET {link}");
        let csrf = csrf_of(&page.text().await.unwrap());
        self.post(
            link,
            None,
            &[("csrf", &csrf), ("password", password), ("again", password)],
        )
        .await
    }

    /// An account with [`PASSWORD`], ready to sign in.
    pub(crate) async fn account(&self, email: &str, role: Role) {
        let link = self.add(email, role).await;
        assert_eq!(self.set_password(&link, PASSWORD).await.status(), 200);
    }

    /// Posts the sign-in form, from `from` when given (X-Forwarded-For).
    pub(crate) async fn try_sign_in(
        &self,
        email: &str,
        password: &str,
        code: &str,
        from: Option<&str>,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let page = self.get("/admin/login", None).await;
        let csrf = csrf_of(&page.text().await.unwrap());
        let mut request = self.app.client.post(self.url("/admin/login")).form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("code", code),
        ]);
        if let Some(ip) = from {
            request = request.header("X-Forwarded-For", ip);
        }
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.expect("a response")
    }

    pub(crate) async fn sign_in(&self, email: &str) -> Session {
        let response = self.try_sign_in(email, PASSWORD, "", None, None).await;
        self.session_from(response).await
    }

    /// The session a successful sign-in began.
    pub(crate) async fn session_from(&self, response: reqwest::Response) -> Session {
        assert_eq!(response.status(), 303, "signed in");
        assert_eq!(response.headers()["location"], "/admin");
        let cookie = set_cookie(&response);
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let page = self.get("/admin/account", Some(&session)).await;
        assert_eq!(page.status(), 200);
        session.csrf = csrf_of(&page.text().await.unwrap());
        session
    }

    /// Turns on two-factor sign-in from the account page; returns the secret.
    pub(crate) async fn turn_on_totp(&self, s: &Session) -> String {
        let page = self
            .get("/admin/account", Some(s))
            .await
            .text()
            .await
            .unwrap();
        let marker = "name=\"secret\" value=\"";
        let start = page.find(marker).expect("a new secret") + marker.len();
        let secret = page[start..start + page[start..].find('"').unwrap()].to_owned();
        let wrong = [("secret", secret.as_str()), ("code", "000000")];
        assert_eq!(
            self.submit("/admin/account/totp", s, &wrong).await.status(),
            422
        );
        let code = admin::totp::current_code(&secret).unwrap();
        let right = [("secret", secret.as_str()), ("code", code.as_str())];
        assert_eq!(
            self.submit("/admin/account/totp", s, &right).await.status(),
            200
        );
        secret
    }

    /// Posts a multipart form to `path`: `fields` in order (the CSRF token
    /// among them when wanted), then `file` named `file_name`.
    pub(crate) async fn upload(
        &self,
        path: &str,
        session: &Session,
        fields: &[(&str, &str)],
        file_name: &str,
        file: &[u8],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let (content_type, body) = multipart(fields, file_name, file);
        self.app
            .client
            .post(self.url(path))
            .header("Cookie", &session.cookie)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
    }

    pub(crate) async fn audit(&self) -> Vec<admin::AuditEntry> {
        self.app.store.audit_log(None, 1000).await.unwrap()
    }
}

/// A multipart/form-data body: the fields in order, then the file.
pub(crate) fn multipart(
    fields: &[(&str, &str)],
    file_name: &str,
    file: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "necmail-test-boundary-7d1f0c";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The `name=value` of a response's Set-Cookie.
fn set_cookie(response: &reqwest::Response) -> String {
    let header = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie")
        .to_str()
        .unwrap();
    header.split(';').next().unwrap().to_owned()
}

#[track_caller]
pub(crate) fn assert_to_login(response: &reqwest::Response) {
    assert_eq!(response.status(), 303, "{}", response.url());
    assert_eq!(response.headers()["location"], "/admin/login");
}

/// Every admin page: method, path, and whether only an owner may use it.
const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/admin", false),
    ("GET", "/admin/account", false),
    ("POST", "/admin/account/password", false),
    ("POST", "/admin/account/totp", false),
    ("POST", "/admin/account/totp/off", false),
    ("POST", "/admin/logout", false),
    ("POST", "/admin/logout/everywhere", false),
    ("GET", "/admin/reports", false),
    ("GET", "/admin/reports/new", false),
    ("POST", "/admin/reports/new", false),
    ("GET", "/admin/reports/1", false),
    ("POST", "/admin/reports/1", false),
    ("GET", "/admin/reports/1/preview/member", false),
    ("POST", "/admin/reports/1/delete", false),
    ("GET", "/admin/accounts", true),
    ("POST", "/admin/accounts", true),
    ("POST", "/admin/accounts/1/reset", true),
    ("POST", "/admin/accounts/1/remove", true),
    ("POST", "/admin/settings", true),
    ("GET", "/admin/audit", true),
    ("GET", "/admin/campaigns", false),
    ("GET", "/admin/campaigns/new", false),
    ("POST", "/admin/campaigns/new", false),
    ("GET", "/admin/campaigns/1", false),
    ("POST", "/admin/campaigns/1/test", false),
    ("POST", "/admin/campaigns/1/approve", true),
    ("POST", "/admin/campaigns/1/pause", true),
    ("POST", "/admin/campaigns/1/resume", true),
    ("POST", "/admin/campaigns/1/cancel", true),
    ("POST", "/admin/campaigns/1/retry", true),
    ("POST", "/admin/reports/upload", false),
    ("POST", "/admin/reports/fetch", false),
    ("GET", "/admin/sources", true),
    ("POST", "/admin/sources", true),
    ("POST", "/admin/sources/poll", true),
    ("POST", "/admin/sources/1/remove", true),
    ("GET", "/admin/meetings", false),
    ("POST", "/admin/meetings", false),
    ("POST", "/admin/meetings/import", false),
    ("POST", "/admin/meetings/2026-03-21/link", false),
    ("POST", "/admin/meetings/2026-03-21/unlink", false),
    ("POST", "/admin/meetings/2026-03-21/remove", false),
];

on_both_backends! {
    async fn every_admin_route_refuses_an_anonymous_visitor_and_an_editor_where_only_owners_go(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        admin.account("editor@example.org", Role::Editor).await;
        let editor = admin.sign_in("editor@example.org").await;
        let before = admin.app.store.accounts().await.unwrap();
        let logged = admin.audit().await.len();
        for (method, path, owners_only) in ROUTES {
            let anonymous = match *method {
                "GET" => admin.get(path, None).await,
                _ => admin.post(path, None, &[("email", "x@example.org"), ("role", "owner")]).await,
            };
            assert_to_login(&anonymous);
            if *owners_only {
                let refused = match *method {
                    "GET" => admin.get(path, Some(&editor)).await,
                    _ => admin.submit(path, &editor, &[("email", "x@example.org"), ("role", "owner")]).await,
                };
                assert_eq!(refused.status(), 403, "{method} {path} as an editor");
                let page = refused.text().await.unwrap();
                assert!(page.contains("For owners only"), "{page}");
            } else if *method == "GET" {
                let status = admin.get(path, Some(&editor)).await.status();
                assert!(status == 200 || status == 404, "{path} as an editor: {status}");
            }
        }
        assert_eq!(admin.app.store.accounts().await.unwrap(), before, "nothing changed");
        assert_eq!(admin.audit().await.len(), logged, "nothing was done");
    }

    async fn a_form_without_its_sessions_csrf_token_is_refused_and_changes_nothing(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        admin.account("second@example.org", Role::Owner).await;
        let mine = admin.sign_in("owner@example.org").await;
        let theirs = admin.sign_in("second@example.org").await;
        let before = admin.app.store.accounts().await.unwrap();
        let fields = [("email", "mallory@example.org"), ("role", "owner")];
        let missing = admin.post("/admin/accounts", Some(&mine), &fields).await;
        assert_eq!(missing.status(), 403);
        assert!(missing.text().await.unwrap().contains("Please try again"));
        let mut forged = fields.to_vec();
        forged.push(("csrf", &theirs.csrf));
        let foreign = admin.post("/admin/accounts", Some(&mine), &forged).await;
        assert_eq!(foreign.status(), 403, "another session's token");
        let mut empty = fields.to_vec();
        empty.push(("csrf", ""));
        assert_eq!(admin.post("/admin/accounts", Some(&mine), &empty).await.status(), 403);
        assert_eq!(admin.app.store.accounts().await.unwrap(), before);
        assert_eq!(admin.submit("/admin/accounts", &mine, &fields).await.status(), 200);
        assert_eq!(admin.app.store.accounts().await.unwrap().len(), before.len() + 1);
    }

    async fn signing_in_begins_a_new_session_and_a_planted_one_is_worth_nothing(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let planted = "necmail_admin=chosen-by-an-attacker";
        let response = admin
            .try_sign_in("owner@example.org", PASSWORD, "", None, Some(planted))
            .await;
        let session = admin.session_from(response).await;
        assert_ne!(session.cookie, planted);
        let attacker = Session { cookie: planted.into(), csrf: session.csrf.clone() };
        assert_to_login(&admin.get("/admin", Some(&attacker)).await);
        let again = admin
            .try_sign_in("owner@example.org", PASSWORD, "", None, Some(&session.cookie))
            .await;
        let second = admin.session_from(again).await;
        assert_ne!(second.cookie, session.cookie, "a new id at each sign-in");
        assert_to_login(&admin.get("/admin", Some(&session)).await);
        assert_eq!(admin.get("/admin", Some(&second)).await.status(), 200);
    }

    async fn the_session_cookie_is_http_only_strict_and_secure_on_https(db) {
        let admin = Admin::with(
            spawn_app_with(db, &[("NECMAIL_ADMIN_URL", "https://admin.nec.example")]).await,
        );
        admin.account("owner@example.org", Role::Owner).await;
        let response = admin.try_sign_in("owner@example.org", PASSWORD, "", None, None).await;
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let id = set_cookie(&response);
        assert!(id.len() >= "necmail_admin=".len() + 43, "256 bits: {id}");
    }

    async fn idle_and_old_sessions_are_refused(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let id = admin.app.store.credentials("owner@example.org").await.unwrap().unwrap().account.id;
        let session = |token: &str, started: chrono::DateTime<Utc>| NewSession {
            id_hash: admin::token_hash(token),
            account_id: id,
            csrf: "x".into(),
            ip: None,
            now: started,
        };
        let store = &admin.app.store;
        store.create_session(&session("idle", Utc::now() - Duration::hours(9))).await.unwrap();
        store.create_session(&session("old", Utc::now() - Duration::days(8))).await.unwrap();
        store.touch_session(&admin::token_hash("old"), Utc::now()).await.unwrap();
        store.create_session(&session("fresh", Utc::now() - Duration::hours(7))).await.unwrap();
        let cookie = |t: &str| Session { cookie: format!("necmail_admin={t}"), csrf: "x".into() };
        assert_to_login(&admin.get("/admin", Some(&cookie("idle"))).await);
        assert_to_login(&admin.get("/admin", Some(&cookie("old"))).await);
        assert_eq!(admin.get("/admin", Some(&cookie("fresh"))).await.status(), 200);
        assert!(store.session(&admin::token_hash("idle")).await.unwrap().is_none(), "ended");
    }

    async fn forged_and_overlong_session_cookies_are_refused(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let real = admin.sign_in("owner@example.org").await;
        let forged = [
            format!("{}x", real.cookie),
            "necmail_admin=".into(),
            format!("necmail_admin={}", "A".repeat(5000)),
            format!("necmail_admin={}", admin::random_token()),
            real.cookie.to_uppercase(),
        ];
        for cookie in forged {
            let s = Session { cookie, csrf: real.csrf.clone() };
            assert_to_login(&admin.get("/admin", Some(&s)).await);
            assert_to_login(&admin.submit("/admin/settings", &s, &[("require_totp", "on")]).await);
        }
        assert_eq!(admin.app.store.setting(admin::REQUIRE_TOTP).await.unwrap(), None);
    }

    async fn logout_ends_the_session_and_logout_everywhere_ends_every_one(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let phone = admin.sign_in("owner@example.org").await;
        let desk = admin.sign_in("owner@example.org").await;
        let out = admin.submit("/admin/logout", &phone, &[]).await;
        assert_to_login(&out);
        assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert_to_login(&admin.get("/admin", Some(&phone)).await);
        assert_eq!(admin.get("/admin", Some(&desk)).await.status(), 200);
        let laptop = admin.sign_in("owner@example.org").await;
        assert_to_login(&admin.submit("/admin/logout/everywhere", &laptop, &[]).await);
        assert_to_login(&admin.get("/admin", Some(&desk)).await);
        assert_to_login(&admin.get("/admin", Some(&laptop)).await);
    }

    async fn failed_sign_ins_grow_a_delay_and_never_tell_whether_the_account_exists(db) {
        let admin = Admin::with(
            spawn_app_with(db, &[("NECMAIL_TRUSTED_PROXIES", "127.0.0.1")]).await,
        );
        admin.account("owner@example.org", Role::Owner).await;
        let mut answers = Vec::new();
        for (n, who) in ["owner@example.org", "nobody@example.org"].iter().enumerate() {
            let ip = format!("198.51.100.{}", n + 1);
            for _ in 0..4 {
                let r = admin.try_sign_in(who, "wrong password!", "", Some(&ip), None).await;
                assert_eq!(r.status(), 401, "{who}");
                let page = r.text().await.unwrap();
                answers.push(page[..page.find("name=\"csrf\"").unwrap()].to_owned());
            }
            let right = admin.try_sign_in(who, PASSWORD, "", Some(&ip), None).await;
            assert_eq!(right.status(), 429, "{who}: even the right password waits");
            assert_eq!(right.headers()["retry-after"], "15");
            assert!(right.text().await.unwrap().contains("Try again in 15 seconds"));
            let elsewhere = admin.try_sign_in(who, PASSWORD, "", Some("203.0.113.9"), None).await;
            assert_eq!(elsewhere.status(), 429, "{who}: the account waits from every address");
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "the same answer for both");
        let other = admin.try_sign_in("owner@example.org", "x", "", Some("198.51.100.1"), None).await;
        assert_eq!(other.status(), 429, "the address waits for every account");
    }

    async fn the_one_time_link_sets_a_password_once(db) {
        let admin = Admin::start(db).await;
        let link = admin.add("owner@example.org", Role::Owner).await;
        let short = admin.get(&link, None).await.text().await.unwrap();
        let csrf = csrf_of(&short);
        let refused = admin
            .post(&link, None, &[("csrf", &csrf), ("password", "short"), ("again", "short")])
            .await;
        assert_eq!(refused.status(), 422);
        assert_eq!(admin.set_password(&link, PASSWORD).await.status(), 200);
        assert_eq!(admin.get(&link, None).await.status(), 410, "used");
        let again = admin
            .post(&link, None, &[("csrf", &csrf), ("password", "another password"), ("again", "another password")])
            .await;
        assert_eq!(again.status(), 410);
        admin.sign_in("owner@example.org").await;
        assert_eq!(admin.get("/admin/set-password/forged", None).await.status(), 410);
    }

    async fn every_action_is_written_to_the_audit_log_with_who_and_where(db) {
        let admin = Admin::with(
            spawn_app_with(db, &[("NECMAIL_TRUSTED_PROXIES", "127.0.0.1")]).await,
        );
        admin.account("owner@example.org", Role::Owner).await;
        admin.try_sign_in("owner@example.org", "wrong password!", "", Some("192.0.2.7"), None).await;
        let owner = admin.sign_in("owner@example.org").await;
        admin.submit("/admin/accounts", &owner, &[("email", "ed@example.org"), ("role", "editor")]).await;
        admin.submit("/admin/settings", &owner, &[]).await;
        let ed = admin.app.store.credentials("ed@example.org").await.unwrap().unwrap().account;
        admin.submit(&format!("/admin/accounts/{}/reset", ed.id), &owner, &[]).await;
        admin.submit(&format!("/admin/accounts/{}/remove", ed.id), &owner, &[]).await;
        admin.submit("/admin/logout", &owner, &[]).await;
        let log = admin.audit().await;
        let lines: Vec<(String, String, String)> = log
            .iter()
            .rev()
            .map(|e| (e.actor.clone(), e.action.clone(), e.detail.clone()))
            .collect();
        let expected = [
            ("cli", "account.add", "owner@example.org as owner"),
            ("owner@example.org", "password.set", "from a one-time link"),
            ("owner@example.org", "sign-in.failed", ""),
            ("owner@example.org", "sign-in", ""),
            ("owner@example.org", "account.add", "ed@example.org as editor"),
            ("owner@example.org", "settings.change", "require two-factor: false"),
            ("owner@example.org", "account.reset", "ed@example.org"),
            ("owner@example.org", "account.remove", "ed@example.org"),
            ("owner@example.org", "sign-out", ""),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(lines, expected);
        assert_eq!(log.iter().rev().nth(2).unwrap().ip.as_deref(), Some("192.0.2.7"));
        assert!(log.iter().all(|e| e.actor == "cli" || e.ip.is_some()));
        assert!(Utc::now() - log[0].at < Duration::minutes(1));
        let owner = admin.sign_in("owner@example.org").await;
        let page = admin.get("/admin/audit", Some(&owner)).await.text().await.unwrap();
        assert!(page.contains("account.remove: ed@example.org"), "{page}");
    }

    async fn html_and_script_in_text_fields_are_escaped(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let evil = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
        let page = admin.try_sign_in(evil, evil, evil, None, None).await.text().await.unwrap();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        let owner = admin.sign_in("owner@example.org").await;
        let added = admin.submit("/admin/accounts", &owner, &[("email", evil), ("role", "owner")]).await;
        assert_eq!(added.status(), 422);
        assert!(!added.text().await.unwrap().contains("<script>alert"));
        let log = admin.get("/admin/audit", Some(&owner)).await;
        let log = log.text().await.unwrap();
        assert!(!log.contains("<script>alert") && !log.contains("<img src=x"), "{log}");
        assert!(log.contains("&lt;script&gt;"), "the failed sign-in is logged, escaped");
        assert_eq!(admin.app.store.accounts().await.unwrap().len(), 1, "nothing added");
    }

    async fn an_owner_can_require_two_factor_and_a_code_is_then_needed(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        admin.account("editor@example.org", Role::Editor).await;
        let owner = admin.sign_in("owner@example.org").await;
        let refused = admin.submit("/admin/settings", &owner, &[("require_totp", "on")]).await;
        assert_eq!(refused.status(), 422, "not before the owner uses it too");
        assert_eq!(admin.app.store.setting(admin::REQUIRE_TOTP).await.unwrap(), None);
        admin.turn_on_totp(&owner).await;
        let required = admin.submit("/admin/settings", &owner, &[("require_totp", "on")]).await;
        assert_eq!(required.status(), 303);
        let editor = admin.sign_in("editor@example.org").await;
        let sent = admin.get("/admin", Some(&editor)).await;
        assert_eq!(sent.status(), 303);
        assert_eq!(sent.headers()["location"], "/admin/account");
        let secret = admin.turn_on_totp(&editor).await;
        assert_eq!(admin.get("/admin", Some(&editor)).await.status(), 200);
        let without = admin.try_sign_in("editor@example.org", PASSWORD, "", None, None).await;
        assert_eq!(without.status(), 401, "a code is needed now");
        let code = admin::totp::current_code(&secret).unwrap();
        let with = admin
            .try_sign_in("editor@example.org", PASSWORD, &code, None, None)
            .await;
        admin.session_from(with).await;
    }

    async fn changing_the_password_signs_out_every_other_session(db) {
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let here = admin.sign_in("owner@example.org").await;
        let there = admin.sign_in("owner@example.org").await;
        let new = "a brand new password";
        let wrong = admin
            .submit("/admin/account/password", &here, &[("current", "nope"), ("password", new), ("again", new)])
            .await;
        assert_eq!(wrong.status(), 422);
        let changed = admin
            .submit("/admin/account/password", &here, &[("current", PASSWORD), ("password", new), ("again", new)])
            .await;
        assert_eq!(changed.status(), 200);
        assert_eq!(admin.get("/admin", Some(&here)).await.status(), 200);
        assert_to_login(&admin.get("/admin", Some(&there)).await);
        assert_eq!(admin.try_sign_in("owner@example.org", PASSWORD, "", None, None).await.status(), 401);
    }

    async fn the_dashboard_shows_what_is_sending_what_waits_and_the_last_week(db) {
        let (store, report) = crate::campaigns::world(db, 3).await;
        let sending = crate::campaigns::campaign(&*store, report, &["members"]).await;
        let admin = Admin::start(db).await;
        admin.account("owner@example.org", Role::Owner).await;
        let owner = admin.sign_in("owner@example.org").await;
        let page = admin.get("/admin", Some(&owner)).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let page = page.text().await.unwrap();
        assert!(page.contains(&format!("campaign {sending}")), "{page}");
        assert!(page.contains("0 of 3 done"), "{page}");
        assert!(page.contains("http-equiv=\"refresh\""), "it refreshes while sending");
        assert!(page.contains("<dt>Sign-ups</dt><dd>3</dd>"), "{page}");
        assert!(page.contains("Next dispatch window"), "{page}");
    }

    async fn the_admin_can_share_the_public_listener_or_be_off(db) {
        let public = spawn_app_with(db, &[("NECMAIL_ADMIN_ADDR", "public")]).await;
        assert!(public.admin.is_none());
        assert_to_login(&public.get("/admin").await);
        assert_eq!(public.get("/admin/login").await.status(), 200);
        let other = db.another().await;
        let off = spawn_app_with(&other, &[("NECMAIL_ADMIN_ADDR", "off")]).await;
        assert!(off.admin.is_none());
        assert_eq!(off.get("/admin/login").await.status(), 404);
        other.finish().await;
    }

    async fn the_admin_command_adds_lists_resets_and_removes_accounts(db) {
        db.store().await;
        let add = |email: &str, role: &str| {
            run_command(
                necmail(db)
                    .env("NECMAIL_ADMIN_URL", "https://admin.nec.example")
                    .args(["admin", "add", email, "--role", role]),
            )
        };
        let out = add("Ann@Example.org", "owner");
        let printed = out.ok().to_owned();
        assert!(printed.contains("created the owner account ann@example.org"), "{printed}");
        let link = printed
            .lines()
            .find(|l| l.starts_with("https://admin.nec.example/admin/set-password/"))
            .unwrap_or_else(|| panic!("a full link in:\n{printed}"));
        assert!(link.len() > "https://admin.nec.example/admin/set-password/".len() + 40);
        add("bob@example.org", "editor").ok();
        assert!(add("ann@example.org", "editor").fails(2).contains("already"));
        assert!(add("carl@example.org", "boss").fails(2).contains("owner editor"));
        assert!(add("not an address", "editor").fails(2).contains("not an email address"));
        let listed = run(db, &["admin", "ls", "--json"]).json();
        let rows = listed.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["email"], "ann@example.org");
        assert_eq!(rows[0]["role"], "owner");
        assert_eq!(rows[0]["has_password"], false);
        assert!(run(db, &["admin", "ls"]).ok().contains("bob@example.org  editor"));
        assert!(run(db, &["admin", "rm", "ann@example.org"]).fails(2).contains("last owner"));
        assert!(run(db, &["admin", "reset", "bob@example.org"]).ok().contains("/admin/set-password/"));
        run(db, &["admin", "rm", "bob@example.org"]).ok();
        assert!(run(db, &["admin", "rm", "bob@example.org"]).fails(2).contains("no admin account"));
        let store = db.store().await;
        let actions: Vec<String> = store
            .audit_log(None, 100)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| format!("{} {}", e.actor, e.action))
            .collect();
        assert_eq!(actions, ["cli account.add", "cli account.add", "cli account.reset", "cli account.remove"]);
    }

    async fn a_report_is_pasted_previewed_as_member_and_councillor_edited_and_deleted(db) {
        let admin = Admin::start(db).await;
        admin.account("editor@example.org", Role::Editor).await;
        let ed = admin.sign_in("editor@example.org").await;
        assert_eq!(admin.get("/admin/reports/new", Some(&ed)).await.status(), 200);
        let text = "# Report of the NEC meeting\n\n## Finance\n\nThe budget passed \
            <script>alert(1)</script> at last.\n";
        let refused = admin.post("/admin/reports/new", Some(&ed), &[("text", text)]).await;
        assert_eq!(refused.status(), 403, "no CSRF token");
        let empty = admin.submit("/admin/reports/new", &ed, &[("text", "  ")]).await;
        assert_eq!(empty.status(), 422);
        assert!(admin.app.store.reports().await.unwrap().is_empty());
        let created = admin.submit("/admin/reports/new", &ed, &[("text", text), ("format", "md")]).await;
        assert_eq!(created.status(), 303);
        let page_path = created.headers()["location"].to_str().unwrap().to_owned();
        let id: i64 = page_path.rsplit('/').next().unwrap().parse().unwrap();
        let page = admin.get(&page_path, Some(&ed)).await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
        let page = page.text().await.unwrap();
        assert!(page.contains("Subject: <strong>"), "{page}");
        assert!(page.contains("The budget passed"), "the plain-text part");
        assert!(!page.contains("<script>alert"), "{page}");
        for role in ["member", "councillor"] {
            assert!(page.contains(&format!("sandbox src=\"/admin/reports/{id}/preview/{role}\"")));
            let email = admin.get(&format!("/admin/reports/{id}/preview/{role}"), Some(&ed)).await;
            assert_eq!(email.status(), 200);
            let csp = email.headers()["content-security-policy"].to_str().unwrap().to_owned();
            assert!(csp.contains("sandbox") && !csp.contains("script-src"), "{csp}");
            assert_eq!(email.headers()["x-frame-options"], "SAMEORIGIN");
            let html = email.text().await.unwrap();
            assert!(html.contains("The budget passed") && !html.contains("<script>alert"));
        }
        let stranger = admin.get(&format!("/admin/reports/{id}/preview/boss"), Some(&ed)).await;
        assert_eq!(stranger.status(), 404);
        assert_to_login(&admin.get(&format!("/admin/reports/{id}/preview/member"), None).await);

        let edited = page_text(&page).replace("passed", "was agreed");
        let saved = admin.submit(&page_path, &ed, &[("text", &edited)]).await;
        assert_eq!(saved.status(), 303);
        let report = admin.app.store.report(&necmail::reports::ReportRef::Id(id)).await.unwrap();
        assert!(report.body_markdown.contains("was agreed"), "{}", report.body_markdown);
        let broken = admin.submit(&page_path, &ed, &[("text", "")]).await;
        assert_eq!(broken.status(), 422);
        let again = admin.app.store.report(&necmail::reports::ReportRef::Id(id)).await.unwrap();
        assert_eq!(again.body_markdown, report.body_markdown, "nothing changed");

        let deleted = admin.submit(&format!("/admin/reports/{id}/delete"), &ed, &[]).await;
        assert_eq!(deleted.status(), 303);
        assert!(admin.app.store.reports().await.unwrap().is_empty());
        let actions: Vec<String> = admin.audit().await.into_iter().rev().map(|e| e.action).collect();
        let report_actions: Vec<&str> = actions
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("report."))
            .collect();
        assert_eq!(report_actions, ["report.import", "report.edit", "report.delete"]);
        // Last: the server answers 413 and closes a connection whose body
        // it refused; a client still writing the body may see the close
        // before the answer.
        let huge = "x".repeat(3 * 1024 * 1024);
        let too_big = admin
            .app
            .client
            .post(admin.url("/admin/reports/new"))
            .header("Cookie", &ed.cookie)
            .form(&[("csrf", ed.csrf.as_str()), ("text", &huge)])
            .send()
            .await;
        match too_big {
            Ok(response) => assert_eq!(response.status(), 413),
            Err(e) => assert!(e.is_request(), "{e}"),
        }
        assert!(admin.app.store.reports().await.unwrap().is_empty());
    }
}

/// The text in the report page's text area, unescaped.
fn page_text(page: &str) -> String {
    let start = page.find("<textarea").unwrap();
    let start = start + page[start..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</textarea>").unwrap();
    page[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}
