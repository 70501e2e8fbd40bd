//! End to end: the real binary against a temporary database.

use std::fs;

use crate::support::cli::{necmail_at, run, run_command, run_with_stdin};
use crate::support::{TestDb, on_both_backends};

fn setup(db: &TestDb) {
    run(
        db,
        &["list", "create", "members", "--name", "Party members"],
    )
    .ok();
    run(
        db,
        &[
            "list",
            "create",
            "councillors",
            "--name",
            "Councillors",
            "--single-opt-in",
        ],
    )
    .ok();
}

/// Everything stored, as the CLI shows it: for "nothing changed" checks.
fn snapshot(db: &TestDb) -> (serde_json::Value, serde_json::Value) {
    (
        run(db, &["list", "ls", "--json"]).json(),
        run(db, &["subscriber", "ls", "--json"]).json(),
    )
}

on_both_backends! {
    async fn an_admin_manages_lists_and_subscribers_end_to_end(db) {
        setup(db);
        run(db, &["subscriber", "add", "Jo@Example.ORG", "--name", "Jo Bloggs", "--list", "members", "--list", "councillors",
                  "--attr", "role=councillor", "--attr", "council=Islington"]).ok();
        let lists = run(db, &["list", "ls", "--json"]).json();
        assert_eq!(lists[0]["slug"], "councillors");
        assert_eq!(lists[0]["subscribers"]["confirmed"], 1);
        assert_eq!(lists[1]["subscribers"]["unconfirmed"], 1);

        let shown = run(db, &["subscriber", "show", "jo@example.org", "--json"]).json();
        let jo = &shown[0];
        assert_eq!(jo["email"], "Jo@example.org");
        assert_eq!(jo["name"], "Jo Bloggs");
        assert_eq!(jo["status"], "active");
        assert_eq!(jo["attributes"]["council"], "Islington");
        assert_eq!(jo["lists"][0]["slug"], "councillors");
        assert_eq!(jo["lists"][0]["status"], "confirmed");
        assert_eq!(jo["lists"][1]["consent"]["method"], "admin");

        run(db, &["subscriber", "update", "jo@example.org", "--attr", "ward=Canonbury", "--unset-attr", "council"]).ok();
        run(db, &["list", "rename", "members", "--name", "All members"]).ok();
        let text = run(db, &["list", "show", "members"]).ok().to_owned();
        assert!(text.contains("All members"), "{text}");

        let found = run(db, &["subscriber", "ls", "--attr", "ward=Canonbury", "--json"]).json();
        assert_eq!(found.as_array().unwrap().len(), 1);
        let none = run(db, &["subscriber", "ls", "--status", "blocklisted", "--json"]).json();
        assert_eq!(none, serde_json::json!([]));

        run(db, &["subscriber", "block", "jo@example.org"]).ok();
        let blocked = run(db, &["subscriber", "ls", "--status", "blocklisted", "--json"]).json();
        assert_eq!(blocked[0]["status"], "blocklisted");
        run(db, &["subscriber", "unblock", "jo@example.org"]).ok();

        run(db, &["subscriber", "unsubscribe", "jo@example.org", "--list", "members"]).ok();
        let jo = run(db, &["subscriber", "show", "jo@example.org", "--json"]).json();
        assert_eq!(jo[0]["lists"][1]["status"], "unsubscribed");

        run(db, &["subscriber", "rm", "jo@example.org", "--erase"]).ok();
        let err = run(db, &["subscriber", "add", "jo@example.org", "--list", "members"]).fails(2).to_owned();
        assert!(err.contains("erased"), "{err}");
        run(db, &["list", "rm", "members"]).ok();
    }

    async fn an_export_imports_again_into_a_fresh_database(db) {
        setup(db);
        let csv = "email,name,role,council\nann@example.org,\"Smith, Ann\",councillor,Islington\nbob@example.org,Bob,member,\n";
        let out = run_with_stdin(db, &["subscriber", "import", "-", "--list", "members", "--confirmed"], csv.as_bytes());
        assert_eq!(out.ok().trim(), "imported 2, updated 0, skipped 0 suppressed, rejected 0, unchanged 0");
        let exported = run(db, &["subscriber", "export", "--list", "members"]).ok().to_owned();
        assert_eq!(exported, "email,name,council,role\nann@example.org,\"Smith, Ann\",Islington,councillor\nbob@example.org,Bob,,member\n");

        let fresh = TestDb::sqlite();
        setup(&fresh);
        let again = run_with_stdin(&fresh, &["subscriber", "import", "-", "--list", "members", "--confirmed"], exported.as_bytes());
        assert!(again.ok().starts_with("imported 2,"));
        assert_eq!(run(&fresh, &["subscriber", "export"]).ok(), exported);
    }

    async fn bad_input_gets_a_clear_error_and_changes_nothing(db) {
        setup(db);
        run(db, &["subscriber", "add", "kept@example.org", "--name", "Kept", "--list", "members"]).ok();
        let before = snapshot(db);
        let long = format!("{}@example.org", "a".repeat(65));
        let longer = format!("{}@{}.{}.{}.{}.org", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(63), "e".repeat(50));
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["subscriber", "add", "not-an-address", "--list", "members"], "not a usable address"),
            (vec!["subscriber", "add", "x@example.org", "--name", "Jo\r\nBcc: all@example.org", "--list", "members"], "line break"),
            (vec!["subscriber", "add", &long, "--list", "members"], "64 octets"),
            (vec!["subscriber", "add", &longer, "--list", "members"], "longer than 254 octets"),
            (vec!["subscriber", "add", "x@example.org", "--list", "nope"], "there is no list \"nope\""),
            (vec!["subscriber", "add", "x@example.org", "--list", "Bad_Slug"], "list slug"),
            (vec!["list", "create", "members", "--name", "Again"], "already exists"),
            (vec!["list", "rm", "members"], "--force"),
            (vec!["subscriber", "update", "kept@example.org", "--name", "a\nb"], "line break"),
            (vec!["subscriber", "show", "nobody@example.org"], "there is no subscriber"),
            (vec!["subscriber", "ls", "--status", "happy"], "not a status"),
            (vec!["subscriber", "import", "/nonexistent.csv", "--list", "members"], "cannot open"),
        ];
        for (args, expected) in cases {
            let err = run(db, &args).fails(2).to_owned();
            assert!(err.contains(expected), "{args:?}: expected {expected:?} in:\n{err}");
        }
        assert_eq!(snapshot(db), before);
    }

    async fn bad_csv_files_are_refused_whole_or_row_by_row(db) {
        setup(db);
        let before = snapshot(db);
        let no_email = run_with_stdin(db, &["subscriber", "import", "-", "--list", "members"], b"name,role\nJo,member\n");
        assert!(no_email.fails(2).contains("no email column"));
        let empty = run_with_stdin(db, &["subscriber", "import", "-", "--list", "members"], b"");
        assert!(empty.fails(2).contains("the file is empty"));
        let unknown = run_with_stdin(db, &["subscriber", "import", "-", "--list", "nope"], b"email\na@example.org\n");
        assert!(unknown.fails(2).contains("there is no list"));
        assert_eq!(snapshot(db), before);

        let rejects = db.dir.path().join("rejects.csv");
        let mut csv = b"email,name\nok@example.org,Ok\n".to_vec();
        csv.extend_from_slice(b"bad\xfe@example.org,Bad\n");
        let out = run_with_stdin(db,
            &["subscriber", "import", "-", "--list", "members", "--rejects", rejects.to_str().unwrap()], &csv);
        assert_eq!(out.ok().lines().next(), Some("imported 1, updated 0, skipped 0 suppressed, rejected 1, unchanged 0"));
        let written = fs::read_to_string(&rejects).unwrap();
        assert!(written.starts_with("line,email,reason\n3,"), "{written}");
        assert!(written.contains("UTF-8"), "{written}");
    }

    async fn a_formula_typed_as_a_name_is_exported_as_text_and_imported_back_as_it_was(db) {
        setup(db);
        let formula = "=HYPERLINK(\"http://evil\",\"x\")";
        run(db, &["subscriber", "add", "jo@example.org", "--name", formula, "--list", "members",
                  "--attr", "phone=+44 20 7946 0000", "--attr", "note='quoted"]).ok();
        let exported = run(db, &["subscriber", "export"]).ok().to_owned();
        assert_eq!(
            exported,
            "email,name,note,phone\njo@example.org,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",''quoted,'+44 20 7946 0000\n"
        );
        let fresh = TestDb::sqlite();
        setup(&fresh);
        run_with_stdin(&fresh, &["subscriber", "import", "-", "--list", "members", "--confirmed"], exported.as_bytes()).ok();
        let jo = &run(&fresh, &["subscriber", "ls", "--json"]).json()[0];
        assert_eq!(jo["name"], formula);
        assert_eq!(jo["attributes"]["phone"], "+44 20 7946 0000");
        assert_eq!(jo["attributes"]["note"], "'quoted");
        assert_eq!(run(&fresh, &["subscriber", "export"]).ok(), exported);
    }

    async fn an_unclosed_quote_reports_every_row_it_swallowed_with_its_lines(db) {
        setup(db);
        let mut csv = String::from("email,name\nfirst@example.org,First\nbroken@example.org,\"Unclosed\n");
        for i in 0..1000 {
            csv.push_str(&format!("row{i}@example.org,Row {i}\n"));
        }
        let out = run_with_stdin(db, &["subscriber", "import", "-", "--list", "members"], csv.as_bytes());
        assert_eq!(out.ok().lines().next(), Some("imported 1, updated 0, skipped 0 suppressed, rejected 1001, unchanged 0"));
        assert!(out.stderr.contains("line 3: the quote opened on line 3 is never closed, so lines 3–1003"), "{}", out.stderr);
        assert!(out.stderr.contains("1001 rows were not imported"), "{}", out.stderr);
    }

    async fn a_file_with_more_attribute_columns_than_the_limit_is_refused_whole(db) {
        setup(db);
        let before = snapshot(db);
        let mut csv = String::from("email");
        for i in 0..100_000 {
            csv.push_str(&format!(",c{i}"));
        }
        csv.push_str("\nmany@example.org");
        csv.push_str(&",x".repeat(100_000));
        csv.push('\n');
        let out = run_with_stdin(db, &["subscriber", "import", "-", "--list", "members"], csv.as_bytes());
        assert!(out.fails(2).contains("more than 50 attribute columns"), "{}", out.stderr);
        assert_eq!(snapshot(db), before);
    }
}

