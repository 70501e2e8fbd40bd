//! The headers and DKIM signatures of every kind of mail necmail sends —
//! campaign messages, confirmation emails, notices to the admin and
//! `send-test` — the signatures verified by mail-auth, a verifier
//! independent of necmail's signer.

use std::path::Path;

use necmail::delivery::engine::Finish;

use crate::campaigns::{campaign, config, engine, run, world};
use crate::support::dkim::{BOTH, ED25519, RSA, Verified, assert_verifies, signers, verify};
use crate::support::on_both_backends;
use crate::support::smtp::{Behaviour, SmtpServer};

/// The keys the tests sign with: an RSA and an Ed25519 key together.
const KEYS: &[(&str, &str)] = &BOTH;

/// The `.eml` files in `dir`, as bytes, in name order.
fn raw_mails(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the outbox folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Asserts that `message` is signed once with each configured key, in
/// order, and that every signature verifies.
async fn assert_signed(message: &[u8], config: &necmail::config::Config) -> Vec<Verified> {
    let signers = signers(config);
    let verified = assert_verifies(verify(message, &signers).await, signers.len());
    let algorithms: Vec<&str> = verified.iter().map(|v| v.algorithm.as_str()).collect();
    let configured: Vec<&str> = signers.iter().map(|s| s.algorithm()).collect();
    assert_eq!(algorithms, configured);
    verified
}

on_both_backends! {
    async fn every_campaign_message_is_signed_and_verifies(db) {
        let (store, report) = world(db, 3).await;
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;
        let config = config(&server, KEYS);
        assert_eq!(run(&engine(&store, config.clone()), id).await, Finish::Done);
        let messages = server.messages();
        assert_eq!(messages.len(), 3);
        for message in messages {
            let verified = assert_signed(&message.data, &config).await;
            assert!(verified[0].headers.contains(&"list-unsubscribe".to_owned()), "{verified:?}");
        }
    }

    async fn a_signed_campaign_message_crosses_a_pipelining_relay_dot_stuffed_and_verifies(db) {
        let (store, _) = world(db, 2).await;
        let body = ".A line that starts with a dot.\n\n. And another.\n\n...\n";
        let report = crate::campaigns::paste(&*store, "Dots", body).await.id;
        let server = SmtpServer::start_with(Behaviour::accept().pipelining()).await;
        let id = campaign(&*store, report, &["members"]).await;
        let config = config(&server, KEYS);
        assert_eq!(run(&engine(&store, config.clone()), id).await, Finish::Done);
        let messages = server.messages();
        assert_eq!(messages.len(), 2);
        for message in messages {
            assert!(message.text().contains("=2EA line that starts with a dot."), "{}", message.text());
            assert_eq!(message.wire, crate::smtp::stuffed(&message.data));
            assert_signed(&message.data, &config).await;
        }
    }

    async fn a_campaign_message_has_a_signed_reply_to_and_the_rfc_2369_list_headers(db) {
        let (store, report) = world(db, 1).await;
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;
        let reply_to = ("NECMAIL_REPLY_TO", "Jo Bloggs, NEC member <jo@nec.example>");
        let config = config(&server, &[RSA[0], RSA[1], reply_to]);
        assert_eq!(run(&engine(&store, config.clone()), id).await, Finish::Done);
        let message = server.messages().remove(0);
        let header = |name: &str| message.header(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(header("Reply-To"), "\"Jo Bloggs, NEC member\" <jo@nec.example>");
        assert_eq!(header("List-Archive"), "<https://nec.example/archive>");
        assert_eq!(header("List-Subscribe"), "<https://nec.example/subscribe>");
        assert!(header("List-Help").starts_with("<https://nec.example/p/"));
        assert_eq!(header("List-Post"), "NO");
        let verified = assert_signed(&message.data, &config).await;
        for name in ["reply-to", "list-archive", "list-subscribe", "list-help", "list-post"] {
            let entries = verified[0].headers.iter().filter(|h| *h == name).count();
            assert_eq!(entries, 2, "{name} signed and over-signed: {verified:?}");
        }
    }

    async fn a_campaign_message_has_a_signed_feedback_id_with_the_configured_sender_id(db) {
        let (store, report) = world(db, 1).await;
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;
        let config = config(&server, &[RSA[0], RSA[1], ("NECMAIL_FEEDBACK_SENDER_ID", "labour-nec")]);
        assert_eq!(run(&engine(&store, config.clone()), id).await, Finish::Done);
        let message = server.messages().remove(0);
        assert_eq!(message.header("Feedback-ID"), Some(format!("{id}:members:report:labour-nec")));
        let verified = assert_signed(&message.data, &config).await;
        let entries = verified[0].headers.iter().filter(|h| *h == "feedback-id").count();
        assert_eq!(entries, 2, "signed, and over-signed: {verified:?}");
    }

    async fn a_confirmation_email_is_signed_and_verifies(db) {
        let mut app = crate::support::app::spawn_app_with(db, KEYS).await;
        crate::web::lists(&*app.store).await;
        assert_eq!(app.subscribe("ann@example.org", &["members"]).await.status(), 200);
        app.wait_for_emails(1).await;
        app.stop().await;
        let mails = raw_mails(&app.outbox);
        assert_eq!(mails.len(), 1);
        let config = crate::scheduler::config(KEYS);
        assert_signed(&mails[0], &config).await;
    }

    async fn a_notice_to_the_admin_is_signed_and_verifies(db) {
        let store = db.store().await;
        store.add_meeting(crate::scheduler::date("2026-03-01"), Some("NEC")).await.unwrap();
        let outbox = db.dir.path().join("outbox");
        let outbox_dir = outbox.display().to_string();
        let mut env = vec![
            ("NECMAIL_REPORT_OVERDUE_DAYS", "14"),
            ("NECMAIL_ADMIN_EMAIL", "admin@nec.example"),
            ("NECMAIL_OUTBOX_DIR", outbox_dir.as_str()),
        ];
        env.extend_from_slice(KEYS);
        let config = crate::scheduler::config(&env);
        let transport = necmail::delivery::transport(&config).expect("a signing transport");
        let scheduler = crate::scheduler::scheduler_with(&store, config.clone(), transport);
        let polled = scheduler.poll(crate::scheduler::at("2026-03-15T12:00:00Z")).await.unwrap();
        assert_eq!(polled.overdue.len(), 1);
        let mails = raw_mails(&outbox);
        assert_eq!(mails.len(), 1);
        assert_signed(&mails[0], &config).await;
    }

    async fn a_test_message_from_send_test_is_signed_and_verifies(db) {
        let store = db.store().await;
        crate::web::lists(&*store).await;
        let report = crate::campaigns::report(&*store).await;
        let server = SmtpServer::start().await;
        let mut command = crate::support::cli::necmail(db);
        command
            .env("NECMAIL_SMTP_URL", server.url())
            .env("NECMAIL_SECRET", crate::support::app::SECRET)
            .env("NECMAIL_FROM", "NEC Report <reports@nec.example>")
            .envs(KEYS.iter().copied())
            .args(["send-test", &report.to_string(), "--to", "jo@example.org"]);
        let run = tokio::task::spawn_blocking(move || crate::support::cli::run_command(&mut command))
            .await
            .unwrap();
        run.ok();
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_signed(&messages[0].data, &config(&server, KEYS)).await;
    }
}

/// `message` with `field` added above its own header fields, below the
/// signatures: where a forwarder or an attacker would add one.
fn with_added(message: &[u8], field: &str) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).expect("a 7-bit message");
    let from = text.find("\r\nFrom: ").expect("a From field") + 2;
    format!("{}{field}\r\n{}", &text[..from], &text[from..]).into_bytes()
}

