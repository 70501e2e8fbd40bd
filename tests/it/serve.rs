//! `necmail serve` end to end, through the real binary: a person subscribes
//! through the form, confirms, gets the report the scheduler sends when a
//! feed item appears, leaves with the one-click URL from the message's own
//! List-Unsubscribe header, and the next report skips them. Also how the
//! daemon refuses to start.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::support::cli::{ALLOW_LOOPBACK_FEEDS, necmail, run, run_allowing_loopback};
use crate::support::http::FeedServer;
use crate::support::smtp::{Received, SmtpServer};
use crate::support::{TestDb, http_client, on_both_backends};

const SECRET: &str = "an end-to-end test secret of some length";
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A running `necmail serve`, with its log in a file.
pub(crate) struct Daemon {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

/// Waits until `url` answers 200, failing with `why()` after [`WAIT`].
pub(crate) async fn healthy(url: &str, why: impl Fn() -> String) {
    let client = http_client().build().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", why());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nobody is listening on now.
pub(crate) fn free_port() -> u16 {
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
        .env("NECMAIL_METRICS_ADDR", "off")
        .env("NECMAIL_ADMIN_ADDR", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true);
    cmd
}

impl Daemon {
    /// Starts the daemon with `env` and waits until /healthz answers 200.
    pub(crate) async fn start(db: &TestDb, env: &[(&str, String)]) -> Daemon {
        Self::start_with(db, env, |_| {}).await
    }

    /// Starts the daemon with `env`, after `adjust` had its command.
    async fn start_with(
        db: &TestDb,
        env: &[(&str, String)],
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        let port = free_port();
        let log = db.dir.path().join("serve.log");
        let mut cmd = serve_command(db, port, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        adjust(&mut cmd);
        let child = cmd.spawn().expect("start necmail serve");
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        healthy(&daemon.url("/healthz"), || {
            format!("necmail serve did not become healthy:\n{}", daemon.log())
        })
        .await;
        daemon
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the daemon with SIGKILL, as a crash would, and waits for it.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL necmail serve");
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

/// Fills in the subscribe form at `url` for `email` on `list` and sends it
/// with `client`, adding `header` to the POST; checks the answer is 200.
pub(crate) async fn subscribe_through(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    list: &str,
    header: Option<(&str, &str)>,
) {
    let form = client.get(url).send().await.unwrap().text().await.unwrap();
    let mut fields = hidden_fields(&form);
    fields.push(("email".into(), email.into()));
    fields.push(("list".into(), list.into()));
    let mut post = client.post(url).form(&fields);
    if let Some((name, value)) = header {
        post = post.header(name, value);
    }
    let page = post.send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
}

/// The `name="…" value="…"` pairs of the hidden inputs of the first form in `html`.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
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
pub(crate) fn decoded(message: &Received) -> String {
    let text = message.text();
    String::from_utf8_lossy(
        &quoted_printable::decode(text.as_bytes(), quoted_printable::ParseMode::Robust).unwrap(),
    )
    .into_owned()
}

/// The path of the first link in `text` that starts with `prefix` (e.g. `/confirm/`).
pub(crate) fn link_path(text: &str, base: &str, prefix: &str) -> String {
    let start = text
        .find(&format!("{base}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"))
        + base.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
        .collect()
}

pub(crate) fn reports_to(server: &SmtpServer, rcpt: &str) -> Vec<Received> {
    server
        .messages_to(rcpt)
        .into_iter()
        .filter(|m| m.header("List-Unsubscribe").is_some())
        .collect()
}

/// Waits until every campaign made so far is done, and at least `expected` are.
pub(crate) async fn campaigns_done(db: &TestDb, expected: usize) {
    campaigns_when(db, |campaigns| {
        campaigns.len() >= expected && campaigns.iter().all(|c| c["state"] == "done")
    })
    .await;
}

/// Waits until `ready` holds of `campaign ls --json`, and returns the campaigns.
pub(crate) async fn campaigns_when(
    db: &TestDb,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
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
        if ready(campaigns) {
            return campaigns.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the campaigns are not as awaited: {listing}"
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
        run_allowing_loopback(db, &["source", "add", &feed.url("/live.rss"), "--list", "members"]).ok();
        run(db, &["subscriber", "add", "kept@example.org", "--list", "members", "--confirmed"]).ok();
        let daemon = Daemon::start(db, &[
            ("NECMAIL_SMTP_URL", smtp.url()),
            (ALLOW_LOOPBACK_FEEDS.0, ALLOW_LOOPBACK_FEEDS.1.into()),
            ("NECMAIL_POLL_SCHEDULE", "* * * * * *".into()),
            ("NECMAIL_DISPATCH_SCHEDULE", "*/2 * * * * *".into()),
        ]).await;
        let client = http_client()
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
        let reply = http_client()
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
            ("nec-2", "NEC report: the conference", "<p>Conference will be in Liverpool.</p>"),
            ("nec-1", "NEC report: the budget", REPORT_HTML),
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

/// The one-click URL of `address` for list `slug`, as signed in a report.
async fn one_click_url(
    daemon: &Daemon,
    store: &dyn necmail::store::Store,
    address: &str,
    slug: &str,
) -> String {
    daemon.url(&one_click_path(store, address, slug).await)
}

/// The path of [`one_click_url`].
pub(crate) async fn one_click_path(
    store: &dyn necmail::store::Store,
    address: &str,
    slug: &str,
) -> String {
    let id = store
        .subscriber(&necmail::subscribers::SubscriberEmail::parse(address).unwrap())
        .await
        .unwrap()
        .id;
    let list = crate::lists::list_id(store, slug).await;
    let token = necmail::tokens::Signer::new(SECRET).sign(
        necmail::tokens::Purpose::Unsubscribe,
        &[id as u64, list as u64],
    );
    format!("/u/{token}")
}

pub(crate) async fn one_click(url: &str) -> reqwest::Response {
    http_client()
        .build()
        .unwrap()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .timeout(WAIT)
        .send()
        .await
        .expect("the one-click is answered")
}

/// Waits until `address` is unsubscribed from `slug`.
pub(crate) async fn unsubscribed(store: &dyn necmail::store::Store, address: &str, slug: &str) {
    let email = necmail::subscribers::SubscriberEmail::parse(address).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(s) = store.subscriber(&email).await
            && s.lists.iter().any(|m| {
                m.slug.as_str() == slug
                    && m.status == necmail::subscribers::SubscriptionStatus::Unsubscribed
            })
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{address} is still on {slug}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Another connection holding the database's write lock until released:
/// `BEGIN EXCLUSIVE` on SQLite, an exclusive lock on the subscriptions on
/// PostgreSQL.
enum DbLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl DbLock {
    async fn take(db: &TestDb) -> DbLock {
        use sqlx::Connection;
        if db.url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            DbLock::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            DbLock::Postgres(conn)
        }
    }

    async fn release(self) {
        use sqlx::Connection;
        match self {
            DbLock::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            DbLock::Postgres(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Longer than SQLite's busy timeout (10 s), after which a write fails.
const LONG_LOCK: Duration = Duration::from_secs(12);

on_both_backends! {
    async fn a_one_click_during_a_long_database_lock_is_answered_200_and_applied_and_recorded_after(db) {
        run(db, &["list", "create", "members", "--name", "Party members"]).ok();
        run(db, &["subscriber", "add", "ann@example.org", "--list", "members", "--confirmed"]).ok();
        let daemon = Daemon::start(db, &[]).await;
        let store = db.store().await;
        let url = one_click_url(&daemon, &*store, "ann@example.org", "members").await;

        let lock = DbLock::take(db).await;
        let locked_at = tokio::time::Instant::now();
        let reply = one_click(&url).await;
        assert_eq!(reply.status(), 200, "{}", daemon.log());
        let spool = db.dir.path().join("spool");
        assert!(
            spool.join("one-click.spool").exists() || spool.join("one-click.replaying").exists(),
            "the one-click is on disk before the answer (or already being replayed)"
        );
        tokio::time::sleep_until(locked_at + LONG_LOCK).await;
        lock.release().await;
        unsubscribed(&*store, "ann@example.org", "members").await;

        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("one-click unsubscribes applied from the spool"), "{log}");
        // The same event as a one-click applied at once.
        let events = run(db, &["events", "ls", "--email", "ann@example.org", "--json"]).json();
        let leaves: Vec<_> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "leave").collect();
        assert_eq!(leaves.len(), 1, "{events}");
        assert_eq!(leaves[0]["source"], "web");
        assert_eq!(leaves[0]["reason"], "one-click (RFC 8058)");
        assert!(leaves[0]["list_id"].is_i64(), "{events}");
    }
}

/// The list `members` with one confirmed member, ann@example.org.
pub(crate) fn members_with_ann(db: &TestDb) {
    run(
        db,
        &["list", "create", "members", "--name", "Party members"],
    )
    .ok();
    run(
        db,
        &[
            "subscriber",
            "add",
            "ann@example.org",
            "--list",
            "members",
            "--confirmed",
        ],
    )
    .ok();
}

#[tokio::test]
async fn a_spooled_one_click_survives_a_restart_of_the_daemon() {
    let db = TestDb::sqlite();
    members_with_ann(&db);
    let daemon = Daemon::start(&db, &[]).await;
    let store = db.store().await;
    let url = one_click_url(&daemon, &*store, "ann@example.org", "members").await;

    let lock = DbLock::take(&db).await;
    assert_eq!(one_click(&url).await.status(), 200);
    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");
    lock.release().await;
    let ann = run(&db, &["subscriber", "show", "ann@example.org", "--json"]).json();
    assert_eq!(
        ann[0]["lists"][0]["status"], "confirmed",
        "not applied before the restart: {ann}"
    );

    let daemon = Daemon::start(&db, &[]).await;
    unsubscribed(&*store, "ann@example.org", "members").await;
    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");
    assert!(!db.dir.path().join("spool/one-click.spool").exists());
    assert!(!db.dir.path().join("spool/one-click.replaying").exists());
}

#[tokio::test]
async fn serve_runs_on_the_worker_threads_it_is_given_and_by_default_leaves_a_core_free() {
    let db = TestDb::sqlite();
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (env, threads) in [
        (vec![("NECMAIL_WORKER_THREADS", "3".to_owned())], 3),
        (vec![], (cpus - 1).max(1)),
    ] {
        let daemon = Daemon::start(&db, &env).await;
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        let line = log
            .lines()
            .find(|line| line.contains("delivery workers running"))
            .unwrap_or_else(|| panic!("no line on the delivery workers in:\n{log}"));
        assert!(
            line.contains(&format!("worker_threads={threads}")),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_slowloris_flood_neither_stops_one_click_nor_holds_its_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::sqlite();
    members_with_ann(&db);
    // Few file descriptors, as under `ulimit -n 128`: the cap on connections
    // derived from it keeps some for the database.
    let daemon = Daemon::start_with(
        &db,
        &[("NECMAIL_HTTP_HEADER_TIMEOUT_SECS", "1".into())],
        |cmd| {
            // SAFETY: setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: 128,
                        rlim_max: 128,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        },
    )
    .await;
    let store = db.store().await;
    let url = one_click_url(&daemon, &*store, "ann@example.org", "members").await;
    let address = daemon.base.trim_start_matches("http://").to_owned();

    // 300 clients that send half a request and then nothing.
    let started = tokio::time::Instant::now();
    let (sent, mut half_sent) = tokio::sync::mpsc::channel::<()>(300);
    let slow: Vec<_> = (0..300)
        .map(|_| {
            let address = address.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.ok()?;
                stream
                    .write_all(b"POST /u/x HTTP/1.1\r\nHost: nec")
                    .await
                    .ok()?;
                sent.send(()).await.ok()?;
                let mut rest = Vec::new();
                // Closed by the server: the read ends, with EOF or a reset.
                let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
                    .await
                    .ok()?;
                Some(())
            })
        })
        .collect();
    drop(sent);
    for _ in 0..300 {
        half_sent
            .recv()
            .await
            .expect("every slow client is connected before the one-click");
    }

    let reply = one_click(&url).await;
    assert_eq!(reply.status(), 200, "{}", daemon.log());
    unsubscribed(&*store, "ann@example.org", "members").await;

    let mut closed = 0;
    for client in slow {
        if client.await.unwrap().is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "the server closes every half-sent request");
    assert!(started.elapsed() < WAIT);
    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_flood_of_refused_sign_ups_logs_a_bounded_number_of_lines() {
    let db = TestDb::sqlite();
    run(
        &db,
        &["list", "create", "members", "--name", "Party members"],
    )
    .ok();
    let daemon = Daemon::start(&db, &[("NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR", "1".into())]).await;
    let client = http_client().build().unwrap();
    let mut refused = 0;
    for _ in 0..300 {
        let r = client
            .post(daemon.url("/subscribe"))
            .form(&[("email", "flood@example.org")])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused += 1;
        }
    }
    assert_eq!(refused, 299);
    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");
    let lines = log
        .lines()
        .filter(|l| l.contains("over the per-address rate limit"))
        .count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines for one flood:\n{log}"
    );
}

#[tokio::test]
async fn after_sigterm_a_copy_of_the_db_file_alone_holds_what_serve_wrote() {
    let db = TestDb::sqlite();
    run(
        &db,
        &["list", "create", "members", "--name", "Party members"],
    )
    .ok();
    let daemon = Daemon::start(&db, &[]).await;
    let client = http_client().build().unwrap();
    for email in ["ann@example.org", "bob@example.org"] {
        subscribe_through(&client, &daemon.url("/subscribe"), email, "members", None).await;
    }
    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");

    let file = crate::sqlite_files::db_file(&db);
    crate::sqlite_files::assert_wal_is_empty(&file);
    assert_eq!(
        crate::sqlite_files::rows_in_a_copy(&file, "subscribers").await,
        2
    );
}

on_both_backends! {
    async fn the_daemon_refuses_a_source_on_a_loopback_address_records_why_and_carries_on(db) {
        let feed = FeedServer::start();
        let url = feed.url("/fixtures/nec.rss");
        run_allowing_loopback(db, &["source", "add", &url]).ok();
        let connections = feed.connections();
        let daemon = Daemon::start(db, &[("NECMAIL_POLL_SCHEDULE", "* * * * * *".into())]).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let error = loop {
            let listed = run(db, &["source", "ls", "--json"]).json();
            if let Some(error) = listed[0]["last_error"].as_str() {
                break error.to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no poll recorded:\n{}", daemon.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            error,
            format!("cannot fetch {url}: refused to connect to 127.0.0.1 (loopback): NECMAIL_FEED_ALLOW_PRIVATE is off")
        );
        assert_eq!(feed.connections(), connections, "the daemon connected to nothing");
        let client = http_client().build().unwrap();
        let health = client.get(daemon.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("refused to connect to 127.0.0.1 (loopback)"), "{log}");
    }
}