#[test]
fn a_malformed_url_in_the_configuration_never_shows_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("NECMAIL_SMTP_URL", "smtp://mailer:hunter2@relay:notaport"),
        (
            "DATABASE_URL",
            "postgres://necmail:hunter2@db:notaport/necmail",
        ),
    ] {
        for args in [&["config", "check"][..], &["list", "ls"], &["serve"]] {
            let out = run_command(necmail_at("", dir.path()).env(variable, value).args(args));
            let err = out.fails(2);
            assert!(
                err.contains(&format!("error: {variable}:")),
                "{args:?}: {err}"
            );
            assert!(
                !err.contains("hunter2") && !out.stdout.contains("hunter2"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn a_dotenv_line_that_cannot_be_parsed_is_named_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(".env"),
        "# settings\nNECMAIL_LOG_FORMAT=text\nNECMAIL_SMTP_URL=smtp://mailer:hunter2 secret@relay\n",
    )
    .unwrap();
    let out = run_command(necmail_at("", dir.path()).args(["config", "check"]));
    let err = out.fails(2);
    assert!(
        err.contains("line 3 (NECMAIL_SMTP_URL) cannot be parsed"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn sending_through_a_relay_without_a_secret_is_refused_naming_the_variable() {
    let db = TestDb::sqlite();
    setup(&db);
    let before = snapshot(&db);
    let relay = [("NECMAIL_SMTP_URL", "smtp://127.0.0.1:9")];
    for args in [
        &["campaign", "send", "1", "--wait"][..],
        &["send-test", "some-report", "--to", "jo@example.org"],
    ] {
        let mut cmd = crate::support::cli::necmail(&db);
        cmd.envs(relay).env_remove("NECMAIL_SECRET").args(args);
        let out = run_command(&mut cmd);
        let err = out.fails(2);
        assert!(
            err.contains(
                "NECMAIL_SECRET: it must be set when mail goes out through NECMAIL_SMTP_URL"
            ),
            "{args:?}: {err}"
        );
    }
    assert_eq!(snapshot(&db), before);
}

#[test]
fn a_database_path_that_cannot_be_written_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        necmail_at(
            "sqlite:///nonexistent-folder/necmail.db?mode=rwc",
            dir.path(),
        )
        .args(["list", "create", "members", "--name", "Members"]),
    );
    let err = out.fails(1);
    assert!(
        err.contains("cannot open the SQLite database /nonexistent-folder/necmail.db"),
        "{err}"
    );
}

#[test]
fn an_unreachable_postgres_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        necmail_at("postgres://necmail:hunter2@127.0.0.1:1/necmail", dir.path())
            .args(["list", "ls"]),
    );
    let err = out.fails(1);
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:1/necmail"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
}

#[test]
fn config_check_prints_the_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        necmail_at(
            "postgres://necmail:hunter2@db.example:5432/necmail",
            dir.path(),
        )
        .args(["config", "check"]),
    );
    let text = out.ok();
    assert!(
        text.contains("DATABASE_URL=postgres://necmail:REDACTED@db.example:5432/necmail  # set"),
        "{text}"
    );
    assert!(
        text.contains("NECMAIL_DB_MAX_CONNECTIONS=5  # default"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn config_check_names_each_invalid_variable_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        necmail_at("mysql://localhost/x", dir.path())
            .env("NECMAIL_DB_MAX_CONNECTIONS", "0")
            .env("NECMAIL_WORKER_THREADS", "0")
            .args(["config", "check"]),
    );
    let err = out.fails(2);
    assert!(err.contains("DATABASE_URL:"), "{err}");
    assert!(
        err.contains("NECMAIL_DB_MAX_CONNECTIONS: \"0\" is not a whole number from 1 to 1000"),
        "{err}"
    );
    assert!(
        err.contains("NECMAIL_WORKER_THREADS: \"0\" is not a whole number from 1 to 1024"),
        "{err}"
    );
}