on_both_backends! {
    async fn a_header_field_added_to_a_signed_message_fails_verification(db) {
        let (store, report) = world(db, 1).await;
        let server = SmtpServer::start().await;
        let id = campaign(&*store, report, &["members"]).await;
        let config = config(&server, &RSA);
        assert_eq!(run(&engine(&store, config.clone()), id).await, Finish::Done);
        let message = server.messages().remove(0).data;
        assert_signed(&message, &config).await;
        let signers = signers(&config);
        for field in [
            "List-Unsubscribe: <https://evil.example/u/x>",
            "Subject: Vote for the other motion",
            "To: someone@evil.example",
            "Content-Type: text/plain",
            "Reply-To: someone@evil.example",
            "Cc: someone@evil.example",
            "Feedback-ID: 1:members:report:evil",
            "List-Id: Evil <evil.evil.example>",
        ] {
            let verdicts = verify(&with_added(&message, field), &signers).await;
            assert!(verdicts.iter().all(Result::is_err), "{field} was added, yet: {verdicts:?}");
        }
    }
}

/// `necmail config check` with `keys` set.
fn config_check(keys: &[(&str, &str)]) -> crate::support::cli::Run {
    let db = crate::support::TestDb::sqlite();
    let mut command = crate::support::cli::necmail(&db);
    command.envs(keys.iter().copied()).args(["config", "check"]);
    crate::support::cli::run_command(&mut command)
}

#[test]
fn config_check_warns_about_an_ed25519_only_set_up_and_names_each_key() {
    let ed25519 = config_check(&ED25519);
    let out = ed25519.ok();
    assert!(
        out.contains("# DKIM signs with ed25519-sha256 under ed._domainkey.necmail.localhost"),
        "{out}"
    );
    assert!(
        ed25519
            .stderr
            .contains("warning: the only DKIM key is Ed25519"),
        "{}",
        ed25519.stderr
    );

    let both = config_check(&BOTH);
    let out = both.ok();
    assert!(
        out.contains("# DKIM signs with rsa-sha256 under rsa._domainkey"),
        "{out}"
    );
    assert!(
        out.contains("# DKIM signs with ed25519-sha256 under ed._domainkey"),
        "{out}"
    );
    assert!(!both.stderr.contains("warning"), "{}", both.stderr);
    assert!(!config_check(&RSA).stderr.contains("warning"));
}

