//! The web application on a free port, against a test database, with mail
//! going to an outbox folder the test reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use necmail::config::Config;
use necmail::render::Templates;
use necmail::store::Store;
use necmail::tokens::{Purpose, Signer};
use necmail::web::{Application, Context};

use super::TestDb;

pub const SECRET: &str = "a test secret of some length";
pub const PUBLIC_URL: &str = "https://nec.example";
pub const BLOG: &str = "https://blog.example";

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// `http://127.0.0.1:PORT` of the metrics listener.
    pub metrics: String,
    /// `http://127.0.0.1:PORT` of the web admin's listener, when it has one.
    pub admin: Option<String>,
    /// Follows no redirects and keeps no cookies.
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub signer: Signer,
    pub outbox: PathBuf,
    /// What stops the application, and the application running; `None`
    /// once [`TestApp::stop`] stopped it.
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// The application with the test configuration.
pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(db, &[]).await
}

/// The application with the test configuration and `extra` variables.
pub async fn spawn_app_with(db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let outbox = db.dir.path().join("outbox");
    let mut env: HashMap<String, String> = [
        ("NECMAIL_SECRET", SECRET.to_owned()),
        ("NECMAIL_PUBLIC_URL", PUBLIC_URL.to_owned()),
        (
            "NECMAIL_FROM",
            "NEC Report <reports@nec.example>".to_owned(),
        ),
        ("NECMAIL_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("NECMAIL_ALLOWED_ORIGINS", BLOG.to_owned()),
        ("NECMAIL_OUTBOX_DIR", outbox.display().to_string()),
        ("NECMAIL_METRICS_ADDR", "127.0.0.1:0".to_owned()),
        ("NECMAIL_ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        (
            "NECMAIL_SPOOL_DIR",
            db.dir.path().join("spool").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config =
        Arc::new(Config::from_lookup(|k| env.get(k).cloned()).expect("a valid test configuration"));
    let signer = config.signer();
    let store = db.store().await;
    let transport = necmail::delivery::transport(&config).expect("a transport");
    let app = Application::build(Context {
        store: Arc::clone(&store),
        config,
        templates: Arc::new(Templates::load(None).expect("the built-in templates")),
        transport,
    })
    .await
    .expect("the application starts");
    let address = format!("http://{}", app.local_addr());
    let metrics = format!("http://{}", app.metrics_addr().expect("a metrics listener"));
    let admin = app.admin_addr().map(|addr| format!("http://{addr}"));
    let (stop, stopped) = oneshot::channel();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics,
        admin,
        client: super::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client"),
        store,
        signer,
        outbox,
        running: Some((stop, running)),
    }
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field in the page:\n{html}"))
        + marker.len();
    let len = html[start..].find('"').expect("a closed attribute");
    html[start..start + len].to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("a response")
    }

    /// Posts a form; `fields` may repeat a name.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post(path, "application/x-www-form-urlencoded", body)
            .await
    }

    /// Posts `body` as `content_type`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("a response")
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status(), 200, "GET {path}");
        csrf_of(&page.text().await.unwrap())
    }

    /// Fills in and sends the subscribe form.
    pub async fn subscribe(&self, email: &str, lists: &[&str]) -> reqwest::Response {
        let csrf = self.csrf("/subscribe").await;
        let mut fields = vec![("csrf", csrf.as_str()), ("email", email), ("website", "")];
        fields.extend(lists.iter().map(|l| ("list", *l)));
        self.post_form("/subscribe", &fields).await
    }

    /// Every message in the outbox, oldest first, decoded from quoted-printable.
    pub fn emails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut files: Vec<(SystemTime, PathBuf)> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .map(|p| (p.metadata().unwrap().modified().unwrap(), p))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let raw = std::fs::read(&p).unwrap();
                let decoded =
                    quoted_printable::decode(&raw, quoted_printable::ParseMode::Robust).unwrap();
                String::from_utf8_lossy(&decoded).into_owned()
            })
            .collect()
    }

    /// Stops the application as SIGTERM stops the daemon, and returns once
    /// every task of it has ended: the outbox then holds every email it
    /// sent, and no more will come.
    pub async fn stop(&mut self) {
        let (stop, running) = self.running.take().expect("the application is running");
        let _ = stop.send(());
        running
            .await
            .expect("the application stops without a panic");
    }

    /// Waits until the outbox holds at least `n` messages (they are sent
    /// in the background) and returns them.
    pub async fn wait_for_emails(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let emails = self.emails();
            if emails.len() >= n {
                return emails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} emails in the outbox, found {}",
                emails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The path (`/confirm/TOKEN`) of the confirmation link in the newest email.
    pub async fn confirmation_link(&self) -> String {
        self.link_in_newest_email("/confirm/").await
    }

    /// The path of the first link to `PUBLIC_URL` + `prefix…` in the newest
    /// email, once there is one.
    pub async fn link_in_newest_email(&self, prefix: &str) -> String {
        let emails = self.wait_for_emails(1).await;
        let email = emails.last().unwrap();
        let start = email
            .find(&format!("{PUBLIC_URL}{prefix}"))
            .unwrap_or_else(|| panic!("no {prefix} link in:\n{email}"))
            + PUBLIC_URL.len();
        let len = email[start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
            .unwrap();
        email[start..start + len].to_owned()
    }

    /// The path of subscriber `id`'s unsubscribe link for list `list_id`.
    pub fn unsubscribe_path(&self, id: i64, list_id: i64) -> String {
        let token = self
            .signer
            .sign(Purpose::Unsubscribe, &[id as u64, list_id as u64]);
        format!("/u/{token}")
    }

    /// The path of subscriber `id`'s preferences link, issued now.
    pub fn preferences_path(&self, id: i64) -> String {
        format!("/p/{}", self.signer.preferences(id))
    }

    /// The path of subscriber `id`'s preferences link, issued `days_ago`.
    pub fn old_preferences_path(&self, id: i64, days_ago: i64) -> String {
        let issued = chrono::Utc::now().timestamp() - days_ago * 86_400;
        let token = self
            .signer
            .sign(Purpose::Preferences, &[id as u64, issued as u64]);
        format!("/p/{token}")
    }
}