#[test]
fn the_default_database_is_a_sqlite_file_in_the_working_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = necmail_at("", dir.path());
    cmd.env_remove("DATABASE_URL")
        .args(["list", "create", "members", "--name", "Members"]);
    run_command(&mut cmd).ok();
    assert!(dir.path().join("necmail.db").exists());
}

#[test]
fn a_command_run_away_from_the_database_refuses_naming_the_file_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().canonicalize().unwrap().join("necmail.db");
    for args in [
        vec!["subscriber", "ls"],
        vec!["report", "ls"],
        vec!["campaign", "ls"],
        vec!["list", "ls"],
    ] {
        let mut cmd = necmail_at("", dir.path());
        cmd.env_remove("DATABASE_URL").args(&args);
        let out = run_command(&mut cmd);
        let err = out.fails(2);
        assert!(
            err.contains(&format!(
                "there is no necmail database at {}",
                expected.display()
            )),
            "{args:?}: {err}"
        );
        assert!(
            !expected.exists(),
            "{args:?} created {}",
            expected.display()
        );
    }
    let mut check = necmail_at("", dir.path());
    check.env_remove("DATABASE_URL").args(["config", "check"]);
    let shown = run_command(&mut check).ok().to_owned();
    assert!(
        shown.contains(&format!(
            "# the database is the SQLite file {}, which does not exist yet",
            expected.display()
        )),
        "{shown}"
    );
    let mut migrate = necmail_at("", dir.path());
    migrate.env_remove("DATABASE_URL").arg("migrate");
    run_command(&mut migrate).ok();
    let mut list = necmail_at("", dir.path());
    list.env_remove("DATABASE_URL").args(["list", "ls"]);
    run_command(&mut list).ok();
}

