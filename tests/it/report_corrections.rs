//! Correcting reports through the real binary: `report edit` in the
//! editor, `report replace`, importing the same post again, `--slug`, and
//! what may happen to a report once a campaign has sent it.

use std::fs;
use std::path::PathBuf;

use crate::support::app::spawn_app;
use crate::support::cli::{Run, necmail, run, run_allowing_loopback, run_command, run_with_stdin};
use crate::support::http::{FeedServer, fixture_path};
use crate::support::{TestDb, on_both_backends};

const MARCH: &str = "labour-nec-report-march-2017";
const TITLE: &str = "Labour NEC Report – March 2017";
const CORRECTED: &str = "Labour NEC Report – March 2017 (corrected)";

/// The editor that corrects the March report: a figure in its body, and its title.
const FIX: &str = r#"sed -i 's/7million/7 million/; s/March 2017/March 2017 (corrected)/' "$1""#;

/// `march-2017.md` copied into the test's folder; returns its path.
fn march_file(db: &TestDb) -> String {
    let file = db.dir.path().join("march-2017.md");
    fs::copy(fixture_path("march-2017.md"), &file).unwrap();
    file.to_str().unwrap().to_owned()
}

/// The March report with its figure corrected, written over `file`.
fn correct_the_figure(file: &str) {
    let fixed = fs::read_to_string(file)
        .unwrap()
        .replace("7million", "7 million");
    fs::write(file, fixed).unwrap();
}

