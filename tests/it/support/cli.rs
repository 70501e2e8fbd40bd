//! Runs the real `necmail` binary against a test database.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::TestDb;

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success, got {}:\n{}",
            self.code, self.stderr
        );
        &self.stdout
    }

    /// Asserts the exit code and that stderr is one clear error, with no
    /// panic or backtrace; returns stderr.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains("error:"),
            "no error line in:\n{}",
            self.stderr
        );
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "SELECT ",
            "INSERT ",
            "sqlx::",
        ] {
            assert!(
                !self.stderr.contains(bad),
                "stderr shows internals ({bad}):\n{}",
                self.stderr
            );
        }
        &self.stderr
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A command line for the binary, run in the test's own folder (so no
/// stray `.env` is read) against the test's database. `serve` takes no
/// inbound mail unless the test sets NECMAIL_INBOUND_ADDR again: tests run
/// side by side, and would all take the default port.
pub fn necmail(db: &TestDb) -> Command {
    necmail_at(&db.url, db.dir.path())
}

pub fn necmail_at(database_url: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_necmail"));
    cmd.current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env_remove("NECMAIL_LOG")
        .env_remove("NECMAIL_LOG_FORMAT")
        .env_remove("NECMAIL_DB_MAX_CONNECTIONS")
        .env_remove("NECMAIL_FEED_ALLOW_PRIVATE")
        .env("NECMAIL_INBOUND_ADDR", "off")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// The variable that lets necmail fetch from the test feed server on
/// 127.0.0.1: without it, fetches to loopback addresses are refused.
pub const ALLOW_LOOPBACK_FEEDS: (&str, &str) = ("NECMAIL_FEED_ALLOW_PRIVATE", "true");

/// Runs `necmail ARGS…` against `db`, allowed to fetch from loopback addresses.
pub fn run_allowing_loopback(db: &TestDb, args: &[&str]) -> Run {
    let (name, value) = ALLOW_LOOPBACK_FEEDS;
    run_command(necmail(db).env(name, value).args(args))
}

/// Runs `necmail ARGS…` against `db`.
pub fn run(db: &TestDb, args: &[&str]) -> Run {
    Run::from(necmail(db).args(args).output().expect("run necmail"))
}

/// Runs `necmail ARGS…` with `input` on stdin.
pub fn run_with_stdin(db: &TestDb, args: &[&str], input: &[u8]) -> Run {
    let mut child = necmail(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn necmail");
    // A command that refuses its input may exit before reading all of it.
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    Run::from(child.wait_with_output().expect("wait for necmail"))
}

pub fn run_command(cmd: &mut Command) -> Run {
    Run::from(cmd.output().expect("run necmail"))
}
