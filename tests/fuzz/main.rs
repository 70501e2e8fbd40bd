//! Fuzz targets, run by `cargo test --test fuzz`: a smoke run of a few
//! seconds each in the normal test suite, and as long as you like with
//! `NECMAIL_FUZZ_SECS` (see the README and [`driver`]).
//!
//! The report targets feed the seed reports and the hostile fixtures, and
//! mutants of them, through the importer and both renderings; the CSV
//! target feeds subscriber files through the import's reader; the token
//! target feeds link tokens to the verifier. Each checks that nothing
//! panics and no input takes over a second.

mod driver;

use std::sync::{Arc, LazyLock};

use chrono::Utc;
use necmail::config::Sender;
use necmail::render::{ListInfo, MessageMeta, Prepared, Recipient, Site, Templates};
use necmail::reports::import::{self, Format};
use necmail::reports::{Report, ReportDraft};
use necmail::subscribers::Attributes;

use driver::Fuzz;

/// Seeds of every report target: the sample reports and the hostile inputs.
const SEED_DIRS: &[&str] = &[
    "tests/fixtures/reports",
    "tests/fixtures/hostile",
    "tests/fixtures/feeds",
    "tests/fixtures/render",
];

/// What the mutator inserts and repeats in reports.
const REPORT_TOKENS: &[&str] = &[
    "<div>",
    "</div>",
    "<blockquote>",
    "</blockquote>",
    "<p>",
    "<ul><li>",
    "<ol start=\"9\"><li>",
    "</li>",
    "<b>",
    "<i><a href=\"https://x.org/\">",
    "<table><tr><td>",
    "<td>",
    "<h2>",
    "</h2>",
    "<br>",
    "<pre>",
    "<svg><style>",
    "<!--",
    "-->",
    "<script>",
    "&amp;",
    "&#x1F600;",
    "> ",
    ">",
    "- ",
    "1. ",
    "  ",
    "* ",
    "**",
    "_",
    "`",
    "```\n",
    "## ",
    "# ",
    "|",
    "|---",
    "\n|a|b|\n|-|-|\n",
    "[",
    "](",
    ")",
    "![",
    "\\",
    "---\n",
    "+++\n",
    "title: ",
    "[[",
    "{",
    "\n\n",
    "\n",
    "\u{feff}",
    "\u{e000}",
    "Leader’s Report\n",
    "575,000 ",
    "https://",
    " http://www.",
    "é",
    "—",
    "“",
    "😀",
];

static TEMPLATES: LazyLock<Arc<Templates>> =
    LazyLock::new(|| Arc::new(Templates::load(None).expect("the built-in templates")));

/// Renders a draft as a campaign does: both parts, for one recipient, and
/// the whole message.
fn render(draft: ReportDraft) {
    let report = Report {
        id: 1,
        slug: "fuzz".into(),
        title: draft.title,
        meeting_date: draft.meeting_date,
        summary: draft.summary,
        body_markdown: draft.body_markdown,
        source: draft.source,
        content_hash: "fuzz".into(),
        published_at: Utc::now(),
        created_at: Utc::now(),
        excerpt: draft.excerpt.is_some(),
    };
    let site = Site {
        sender: Sender::parse("NEC Report <reports@nec.example>").unwrap(),
        reply_to: None,
        archive_url: "https://nec.example/archive".into(),
        report_url_prefix: "https://nec.example/archive/".into(),
        subscribe_url: "https://nec.example/subscribe".into(),
        committee: "NEC".into(),
        sender_address: None,
        privacy_url: None,
        test: None,
        web_version: false,
    };
    let prepared = Prepared::new(Arc::clone(&TEMPLATES), &report, &site)
        .unwrap_or_else(|e| panic!("an imported report does not render: {e}"));
    let attributes = Attributes::new();
    let list = ListInfo {
        slug: "members".into(),
        name: "Members".into(),
    };
    let recipient = Recipient {
        email: "jo@example.org",
        name: Some("Jo"),
        attributes: &attributes,
        list: &list,
        also: &[],
        unsubscribe_url: "https://nec.example/u/t",
        preferences_url: "https://nec.example/p/t",
    };
    prepared.render(&recipient).unwrap();
    let meta = MessageMeta {
        message_id: "1@nec.example",
        date: Utc::now(),
        list_unsubscribe: None,
        list_id: None,
        feedback_id: None,
    };
    let mut message = String::new();
    prepared
        .write_message(&recipient, &meta, &mut message)
        .unwrap();
    let _ = report.sections();
}

