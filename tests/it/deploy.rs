//! The deployment recipe under `deploy/`, tried for real: the systemd unit
//! through `systemd-analyze`, nginx and Caddy in front of `necmail serve` on
//! loopback, and backups taken while `serve` runs. The tests that need a
//! tool are `#[ignore]`d; `scripts/test` runs them when the tool is here and
//! says loudly when it is not.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::serve::{
    Daemon, free_port, healthy, members_with_ann, one_click, one_click_path, subscribe_through,
    unsubscribed,
};
use crate::support::cli::run;
use crate::support::{TestDb, http_client, on_both_backends};

const WAIT: Duration = Duration::from_secs(30);

/// A file of the repository's `deploy/` folder.
fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a tool to completion; its exit status, stdout and stderr.
fn tool(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

mod systemd {
    use super::*;

    /// The unit as installed, with the paths of this checkout: `verify`
    /// checks that the binary and the environment file exist.
    fn installed_unit(dir: &Path) -> PathBuf {
        let env_file = dir.join("necmail.env");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example"),
            &env_file,
        )
        .unwrap();
        let unit = read(&deploy_file("necmail.service"))
            .replace("/usr/local/bin/necmail", env!("CARGO_BIN_EXE_necmail"))
            .replace("/etc/necmail/necmail.env", &env_file.display().to_string());
        let path = dir.join("necmail.service");
        std::fs::write(&path, unit).unwrap();
        path
    }

    #[test]
    #[ignore = "needs systemd-analyze: scripts/test runs it when it is installed"]
    fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let unit = installed_unit(dir.path());
        let unit = unit.to_str().unwrap();
        let (ok, out, err) = tool("systemd-analyze", &["verify", unit]);
        assert!(ok && out.is_empty() && err.is_empty(), "{out}{err}");
    }

    #[test]
    #[ignore = "needs systemd-analyze: scripts/test runs it when it is installed"]
    fn the_unit_is_sandboxed_to_an_exposure_of_two_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let unit = installed_unit(dir.path());
        let (ok, out, err) = tool(
            "systemd-analyze",
            &[
                "security",
                "--offline=yes",
                "--threshold=20",
                unit.to_str().unwrap(),
            ],
        );
        // The threshold is in tenths: at most 2.0 on systemd's scale of 10.
        assert!(ok, "{out}{err}");
    }
}

