//! `necmail serve` end to end, through the real binary: a person subscribes
//! through the form, confirms, gets the report the scheduler sends when a
//! feed item appears, leaves with the one-click URL from the message's own
//! List-Unsubscribe header, and the next report skips them. Also how the
//! daemon refuses to start.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::support::cli::{necmail, run};
use crate::support::http::FeedServer;
use crate::support::smtp::{Received, SmtpServer};
use crate::support::{TestDb, on_both_backends};

const SECRET: &str = "an end-to-end test secret of some length";
const WAIT: Duration = Duration::from_secs(30);

/// A running `necmail serve`, with its log in a file.
pub(crate) struct Daemon {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

/// A port nobody is listening on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve_command(db: &TestDb, port: u16, log: &std::path::Path) -> Command {
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::from(necmail(db));
    cmd.arg("serve")
        .env("NECMAIL_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("NECMAIL_PUBLIC_URL", &base)
        .env("NECMAIL_SECRET", SECRET)
        .env("NECMAIL_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true);
    cmd
}

impl Daemon {
    /// Starts the daemon with `env` and waits until /healthz answers 200.
    pub(crate) async fn start(db: &TestDb, env: &[(&str, String)]) -> Daemon {
        let port = free_port();
        let log = db.dir.path().join("serve.log");
        let mut cmd = serve_command(db, port, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start necmail serve");
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = client.get(daemon.url("/healthz")).send().await {
                if r.status() == 200 {
                    return daemon;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "necmail serve did not become healthy:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and returns the exit code and the whole log.
    pub(crate) async fn stop(mut self) -> (i32, String) {
        let pid = self.child.id().expect("the daemon is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("necmail serve stops after SIGTERM")
            .unwrap()
            .code()
            .unwrap_or(-1);
        (code, self.log())
    }
}

/// The `name="…" value="…"` pairs of the hidden inputs of the first form in `html`.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let form = html.split("<form").nth(1).unwrap_or_default();
    let form = form.split("</form>").next().unwrap_or_default();
    form.split("<input")
        .skip(1)
        .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = tag.split('>').next()?;
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let value = &tag[start..];
    let end = value.find('"')?;
    Some(value[..end].replace("&amp;", "&").replace("&#x2F;", "/"))
}

/// The message's text part, quoted-printable decoded.
fn decoded(message: &Received) -> String {
    let text = message.text();
    String::from_utf8_lossy(
        &quoted_printable::decode(text.as_bytes(), quoted_printable::ParseMode::Robust).unwrap(),
    )
    .into_owned()
}

/// The path of the first link in `text` that starts with `prefix` (e.g. `/confirm/`).
fn link_path(text: &str, base: &str, prefix: &str) -> String {
    let start = text
        .find(&format!("{base}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"))
        + base.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
        .collect()
}

fn reports_to(server: &SmtpServer, rcpt: &str) -> Vec<Received> {
    server
        .messages_to(rcpt)
        .into_iter()
        .filter(|m| m.header("List-Unsubscribe").is_some())
        .collect()
}

/// Waits until every campaign made so far is done.
pub(crate) async fn campaigns_done(db: &TestDb, expected: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let db_url = db.url.clone();
        let dir = db.dir.path().to_owned();
        let listing = tokio::task::spawn_blocking(move || {
            crate::support::cli::run_command(
                crate::support::cli::necmail_at(&db_url, &dir).args(["campaign", "ls", "--json"]),
            )
            .json()
        })
        .await
        .unwrap();
        let campaigns = listing.as_array().unwrap();
        if campaigns.len() >= expected && campaigns.iter().all(|c| c["state"] == "done") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaigns not done: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const REPORT_HTML: &str = "<p>The NEC met on Tuesday and agreed the budget of £80 million.</p>\
    <h2>Local Government</h2><p>Councillors will be consulted on 12 March.</p>";

on_both_backends! {
    async fn a_subscriber_gets_the_next_report_and_leaves_with_one_click(db) {
        let smtp = SmtpServer::start().await;
        let feed = FeedServer::start();
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run(db, &["source", "add", &feed.url("/live.rss"), "--list", "members"]).ok();
        run(db, &["subscriber", "add", "kept@example.org", "--list", "members", "--confirmed"]).ok();
        let daemon = Daemon::start(db, &[
            ("NECMAIL_SMTP_URL", smtp.url()),
            ("NECMAIL_POLL_SCHEDULE", "* * * * * *".into()),
            ("NECMAIL_DISPATCH_SCHEDULE", "*/2 * * * * *".into()),
        ]).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        // 1. Subscribe through the form.
        let form = client.get(daemon.url("/subscribe")).send().await.unwrap().text().await.unwrap();
        let mut fields = hidden_fields(&form);
        fields.push(("email".into(), "ann@example.org".into()));
        fields.push(("name".into(), "Ann Smith".into()));
        fields.push(("list".into(), "members".into()));
        let page = client.post(daemon.url("/subscribe")).form(&fields).send().await.unwrap();
        assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
        let confirmation = smtp.wait_for(1, WAIT).await.remove(0);
        assert_eq!(confirmation.rcpt_to, ["ann@example.org"]);

        // 2. Confirm: the link opens a page whose button POSTs.
        let confirm_path = link_path(&decoded(&confirmation), &daemon.base, "/confirm/");
        let page = client.get(daemon.url(&confirm_path)).send().await.unwrap().text().await.unwrap();
        let page = client
            .post(daemon.url(&confirm_path))
            .form(&hidden_fields(&page))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let ann = run(db, &["subscriber", "show", "ann@example.org", "--json"]).json();
        assert_eq!(ann[0]["lists"][0]["status"], "confirmed", "{ann}");

        // 3. A feed item appears; the scheduler polls, makes a campaign for
        // the next dispatch window and sends it.
        feed.set_live(&[("nec-1", "NEC report: the budget", REPORT_HTML)]);
        campaigns_done(db, 1).await;
        let first = reports_to(&smtp, "ann@example.org");
        assert_eq!(first.len(), 1, "Ann gets the report once");
        assert_eq!(reports_to(&smtp, "kept@example.org").len(), 1);
        assert!(decoded(&first[0]).contains("80 million"));

        // 4. One-click unsubscribe with the exact URL of the List-Unsubscribe header.
        let header = first[0].header("List-Unsubscribe").unwrap();
        let url = header
            .split(['<', '>'])
            .find(|part| part.starts_with("http"))
            .unwrap()
            .to_owned();
        assert_eq!(first[0].header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        let reply = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        assert!(reply.headers().get("location").is_none());

        // 5. The next report skips Ann and reaches everyone else.
        feed.set_live(&[
            ("nec-1", "NEC report: the budget", REPORT_HTML),
            ("nec-2", "NEC report: the conference", "<p>Conference will be in Liverpool.</p>"),
        ]);
        campaigns_done(db, 2).await;
        assert_eq!(reports_to(&smtp, "kept@example.org").len(), 2);
        assert_eq!(reports_to(&smtp, "ann@example.org").len(), 1, "no report after leaving");

        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        for part in ["database ready", "web pages listening", "scheduler running", "delivery workers running", "stopped"] {
            assert!(log.contains(part), "no {part:?} line in:\n{log}");
        }
    }
}

async fn refused(db: &TestDb, env: &[(&str, &str)]) -> (i32, String) {
    let log = db.dir.path().join("refused.log");
    let mut cmd = serve_command(db, free_port(), &log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = tokio::time::timeout(WAIT, cmd.status())
        .await
        .expect("necmail serve gives up at once")
        .unwrap();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&log).unwrap(),
    )
}

#[tokio::test]
async fn serve_refuses_a_public_site_without_a_secret() {
    let db = TestDb::sqlite();
    let mut cmd = serve_command(&db, free_port(), &db.dir.path().join("log"));
    cmd.env_remove("NECMAIL_SECRET")
        .env("NECMAIL_PUBLIC_URL", "https://nec.example.org");
    let status = cmd.status().await.unwrap();
    assert_eq!(status.code(), Some(2));
    let log = std::fs::read_to_string(db.dir.path().join("log")).unwrap();
    assert!(log.contains("NECMAIL_SECRET"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn serve_refuses_a_schedule_it_cannot_parse_and_names_the_variable() {
    let db = TestDb::sqlite();
    let (code, log) = refused(&db, &[("NECMAIL_POLL_SCHEDULE", "every quarter hour")]).await;
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("NECMAIL_POLL_SCHEDULE"), "{log}");
    assert!(log.contains("every quarter hour"), "{log}");
}

#[tokio::test]
async fn serve_refuses_a_port_that_is_taken_and_names_it() {
    let db = TestDb::sqlite();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, log) = refused(&db, &[("NECMAIL_HTTP_ADDR", &addr)]).await;
    assert_eq!(code, 1, "{log}");
    assert!(log.contains(&addr), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn serve_refuses_a_template_that_does_not_parse_and_names_the_file() {
    let db = TestDb::sqlite();
    let dir = db.dir.path().join("templates/pages");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("subscribe.html.tera"), "{% if %}").unwrap();
    let templates = db.dir.path().join("templates");
    let (code, log) = refused(
        &db,
        &[("NECMAIL_TEMPLATES_DIR", templates.to_str().unwrap())],
    )
    .await;
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("subscribe.html.tera"), "{log}");
}