/// An executable shell script `name` in the test's folder, run with the
/// file to edit as `$1`; returns its path.
pub(crate) fn script(db: &TestDb, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = db.dir.path().join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The test's own folder for temporary files.
fn tmp(db: &TestDb) -> PathBuf {
    let dir = db.dir.path().join("tmp");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `necmail ARGS…` with EDITOR set to `editor`, VISUAL unset, and
/// temporary files in [`tmp`].
fn run_editing(db: &TestDb, editor: &str, args: &[&str]) -> Run {
    run_command(
        necmail(db)
            .env("EDITOR", editor)
            .env_remove("VISUAL")
            .env("TMPDIR", tmp(db))
            .args(args),
    )
}

/// What `report show REPORT --json` shows.
fn shown(db: &TestDb, report: &str) -> serde_json::Value {
    run(db, &["report", "show", report, "--json"]).json()[0].clone()
}

/// A shown report's Markdown: its introduction and each section's text.
fn text_of(report: &serde_json::Value) -> String {
    let mut text = report["intro"].as_str().unwrap().to_owned();
    for section in report["sections"].as_array().unwrap() {
        text.push('\n');
        text.push_str(section["markdown"].as_str().unwrap());
    }
    text
}

/// A single-opt-in list `members` with one confirmed subscriber.
fn members(db: &TestDb) {
    let list = [
        "list",
        "create",
        "members",
        "--name",
        "Members",
        "--single-opt-in",
    ];
    run(db, &list).ok();
    let ann = [
        "subscriber",
        "add",
        "ann@example.org",
        "--list",
        "members",
        "--confirmed",
    ];
    run(db, &ann).ok();
}

/// A draft campaign of `report` to `members`; returns its id.
fn campaign(db: &TestDb, report: &str) -> String {
    let create = [
        "campaign", "create", "--report", report, "--list", "members",
    ];
    run(db, &create).ok().trim().to_owned()
}

on_both_backends! {
    async fn report_edit_opens_the_report_with_its_front_matter_and_stores_what_was_edited(db) {
        let file = march_file(db);
        run(db, &["report", "import", &file]).ok();
        assert_eq!(shown(db, MARCH)["earlier_versions"], 0);
        let editor = script(db, "fix", &format!("cp \"$1\" seen.md\n{FIX}"));
        let edited = run_editing(db, &editor, &["report", "edit", MARCH]);
        assert_eq!(edited.ok().trim(), format!("updated report 1 {MARCH}: {CORRECTED} (4 sections)"));

        let seen = fs::read_to_string(db.dir.path().join("seen.md")).unwrap();
        assert!(seen.starts_with("---\ntitle: "), "{seen}");
        for part in ["2017-03-21", "summary: ", "the policy consultation", "\n---\n", "## Leader’s Report\n", "7million"] {
            assert!(seen.contains(part), "{part:?} is not in what the editor saw:\n{seen}");
        }
        let report = shown(db, "1");
        assert_eq!(report["title"], CORRECTED);
        assert_eq!(report["slug"], MARCH, "the slug, the report's web address, stays");
        assert_eq!(report["meeting_date"], "2017-03-21");
        assert_eq!(report["summary"], "Budget, the digital review, regional offices and the policy consultation.");
        assert_eq!(report["sections"][2]["markdown"], "There are 7 million people living in areas with a Labour council.");
        assert_eq!(report["earlier_versions"], 1);
        let text = run(db, &["report", "show", MARCH]).ok().to_owned();
        assert!(text.contains("versions:   1 earlier"), "{text}");

        let unchanged = run_editing(db, "true", &["report", "edit", "1"]);
        assert_eq!(unchanged.ok().trim(), format!("report 1 {MARCH} is unchanged"));
        assert_eq!(shown(db, "1")["earlier_versions"], 1);
        let seen = seen.replace("7million", "7 million");
        fs::write(db.dir.path().join("seen.md"), seen).unwrap();
        let restored = run(db, &["report", "replace", "1", db.dir.path().join("seen.md").to_str().unwrap()]);
        assert_eq!(restored.ok().trim(), format!("updated report 1 {MARCH}: {TITLE} (4 sections)"), "the file the editor saw is a report file");
    }

    async fn the_editor_is_editor_else_visual_else_vi(db) {
        run(db, &["report", "import", &march_file(db)]).ok();
        let adds = |who: &str| script(db, who, &format!("printf '\\nAdded by {who}.\\n' >> \"$1\""));
        let (editor, visual) = (adds("editor"), adds("visual"));
        let bin = db.dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fs::rename(adds("vi"), bin.join("vi")).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let runs = [
            run_command(necmail(db).env("EDITOR", &editor).env("VISUAL", &visual).args(["report", "edit", "1"])),
            run_command(necmail(db).env_remove("EDITOR").env("VISUAL", &visual).args(["report", "edit", "1"])),
            run_command(necmail(db).env("EDITOR", "").env_remove("VISUAL").env("PATH", &path).args(["report", "edit", "1"])),
        ];
        for (run, who) in runs.iter().zip(["editor", "visual", "vi"]) {
            assert!(run.ok().starts_with("updated report 1 "), "{who}: {}", run.stdout);
        }
        let last = text_of(&shown(db, "1"));
        assert!(last.ends_with("Added by editor.\n\nAdded by visual.\n\nAdded by vi."), "{last}");
        assert_eq!(shown(db, "1")["earlier_versions"], 3);
    }

    async fn an_editor_that_fails_or_edited_text_that_cannot_be_imported_changes_nothing(db) {
        run(db, &["report", "import", &march_file(db)]).ok();
        let before = shown(db, "1");
        let err = run_editing(db, "false", &["report", "edit", "1"]).fails(2).to_owned();
        assert!(err.contains("the editor (false) failed") && err.contains("report 1 is unchanged"), "{err}");
        let cases = [
            ("no-title", "printf 'Just some text.\\n' > \"$1\"", "the report has no title"),
            ("bad-yaml", "sed -i 's/^title: .*/title: [unclosed/' \"$1\"", "the front matter is not valid YAML"),
            ("too-large", "head -c 1100000 /dev/zero | tr '\\0' a >> \"$1\"", "at most 1 MiB"),
            ("not-utf8", "printf '\\377\\n' >> \"$1\"", "is not UTF-8 text"),
            ("too-deep", "printf '\\n%s deep\\n' \"$(printf '> %.0s' $(seq 70))\" >> \"$1\"", "at most 64 are allowed"),
        ];
        for (name, body, expected) in cases {
            let err = run_editing(db, &script(db, name, body), &["report", "edit", "1"]).fails(2).to_owned();
            assert!(err.contains(expected), "{name}: expected {expected:?} in:\n{err}");
            assert!(err.contains("report 1 is unchanged"), "{name}: {err}");
            assert!(err.contains(&format!("the edited text is kept in {}", tmp(db).display())), "{name}: {err}");
            assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{name}: {err}");
            assert_eq!(shown(db, "1"), before, "{name}");
        }
        let kept = fs::read_dir(tmp(db)).unwrap().count();
        assert_eq!(kept, cases.len(), "only what was edited is kept, once each");
    }

    async fn report_replace_takes_the_text_from_a_file_or_stdin_in_any_import_format(db) {
        let file = march_file(db);
        run(db, &["report", "import", &file]).ok();
        let paste = db.dir.path().join("fixed.txt");
        fs::write(&paste, format!("{TITLE}\n\nThere are 7 million people living in areas with a Labour council.\n")).unwrap();
        let replaced = run(db, &["report", "replace", MARCH, paste.to_str().unwrap()]);
        assert_eq!(replaced.ok().trim(), format!("updated report 1 {MARCH}: {TITLE} (0 sections)"));
        let report = shown(db, "1");
        assert_eq!(report["intro"], "There are 7 million people living in areas with a Labour council.");
        assert_eq!(report["meeting_date"], "2017-03-21", "a text without a meeting date keeps the report's");
        assert_eq!(report["summary"], "Budget, the digital review, regional offices and the policy consultation.");
        assert_eq!(report["source"]["path"], fs::canonicalize(&file).unwrap().to_str().unwrap(), "the source stays");
        assert_eq!(report["earlier_versions"], 1);

        let markdown = format!("---\ntitle: {CORRECTED}\n---\n## Local Government Report\n\n7 million people.\n");
        let from_stdin = run_with_stdin(db, &["report", "replace", "1", "-", "--format", "md"], markdown.as_bytes());
        assert_eq!(from_stdin.ok().trim(), format!("updated report 1 {MARCH}: {CORRECTED} (1 sections)"));
        let again = run_with_stdin(db, &["report", "replace", "1", "-"], markdown.as_bytes());
        assert_eq!(again.ok().trim(), format!("report 1 {MARCH} is unchanged"));
        assert_eq!(shown(db, "1")["earlier_versions"], 2);

        let before = shown(db, "1");
        let empty = db.dir.path().join("empty.md");
        fs::write(&empty, "").unwrap();
        let missing = db.dir.path().join("missing.md");
        for (args, expected) in [
            (vec!["report", "replace", "99", paste.to_str().unwrap()], "there is no report 99".to_owned()),
            (vec!["report", "replace", "1", missing.to_str().unwrap()], format!("cannot read {}", missing.display())),
            (vec!["report", "replace", "1", empty.to_str().unwrap()], "the input is empty".to_owned()),
        ] {
            let err = run(db, &args).fails(2).to_owned();
            assert!(err.contains(&expected), "{args:?}: expected {expected:?} in:\n{err}");
        }
        assert_eq!(shown(db, "1"), before);
    }

    async fn importing_the_same_post_again_updates_an_unsent_report_instead_of_copying_it(db) {
        let file = march_file(db);
        run(db, &["report", "import", &file]).ok();
        correct_the_figure(&file);
        let again = run(db, &["report", "import", &file]).ok().to_owned();
        assert_eq!(again.trim(), format!("updated report 1 {MARCH}: {TITLE} (4 sections)"));
        let same = run(db, &["report", "import", &file]).ok().to_owned();
        assert_eq!(same.trim(), format!("already stored as report 1 {MARCH}"));
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 1);
        let report = shown(db, "1");
        assert!(text_of(&report).contains("7 million people"), "{report}");
        assert_eq!(report["earlier_versions"], 1);

        let server = FeedServer::start();
        let feed = server.url("/live.rss");
        server.set_live(&[("item-1", "Emergency NEC meeting", "<p>The NEC met at short notice.</p>")]);
        let first = run_allowing_loopback(db, &["report", "import", &feed]).ok().to_owned();
        assert_eq!(first.trim(), "imported report 2 emergency-nec-meeting: Emergency NEC meeting (0 sections)");
        server.set_live(&[("item-1", "Emergency NEC meeting, corrected", "<p>The NEC met at very short notice.</p>")]);
        let updated = run_allowing_loopback(db, &["report", "import", &feed]).ok().to_owned();
        assert_eq!(
            updated.trim(),
            "updated report 2 emergency-nec-meeting: Emergency NEC meeting, corrected (0 sections)",
            "a feed item is the same post by its guid, whatever its title"
        );

        run_allowing_loopback(db, &["source", "add", &feed, "--send-existing"]).ok();
        let edit = script(db, "edit", "sed -i 's/very short/no/' \"$1\"");
        run_editing(db, &edit, &["report", "edit", "2"]).ok();
        let polled = run_allowing_loopback(db, &["source", "poll"]).ok().to_owned();
        assert!(polled.contains("0 new, 1 already stored"), "{polled}");
        assert_eq!(shown(db, "2")["intro"], "The NEC met at no notice.", "polling keeps a correction made here");
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 2);
    }

    async fn a_sent_report_is_corrected_only_with_after_send_and_the_archive_shows_the_correction(db) {
        members(db);
        let file = march_file(db);
        run(db, &["report", "import", &file]).ok();
        let id = campaign(db, "1");
        run(db, &["campaign", "send", &id, "--wait"]).ok();
        let app = spawn_app(db).await;
        let web_version = || async { app.get(&format!("/archive/{MARCH}")).await.text().await.unwrap() };
        assert!(web_version().await.contains("7million"));

        correct_the_figure(&file);
        let opener = script(db, "opener", "touch opened");
        for args in [vec!["report", "edit", MARCH], vec!["report", "replace", MARCH, &file], vec!["report", "import", &file]] {
            let err = run_editing(db, &opener, &args).fails(2).to_owned();
            assert!(err.contains(&format!("campaign {id} (done)")) && err.contains("--after-send"), "{args:?}: {err}");
        }
        assert!(!db.dir.path().join("opened").exists(), "no editor opens on a report it cannot change");
        assert_eq!(shown(db, "1")["earlier_versions"], 0);
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 1);

        let updated = run(db, &["report", "import", &file, "--after-send"]).ok().to_owned();
        assert_eq!(updated.trim(), format!("updated report 1 {MARCH}: {TITLE} (4 sections)"));
        let page = web_version().await;
        assert!(page.contains("7 million") && !page.contains("7million"), "{page}");
        let summary = script(db, "summary", "sed -i 's/^summary: .*/summary: Corrected after sending./' \"$1\"");
        run_editing(db, &summary, &["report", "edit", MARCH, "--after-send"]).ok();
        assert!(web_version().await.contains("Corrected after sending."), "a summary alone changed");
        let archive = app.get("/archive").await.text().await.unwrap();
        assert!(archive.contains("Corrected after sending."), "{archive}");
        assert_eq!(shown(db, "1")["earlier_versions"], 2);
        let deliveries = run(db, &["campaign", "deliveries", &id, "--json"]).json();
        assert_eq!(deliveries[0]["state"], "sent");
    }

    async fn import_slug_names_a_new_report_and_a_taken_or_malformed_slug_is_refused(db) {
        let file = march_file(db);
        let imported = run(db, &["report", "import", &file, "--slug", "march-report"]).ok().to_owned();
        assert_eq!(imported.trim(), format!("imported report 1 march-report: {TITLE} (4 sections)"));
        assert_eq!(shown(db, "march-report")["id"], 1);
        let other = db.dir.path().join("april.md");
        fs::write(&other, "---\ntitle: NEC Report – April 2017\n---\nThe NEC met.\n").unwrap();
        let other = other.to_str().unwrap();
        let err = run(db, &["report", "import", other, "--slug", "march-report"]).fails(2).to_owned();
        assert!(err.contains("the slug march-report is taken by report 1"), "{err}");
        let too_long = "a".repeat(61);
        for bad in ["March-Report", "2017", "-march", "march-", "march--report", "march report", "émigré", &too_long] {
            let err = run(db, &["report", "import", other, &format!("--slug={bad}")]).fails(2).to_owned();
            assert!(err.contains("is not a report slug"), "{bad:?}: {err}");
        }
        let err = run(db, &["report", "import", &file, "--slug", "another"]).fails(2).to_owned();
        assert!(err.contains("report 1 march-report") && err.contains("keeps its slug"), "{err}");
        assert_eq!(run(db, &["report", "ls", "--json"]).json().as_array().unwrap().len(), 1);

        let long = "Report of the National Executive Committee meeting held in London on Tuesday 21 March 2017";
        let pasted = run_with_stdin(db, &["report", "import", "-", "--format", "md"], format!("# {long}\n\nFirst.\n").as_bytes());
        let slug = "report-of-the-national-executive-committee-meeting-held-in";
        assert_eq!(pasted.ok().trim(), format!("imported report 2 {slug}: {long} (0 sections)"));
        let file = db.dir.path().join("long.md");
        fs::write(&file, format!("# {long}\n\nSecond.\n")).unwrap();
        let second = run(db, &["report", "import", file.to_str().unwrap()]).ok().to_owned();
        assert_eq!(second.trim(), format!("imported report 3 {slug}-2: {long} (0 sections)"));
        for report in run(db, &["report", "ls", "--json"]).json().as_array().unwrap() {
            assert!(report["slug"].as_str().unwrap().len() <= 60, "{report}");
        }
    }

    async fn report_rm_keeps_a_report_whose_campaign_sent_anything_and_says_why(db) {
        members(db);
        run(db, &["report", "import", &march_file(db)]).ok();
        let sent = campaign(db, "1");
        run(db, &["campaign", "send", &sent, "--wait"]).ok();
        let err = run(db, &["report", "rm", MARCH, "--force"]).fails(2).to_owned();
        assert!(err.contains(&format!("campaign {sent} sent it")) && err.contains("record"), "{err}");
        assert_eq!(shown(db, "1")["slug"], MARCH);
        assert_eq!(run(db, &["campaign", "deliveries", &sent, "--json"]).json()[0]["state"], "sent");

        let draft = b"---\ntitle: Emergency NEC meeting\n---\nThe NEC met at short notice.\n";
        run_with_stdin(db, &["report", "import", "-"], draft).ok();
        let started = campaign(db, "2");
        run(db, &["campaign", "send", &started]).ok();
        let err = run(db, &["report", "rm", "2", "--force"]).fails(2).to_owned();
        assert!(err.contains(&format!("campaign cancel {started}")), "{err}");
        let fixed = db.dir.path().join("fixed.md");
        fs::write(&fixed, "---\ntitle: Emergency NEC meeting\n---\nThe NEC met.\n").unwrap();
        let err = run(db, &["report", "replace", "2", fixed.to_str().unwrap()]).fails(2).to_owned();
        assert!(err.contains(&format!("campaign {started} (sending)")), "{err}");
        run(db, &["campaign", "pause", &started]).ok();
        let err = run(db, &["report", "replace", "2", fixed.to_str().unwrap()]).fails(2).to_owned();
        assert!(err.contains(&format!("campaign {started} (paused)")), "{err}");
        run(db, &["campaign", "cancel", &started]).ok();
        let err = run(db, &["report", "rm", "2"]).fails(2).to_owned();
        assert!(err.contains("--force"), "{err}");
        let removed = run(db, &["report", "rm", "2", "--force"]).ok().to_owned();
        assert_eq!(removed.trim(), "deleted report 2 emergency-nec-meeting");
        let campaigns = run(db, &["campaign", "ls", "--json"]).json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
    }
}