/// A reverse proxy running in front of a daemon, on a port of its own,
/// until dropped.
struct Proxy {
    _child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// nginx with `deploy/nginx/necmail-proxy.conf`, the part of the recipe
    /// that is not about TLS and server names.
    async fn nginx(port: u16, upstream_port: u16) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             upstream necmail {{ server 127.0.0.1:{upstream_port}; keepalive 4; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    include {};\n  }}\n}}\n",
            deploy_file("nginx/necmail-proxy.conf").display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.args(["-p", &d.to_string(), "-c", conf_path.to_str().unwrap()])
            .args(["-g", "daemon off;"]);
        Proxy::start(cmd, port, dir).await
    }

    /// Caddy with `deploy/Caddyfile`, its site served on plain HTTP on
    /// loopback instead of news.example.org with a certificate.
    async fn caddy(port: u16, upstream_port: u16) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let caddyfile = read(&deploy_file("Caddyfile"))
            .replace(
                "news.example.org {",
                &format!("{{\n\tadmin off\n}}\n\nhttp://127.0.0.1:{port} {{"),
            )
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{upstream_port}"));
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, caddyfile).unwrap();
        let mut cmd = Command::new("caddy");
        cmd.args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path());
        Proxy::start(cmd, port, dir).await
    }

    /// Starts the proxy and waits until the daemon answers through it.
    async fn start(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Proxy {
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start the proxy");
        let proxy = Proxy {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        healthy(&proxy.url("/healthz"), || {
            let log = read(&proxy.dir.path().join("proxy.log"));
            format!("the proxy did not answer:\n{log}")
        })
        .await;
        proxy
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The port of a daemon's own listener.
fn port_of(daemon: &Daemon) -> u16 {
    daemon.url("").rsplit(':').next().unwrap().parse().unwrap()
}

/// Starts `necmail serve` behind the proxy `start` makes and checks, through
/// the proxy: the pages; a sign-up, whose consent records the address the
/// proxy saw (not one the client claims) and whose confirmation links lead
/// to the proxy; a one-click unsubscribe; and no metrics.
async fn works_behind(start: impl AsyncFnOnce(u16, u16) -> Proxy) {
    let db = TestDb::sqlite();
    members_with_ann(&db);
    // The proxy's address is the public one, which links in mail lead to.
    let port = free_port();
    let daemon = Daemon::start(
        &db,
        &[
            ("NECMAIL_TRUSTED_PROXIES", "127.0.0.1".into()),
            ("NECMAIL_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ],
    )
    .await;
    let proxy = start(port, port_of(&daemon)).await;

    // A client on another loopback address, claiming yet another one.
    let client = http_client()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/subscribe", "/archive", "/healthz"] {
        let r = client.get(proxy.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = client.get(proxy.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 404);

    let forged = Some(("X-Forwarded-For", "203.0.113.9"));
    subscribe_through(
        &client,
        &proxy.url("/subscribe"),
        "bob@example.org",
        "members",
        forged,
    )
    .await;
    let bob = run(&db, &["subscriber", "show", "bob@example.org", "--json"]).json();
    assert_eq!(bob[0]["lists"][0]["consent"]["ip"], "127.0.0.2", "{bob}");
    let confirmation = outbox_message(&db.dir.path().join("outbox")).await;
    assert!(
        confirmation.contains(&format!("{}/confirm/", proxy.base)),
        "{confirmation}"
    );

    let store = db.store().await;
    let path = one_click_path(&*store, "ann@example.org", "members").await;
    assert_eq!(one_click(&proxy.url(&path)).await.status(), 200);
    unsubscribed(&*store, "ann@example.org", "members").await;
    store.close().await;

    let (code, log) = daemon.stop().await;
    assert_eq!(code, 0, "{log}");
}

/// The first message written to the outbox folder, once there is one.
async fn outbox_message(outbox: &Path) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let first = std::fs::read_dir(outbox)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "eml"));
        if let Some(path) = first {
            return read(&path);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

mod nginx {
    use super::*;

    #[tokio::test]
    #[ignore = "needs nginx: scripts/test runs it when it is installed"]
    async fn behind_nginx_sign_ups_record_the_client_nginx_saw_and_one_click_works() {
        works_behind(Proxy::nginx).await;
    }

    #[test]
    #[ignore = "needs nginx: scripts/test runs it when it is installed"]
    fn the_https_site_passes_nginx_t() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ok, _, err) = tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=news.example.org",
                "-keyout",
                d.join("privkey.pem").to_str().unwrap(),
                "-out",
                d.join("fullchain.pem").to_str().unwrap(),
            ],
        );
        assert!(ok, "{err}");
        let site = read(&deploy_file("nginx/necmail.conf"))
            .replace(
                "/etc/letsencrypt/live/news.example.org",
                &d.display().to_string(),
            )
            .replace(
                "/etc/nginx/snippets/necmail-proxy.conf",
                &deploy_file("nginx/necmail-proxy.conf")
                    .display()
                    .to_string(),
            );
        std::fs::write(d.join("site.conf"), site).unwrap();
        let conf = format!(
            "pid {0}/nginx.pid;\nerror_log stderr;\nevents {{}}\n\
             http {{\n  access_log off;\n  include {0}/site.conf;\n}}\n",
            d.display()
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let (ok, out, err) = tool(
            "nginx",
            &[
                "-t",
                "-p",
                d.to_str().unwrap(),
                "-c",
                d.join("nginx.conf").to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(!err.contains("[warn]"), "{err}");
    }
}

mod caddy {
    use super::*;

    #[tokio::test]
    #[ignore = "needs caddy: scripts/test runs it when it is installed"]
    async fn behind_caddy_sign_ups_record_the_client_caddy_saw_and_one_click_works() {
        works_behind(Proxy::caddy).await;
    }

    #[test]
    #[ignore = "needs caddy: scripts/test runs it when it is installed"]
    fn the_caddyfile_is_valid() {
        let caddyfile = deploy_file("Caddyfile");
        let (ok, out, err) = tool(
            "caddy",
            &[
                "validate",
                "--adapter",
                "caddyfile",
                "--config",
                caddyfile.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}{err}");
    }
}

on_both_backends! {
    async fn a_backup_taken_while_serve_runs_restores_into_a_new_folder_with_the_same_counts(db) {
        members_with_ann(db);
        for n in 0..20 {
            let email = format!("member{n}@example.org");
            run(db, &["subscriber", "add", &email, "--list", "members", "--confirmed"]).ok();
        }
        let daemon = Daemon::start(db, &[]).await;
        let copy = db.dir.path().join("backup.db");
        let backup = run(db, &["backup", copy.to_str().unwrap()]);
        if db.url.starts_with("postgres") {
            let err = backup.fails(2);
            assert!(err.contains("pg_dump"), "{err}");
            assert!(!copy.exists());
        } else {
            assert!(backup.ok().contains("backed up the database to"));
            let again = run(db, &["backup", copy.to_str().unwrap()]);
            assert!(again.fails(2).contains("already exists"));

            let restored = tempfile::tempdir().unwrap();
            std::fs::copy(&copy, restored.path().join("necmail.db")).unwrap();
            let counts = |url: &str, dir: &Path| {
                ["subscriber", "list", "report"].map(|what| {
                    let out = crate::support::cli::run_command(
                        crate::support::cli::necmail_at(url, dir).args([what, "ls", "--json"]),
                    );
                    out.json().as_array().unwrap().len()
                })
            };
            let original = counts(&db.url, db.dir.path());
            let url = format!("sqlite://{}", restored.path().join("necmail.db").display());
            assert_eq!(counts(&url, restored.path()), original);
            assert_eq!(original[0], 21);
        }
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
    }
}