/// Guesses the format (as `report import` does without a name), imports
/// the input as `format` and renders every draft.
fn import_and_render(input: &[u8], format: Format) {
    let _ = import::guess_format(None, input);
    match import::parse(input, format) {
        Ok(drafts) => drafts.into_iter().for_each(render),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn reports(name: &'static str) -> Fuzz {
    Fuzz::new(name)
        .seed_dirs(SEED_DIRS)
        .dictionary(REPORT_TOKENS)
}

#[test]
fn markdown_import_and_render() {
    reports("markdown").run(|input| import_and_render(input, Format::Markdown));
}

#[test]
fn html_import_and_render() {
    reports("html").run(|input| import_and_render(input, Format::Html));
}

#[test]
fn pasted_post_import_and_render() {
    reports("text").run(|input| import_and_render(input, Format::Text));
}

#[test]
fn feed_item_import_and_render() {
    reports("feed-item")
        .seed("<h2>Leader’s Report</h2><p>575,000 members.</p>")
        .run(|input| {
            let html = String::from_utf8_lossy(input);
            if let Ok(draft) = import::parse_html_fragment(&html, "NEC Report") {
                render(draft);
            }
        });
}

#[test]
fn csv_import() {
    Fuzz::new("csv")
        .seed_dirs(&["tests/fixtures/csv"])
        .dictionary(&[
            ",",
            ";",
            "\t",
            "\"",
            "\n",
            "\r\n",
            "\u{feff}",
            "'=",
            "email",
            "@example.org",
        ])
        .run(|input| {
            let mut rows = 0;
            let result = necmail::subscribers::import::read_rows(input, |row| {
                rows += match row {
                    Ok(_) => 1,
                    Err(reject) => reject.rows,
                };
            });
            if let Err(e) = result {
                assert!(!e.to_string().is_empty());
            }
            assert!(rows <= input.len() as u64, "more rows than bytes");
        });
}

#[test]
fn token_verification() {
    use necmail::tokens::{Purpose, Signer};
    let (current, previous) = (
        Signer::new("the fuzzing secret"),
        Signer::new("the previous secret"),
    );
    let signer = Signer::with_previous("the fuzzing secret", Some("the previous secret"));
    let seeds = [
        current.sign(Purpose::Unsubscribe, &[123_456, 7]),
        current.preferences(42),
        previous.sign(Purpose::Confirm, &[1, 1_700_000_000]),
    ];
    seeds
        .iter()
        .fold(Fuzz::new("tokens"), |fuzz, seed| fuzz.seed(seed.as_bytes()))
        .dictionary(&["-", "_", "A", "=", "%", "/"])
        .run(move |input| {
            let token = String::from_utf8_lossy(input);
            for purpose in [Purpose::Unsubscribe, Purpose::Preferences, Purpose::Confirm] {
                if let Ok(values) = signer.verify(purpose, &token) {
                    let ours = [
                        current.sign(purpose, &values),
                        previous.sign(purpose, &values),
                    ];
                    assert!(
                        ours.iter().any(|t| t == token.trim()),
                        "only our own tokens verify: {token:?}"
                    );
                }
            }
        });
}

/// A DSN and a text bounce: the seeds of the bounce classifier.
const BOUNCE_SEEDS: &[&str] = &[
    "From: MAILER-DAEMON@mx.example.org\r\nSubject: failed\r\n\
     Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n\
     --B\r\nContent-Type: text/plain\r\n\r\nsorry\r\n\
     --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
     Final-Recipient: rfc822; jo@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
     --B\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <7.T@nec.example>\r\n\r\nx\r\n--B--\r\n",
    "From: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered Mail\r\n\r\n\
     <jo@example.org>: host mx said: 550 5.1.1 User unknown\r\n",
    "From: fbl@example.net\r\n\
     Content-Type: multipart/report; report-type=feedback-report; boundary=F\r\n\r\n\
     --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\r\n--F--\r\n",
];

#[test]
fn bounce_classification() {
    BOUNCE_SEEDS
        .iter()
        .fold(Fuzz::new("bounces"), |fuzz, seed| {
            fuzz.seed(seed.as_bytes())
        })
        .dictionary(&[
            "\r\n",
            "\r\n\r\n",
            "--B\r\n",
            "Content-Type: message/rfc822\r\n\r\n",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n",
            "Action: failed\r\n",
            "Status: 4.2.2\r\n",
            " continued",
            "<a@b.c>",
            "550 ",
            "5.1.1",
        ])
        .run(|input| {
            if let Some(message) = necmail::feedback::parse(input) {
                let _ = necmail::feedback::is_automatic(&message, "");
                if let necmail::feedback::Classified::Bounce { recipients, .. } =
                    necmail::feedback::classify(&message)
                {
                    assert!(!recipients.is_empty() && recipients.len() <= 50);
                }
            }
        });
}

#[test]
fn smtp_command_parsing() {
    use smtp_proto::request::receiver::RequestReceiver;
    Fuzz::new("smtp-commands")
        .seed(&b"EHLO a.example\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<news-join@nec.example>\r\n"[..])
        .seed(&b"LHLO mta\r\nMAIL FROM:<jo@example.org> BODY=8BITMIME\r\nDATA\r\nQUIT\r\n"[..])
        .dictionary(&[
            "\r\n",
            "\n",
            "<",
            ">",
            ":",
            " ",
            "RCPT TO:",
            "MAIL FROM:",
            "\0",
        ])
        .run(|input| {
            let mut receiver = RequestReceiver::default();
            let mut bytes = input.iter();
            let mut commands = 0;
            while !bytes.as_slice().is_empty() {
                match receiver.ingest(&mut bytes) {
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                    _ => commands += 1,
                }
            }
            assert!(commands <= input.len());
        });
}