#[test]
fn config_check_refuses_two_keys_of_one_algorithm_or_a_key_it_cannot_read() {
    let twice = [
        ("NECMAIL_DKIM_SELECTOR", "a"),
        ("NECMAIL_DKIM_KEY_FILE", crate::support::dkim::RSA_KEY),
        ("NECMAIL_DKIM_SELECTOR_2", "b"),
        ("NECMAIL_DKIM_KEY_FILE_2", crate::support::dkim::RSA_KEY),
    ];
    let error = config_check(&twice);
    assert!(
        error.fails(2).contains("both hold rsa-sha256 keys"),
        "{}",
        error.stderr
    );
    let missing = [
        ("NECMAIL_DKIM_SELECTOR", "a"),
        ("NECMAIL_DKIM_KEY_FILE", "/no/such/key.pem"),
    ];
    let error = config_check(&missing);
    assert!(
        error.fails(2).contains("/no/such/key.pem"),
        "{}",
        error.stderr
    );
}

on_both_backends! {
    async fn every_preview_and_every_test_message_has_its_own_message_id_and_return_path(db) {
        let store = db.store().await;
        crate::web::lists(&*store).await;
        let report = crate::campaigns::report(&*store).await.to_string();
        let server = SmtpServer::start().await;
        let (url, dir) = (server.url(), db.dir.path().to_owned());
        let db_url = db.url.clone();
        let runs = tokio::task::spawn_blocking(move || {
            let necmail = || {
                let mut command = crate::support::cli::necmail_at(&db_url, &dir);
                command
                    .env("NECMAIL_SMTP_URL", &url)
                    .env("NECMAIL_SECRET", crate::support::app::SECRET)
                    .env("NECMAIL_FROM", "NEC Report <reports@nec.example>");
                command
            };
            let mut previews = Vec::new();
            for out in ["one", "two"] {
                crate::support::cli::run_command(necmail().args(["report", "preview", &report, "--out", out])).ok();
                previews.push(std::fs::read_to_string(dir.join(out).join("preview.eml")).unwrap());
            }
            for _ in 0..2 {
                crate::support::cli::run_command(necmail().args(["send-test", &report, "--to", "jo@example.org"])).ok();
            }
            previews
        })
        .await
        .unwrap();
        let message_id = |message: &str| {
            let at = message.find("\r\nMessage-ID: ").expect("a Message-ID") + 2;
            message[at..].lines().next().unwrap().to_owned()
        };
        assert_ne!(message_id(&runs[0]), message_id(&runs[1]), "two previews");
        let sent = server.messages();
        assert_eq!(sent.len(), 2);
        assert_ne!(sent[0].header("Message-ID"), sent[1].header("Message-ID"), "two test sends");
        assert_ne!(sent[0].mail_from, sent[1].mail_from, "two VERP return paths");
        for message in &sent {
            assert!(message.mail_from.starts_with("bounce+") && message.mail_from.ends_with("@nec.example"));
            let feedback = message.header("Feedback-ID").unwrap();
            assert!(feedback.ends_with(":test:necmail"), "{feedback}");
        }
    }
}

/// `necmail dkim dns` with `keys` set.
fn dkim_dns(keys: &[(&str, &str)]) -> crate::support::cli::Run {
    let db = crate::support::TestDb::sqlite();
    let mut command = crate::support::cli::necmail(&db);
    command.envs(keys.iter().copied()).args(["dkim", "dns"]);
    crate::support::cli::run_command(&mut command)
}

#[test]
fn dkim_dns_prints_each_keys_txt_record_in_strings_of_at_most_255_bytes() {
    let run = dkim_dns(&BOTH);
    let out = run.ok();
    let lookup = |name: &str| {
        BOTH.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let config = necmail::config::Config::from_lookup(lookup).unwrap();
    for signer in signers(&config) {
        let start = out
            .find(&format!("{}. IN TXT ( ", signer.dns_name()))
            .expect(out);
        let entry = &out[start..];
        let entry = &entry[..entry.find(" )").expect(out)];
        let strings: Vec<&str> = entry.split('"').skip(1).step_by(2).collect();
        assert!(strings.iter().all(|s| s.len() <= 255), "{out}");
        assert_eq!(strings.concat(), signer.dns_record(), "{out}");
    }
    assert_eq!(out.matches(" IN TXT ").count(), 2, "{out}");
    assert!(
        dkim_dns(&RSA)
            .ok()
            .contains("rsa._domainkey.necmail.localhost. IN TXT ( \"v=DKIM1; k=rsa; p=")
    );
    let none = dkim_dns(&[]);
    assert!(
        none.fails(2).contains("no DKIM key is configured"),
        "{}",
        none.stderr
    );
}