#[test]
fn links_follow_the_http_address_when_no_public_url_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut check = necmail_at("", dir.path());
    check
        .env("NECMAIL_HTTP_ADDR", "127.0.0.1:9123")
        .env_remove("NECMAIL_PUBLIC_URL")
        .args(["config", "check"]);
    let shown = run_command(&mut check).ok().to_owned();
    assert!(
        shown.contains("NECMAIL_PUBLIC_URL=http://127.0.0.1:9123/  # default"),
        "{shown}"
    );
}

#[test]
fn a_dotenv_file_in_the_working_folder_is_read() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=sqlite://from-dotenv.db?mode=rwc\n",
    )
    .unwrap();
    let mut cmd = necmail_at("", dir.path());
    cmd.env_remove("DATABASE_URL").args(["migrate"]);
    run_command(&mut cmd).ok();
    assert!(dir.path().join("from-dotenv.db").exists());
}

#[test]
fn the_env_example_copied_to_dotenv_is_a_working_configuration() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"),
        dir.path().join(".env"),
    )
    .unwrap();
    let mut cmd = necmail_at("", dir.path());
    cmd.env_remove("DATABASE_URL").args(["config", "check"]);
    let out = run_command(&mut cmd).ok().to_owned();
    assert!(
        out.contains("NEC Report <reports@necmail.localhost>"),
        "{out}"
    );
}

#[test]
fn logs_written_anywhere_but_a_terminal_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = necmail_at("", dir.path());
    cmd.env_remove("DATABASE_URL")
        .env("NECMAIL_LOG", "info")
        .arg("migrate");
    let out = run_command(&mut cmd);
    out.ok();
    assert!(
        out.stderr.contains("applied database migrations"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["list", "--help"],
        vec!["list", "create", "--help"],
        vec!["subscriber", "--help"],
        vec!["subscriber", "import", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let out = run_command(necmail_at("sqlite://unused.db", dir.path()).args(&args));
        assert!(out.ok().contains("Usage:"), "{args:?}");
    }
}

#[test]
fn output_piped_into_a_closed_reader_is_not_an_error() {
    let db = TestDb::sqlite();
    setup(&db);
    let mut child = crate::support::cli::necmail(&db)
        .args(["list", "ls", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(0),
        "{out:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
