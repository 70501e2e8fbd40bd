//! Telling a bounce, a delay notice, a complaint and an auto-reply apart.
//!
//! mail-parser parses the MIME; the fields of a delivery status (RFC 3464)
//! or feedback report (RFC 5965) part are read here, and so are the texts
//! of the bounces that are not DSNs (Postfix, Exim, qmail, sendmail,
//! Exchange and Microsoft 365, Gmail, Yahoo), well enough to find the
//! address and tell hard from soft. Every walk is bounded: mail-parser nests
//! at most a few messages deep, and at most [`MAX_LINES`] lines of text and
//! [`MAX_RECIPIENTS`] recipients are read.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::subscribers::SubscriberEmail;

/// Lines of a bounce's text read at most.
const MAX_LINES: usize = 400;
/// Recipients of one bounce taken at most.
const MAX_RECIPIENTS: usize = 50;

/// Subjects (lower case, a prefix or a part) of the common bounces that are
/// not DSNs.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "delivery status notification",
    "mail delivery failed",
    "failure notice",
    "returned mail",
    "delivery failure",
    "could not be delivered",
    "message not delivered",
    "delivery has failed",
    "mail delivery subsystem",
    "non remis",
    "unzustellbar",
];

/// Subjects (lower case, prefixes) of out-of-office replies.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "away from",
    "abwesenheit",
    "réponse automatique",
];

/// Where the copy of the original message starts in a bounce's text: the
/// addresses after it are the original's, not the failed ones.
const ORIGINAL_MARKERS: &[&str] = &[
    "this is a copy of the",
    "below this line is a copy",
    "original message follows",
    "original message",
    "undelivered message",
    "message headers follow",
    "original message headers",
];

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Mail to these recipients failed.
    Bounce {
        recipients: Vec<BouncedRecipient>,
        enclosed: Enclosed,
    },
    /// A delay notice (`Action: delayed`): not a bounce.
    Delayed,
    /// An ARF abuse report.
    Complaint {
        feedback_type: String,
        /// The complaining address, when the report names it.
        recipient: Option<String>,
        enclosed: Enclosed,
    },
    /// An out-of-office or other automatic reply.
    AutoReply,
    /// None of these.
    Other,
}

/// One failed recipient of a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncedRecipient {
    /// The address, when the bounce names one.
    pub address: Option<String>,
    /// The enhanced status code, `5.1.1`.
    pub status: String,
    /// A permanent failure: the address is suppressed at once.
    pub hard: bool,
    /// The remote server's words, or the DSN's Diagnostic-Code.
    pub diagnostic: String,
}

/// What a report tells of the message it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enclosed {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// The raw List-Unsubscribe field.
    pub list_unsubscribe: Option<String>,
    /// The return path the original was sent with (Original-Mail-From or
    /// Return-Path), without angle brackets.
    pub return_path: Option<String>,
}

/// Parses a raw message, or `None` when it cannot be read. mail-parser 0.11
/// panics on some broken MIME structures (a part that names a multipart it
/// cannot find); such a message is unreadable, not a reason to stop.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    std::panic::catch_unwind(|| MessageParser::new().parse(raw))
        .ok()
        .flatten()
}

/// True when `message` was sent by a machine and must never be answered:
/// an empty envelope sender, MAILER-DAEMON, `Auto-Submitted` other than
/// `no`, `Precedence: bulk, junk or list`, or `X-Autoreply`.
pub fn is_automatic(message: &Message<'_>, envelope_sender: &str) -> bool {
    let sender = envelope_sender.trim().trim_matches(['<', '>']);
    if sender.is_empty() || is_mailer_daemon(sender) {
        return true;
    }
    if message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .is_some_and(is_mailer_daemon)
    {
        return true;
    }
    let field = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if field("Auto-Submitted").is_some_and(|v| v.split(';').next().unwrap_or("").trim() != "no") {
        return true;
    }
    if field("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list")) {
        return true;
    }
    ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"]
        .iter()
        .any(|name| message.header_raw(*name).is_some())
}

fn is_mailer_daemon(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("");
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

/// What `message`, sent to necmail, is.
pub fn classify(message: &Message<'_>) -> Classified {
    if let Some(report) = report_type(message) {
        match report.as_str() {
            "delivery-status" => return delivery_status(message),
            "feedback-report" => return feedback_report(message),
            _ => {}
        }
    }
    if looks_like_bounce(message) {
        let recipients = text_bounce(message);
        if !recipients.is_empty() {
            return Classified::Bounce {
                recipients,
                enclosed: enclosed(message),
            };
        }
    }
    if is_auto_reply(message) {
        return Classified::AutoReply;
    }
    Classified::Other
}

/// The `report-type` of a `multipart/report` message, lower case.
fn report_type(message: &Message<'_>) -> Option<String> {
    let ct = message.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("multipart")
        || !ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return None;
    }
    ct.attribute("report-type").map(str::to_ascii_lowercase)
}

/// The part of `message` of type `message/SUBTYPE` (or `SUBTYPE` alone for
/// the `global-` variants).
fn part_of_type<'m>(message: &'m Message<'m>, subtypes: &[&str]) -> Option<&'m MessagePart<'m>> {
    message.parts.iter().find(|part| {
        part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)))
        })
    })
}

/// The groups of `Name: value` fields of a DSN or ARF body, unfolded; the
/// groups are separated by blank lines. Names are lower case.
fn field_groups(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(body);
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(MAX_LINES) {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'g>(group: &'g [(String, String)], name: &str) -> Option<&'g str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An address field's value (`rfc822; jo@example.org`) without its type.
fn typed_address(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    address.trim().trim_matches(['<', '>']).to_owned()
}

fn delivery_status(message: &Message<'_>) -> Classified {
    let Some(part) = part_of_type(message, &["delivery-status", "global-delivery-status"]) else {
        return Classified::Other;
    };
    let mut recipients = Vec::new();
    let mut delayed = false;
    // The first group is about the message; the others, one per recipient.
    for group in field_groups(part.contents()).iter().skip(1) {
        let Some(action) = field(group, "action") else {
            continue;
        };
        let action = action.to_ascii_lowercase();
        if action == "delayed" {
            delayed = true;
            continue;
        }
        if action != "failed" {
            continue;
        }
        let diagnostic = field(group, "diagnostic-code")
            .map(typed_address)
            .unwrap_or_default();
        let status = field(group, "status")
            .and_then(status_code)
            .or_else(|| status_code(&diagnostic))
            .unwrap_or_else(|| "5.0.0".to_owned());
        let address = field(group, "final-recipient")
            .or_else(|| field(group, "original-recipient"))
            .map(typed_address);
        recipients.push(BouncedRecipient {
            hard: is_hard(&status, &diagnostic),
            address,
            status,
            diagnostic,
        });
        if recipients.len() == MAX_RECIPIENTS {
            break;
        }
    }
    if recipients.is_empty() {
        return if delayed {
            Classified::Delayed
        } else {
            Classified::Other
        };
    }
    Classified::Bounce {
        recipients,
        enclosed: enclosed(message),
    }
}

fn feedback_report(message: &Message<'_>) -> Classified {
    let Some(part) = part_of_type(message, &["feedback-report"]) else {
        return Classified::Other;
    };
    let groups = field_groups(part.contents());
    let Some(fields) = groups.first() else {
        return Classified::Other;
    };
    let feedback_type = field(fields, "feedback-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if feedback_type != "abuse" {
        return Classified::Other;
    }
    let mut enclosed = enclosed(message);
    if let Some(from) = field(fields, "original-mail-from") {
        enclosed.return_path = Some(typed_address(from));
    }
    Classified::Complaint {
        feedback_type,
        recipient: field(fields, "original-rcpt-to").map(typed_address),
        enclosed,
    }
}

/// What the report tells of the original: from an enclosed
/// `message/rfc822` part, or a `text/rfc822-headers` one.
fn enclosed(message: &Message<'_>) -> Enclosed {
    for part in &message.parts {
        match &part.body {
            PartType::Message(original) => return enclosed_from(original),
            PartType::Text(text)
                if part.content_type().is_some_and(|ct| {
                    ct.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                }) =>
            {
                if let Some(headers) = MessageParser::new().parse_headers(text.as_bytes()) {
                    return enclosed_from(&headers);
                }
            }
            _ => {}
        }
    }
    Enclosed::default()
}

fn enclosed_from(original: &Message<'_>) -> Enclosed {
    Enclosed {
        message_id: original.message_id().map(str::to_owned),
        list_unsubscribe: original
            .header_raw("List-Unsubscribe")
            .map(|v| v.trim().to_owned()),
        return_path: original
            .header_raw("Return-Path")
            .map(|v| v.trim().trim_matches(['<', '>']).to_owned()),
    }
}

/// A bounce that is not a DSN: from MAILER-DAEMON or postmaster, or with
/// one of the usual subjects.
fn looks_like_bounce(message: &Message<'_>) -> bool {
    let from_daemon = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .is_some_and(is_mailer_daemon);
    let subject = message.subject().unwrap_or("").to_lowercase();
    from_daemon || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or("").trim().to_lowercase();
    if AUTO_REPLY_SUBJECTS.iter().any(|s| subject.starts_with(s)) {
        return true;
    }
    let auto_submitted = message
        .header_raw("Auto-Submitted")
        .map(|v| v.trim().to_ascii_lowercase());
    auto_submitted.is_some_and(|v| v.starts_with("auto-replied"))
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || message
            .header_raw("Precedence")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("auto_reply"))
}

/// The failed recipients named in a bounce's text: each address, with the
/// first status (enhanced, or an SMTP reply code, or words) after it.
fn text_bounce(message: &Message<'_>) -> Vec<BouncedRecipient> {
    let Some(text) = message.body_text(0) else {
        return Vec::new();
    };
    let own: Vec<String> = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(|a| a.to_ascii_lowercase())
        .into_iter()
        .collect();
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(MAX_LINES) {
        let lower = line.to_ascii_lowercase();
        if ORIGINAL_MARKERS.iter().any(|m| lower.contains(m)) {
            break;
        }
        for address in addresses_in(line) {
            let key = address.to_ascii_lowercase();
            if own.contains(&key) || is_mailer_daemon(&key) {
                continue;
            }
            if !found.iter().any(|(a, _)| a.eq_ignore_ascii_case(&address))
                && found.len() < MAX_RECIPIENTS
            {
                found.push((address, String::new()));
            }
        }
        if let Some((_, words)) = found.last_mut()
            && words.len() < 500
        {
            words.push_str(line.trim());
            words.push(' ');
        }
    }
    found
        .into_iter()
        .map(|(address, words)| {
            let status = status_code(&words).unwrap_or_else(|| status_from_words(&words));
            BouncedRecipient {
                hard: is_hard(&status, &words),
                address: Some(address),
                status,
                diagnostic: words.trim().chars().take(300).collect(),
            }
        })
        .collect()
}

/// The addresses in one line of text.
fn addresses_in(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| c.is_whitespace() || "<>()[]:;,'\"".contains(c))
        .filter(|w| w.contains('@'))
        .map(|w| w.trim_end_matches('.'))
        .filter_map(|w| SubscriberEmail::parse(w).ok())
        .map(|e| e.as_str().to_owned())
}

/// The first enhanced status code (`5.1.1`) in `text`, or one made from
/// the first SMTP reply code (`550` gives `5.0.0`).
fn status_code(text: &str) -> Option<String> {
    let words = || text.split(|c: char| !(c.is_ascii_digit() || c == '.'));
    let enhanced = words().find(|w| {
        let mut parts = w.trim_matches('.').split('.');
        let ok = |p: Option<&str>, max: usize| {
            p.is_some_and(|p| {
                !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
            })
        };
        matches!(
            w.trim_matches('.').as_bytes().first(),
            Some(b'2' | b'4' | b'5')
        ) && ok(parts.next(), 1)
            && ok(parts.next(), 3)
            && ok(parts.next(), 3)
            && parts.next().is_none()
    });
    if let Some(code) = enhanced {
        return Some(code.trim_matches('.').to_owned());
    }
    words()
        .map(|w| w.trim_matches('.'))
        .find(|w| {
            w.len() == 3 && matches!(w.as_bytes()[0], b'4' | b'5') && w.parse::<u16>().is_ok()
        })
        .map(|w| format!("{}.0.0", &w[..1]))
}

/// A status for a bounce that gives none: soft when it speaks of a full
/// mailbox or a temporary problem, hard when it says the address does not
/// exist, and soft otherwise (counted, never suppressing at once).
fn status_from_words(words: &str) -> String {
    let lower = words.to_lowercase();
    let unknown = [
        "user unknown",
        "unknown user",
        "does not exist",
        "no such user",
        "no mailbox",
        "address rejected",
        "not found",
        "doesn't have",
        "couldn't be found",
        "permanent",
    ];
    if unknown.iter().any(|w| lower.contains(w)) {
        "5.1.1".to_owned()
    } else if lower.contains("full") || lower.contains("quota") {
        "4.2.2".to_owned()
    } else {
        "4.0.0".to_owned()
    }
}

/// A permanent failure: class 5, except a full mailbox (5.2.2), which may
/// empty.
fn is_hard(status: &str, words: &str) -> bool {
    let lower = words.to_lowercase();
    status.starts_with('5')
        && status != "5.2.2"
        && !lower.contains("mailbox full")
        && !lower.contains("over quota")
        && !lower.contains("quota exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Message<'_> {
        super::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn a_mime_structure_the_parser_loses_its_way_in_is_unreadable_not_a_panic() {
        let raw = include_bytes!("../../tests/fixtures/hostile/mime-part-mail-parser-loses.eml");
        assert!(super::parse(raw).is_none());
    }

    #[test]
    fn a_status_code_is_found_in_a_diagnostic() {
        assert_eq!(
            status_code("smtp; 550 5.1.1 <jo@x.org>: user unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            status_code("said: 552 mailbox full").as_deref(),
            Some("5.0.0")
        );
        assert_eq!(
            status_code("452 4.2.2 over quota").as_deref(),
            Some("4.2.2")
        );
        assert_eq!(status_code("no code at all, version 1.2"), None);
    }

    #[test]
    fn an_out_of_office_reply_is_an_auto_reply_not_a_bounce() {
        let m = parse(
            "From: Jo <jo@example.org>\r\nSubject: Out of Office: the NEC report\r\n\
             Auto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n",
        );
        assert_eq!(classify(&m), Classified::AutoReply);
        assert!(is_automatic(&m, "jo@example.org"));
    }

    #[test]
    fn auto_submitted_no_is_a_person_writing() {
        let m = parse("From: jo@example.org\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nhello\r\n");
        assert!(!is_automatic(&m, "jo@example.org"));
        assert!(is_automatic(&m, ""));
        assert!(is_automatic(&m, "MAILER-DAEMON@mx.example.org"));
        let m = parse("From: jo@example.org\r\nPrecedence: bulk\r\nSubject: hi\r\n\r\nhello\r\n");
        assert!(is_automatic(&m, "jo@example.org"));
    }

    /// The failed addresses and whether each is hard, of a bounce.
    fn failed(raw: &str) -> Vec<(String, bool)> {
        match classify(&parse(raw)) {
            Classified::Bounce { recipients, .. } => recipients
                .into_iter()
                .map(|r| (r.address.unwrap_or_default(), r.hard))
                .collect(),
            other => panic!("not a bounce: {other:?}"),
        }
    }

    #[test]
    fn the_bounces_that_are_not_dsns_give_their_address_hard_or_soft() {
        let sendmail = "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\r\n\
            Subject: Returned mail: see transcript for details\r\n\r\n\
            ----- The following addresses had permanent fatal errors -----\r\n\
            <jo@example.org>\r\n    (reason: 550 5.1.1 <jo@example.org>... User unknown)\r\n";
        assert_eq!(failed(sendmail), [("jo@example.org".to_owned(), true)]);
        let exchange = "From: postmaster@contoso.example\r\n\
            Subject: Undeliverable: The NEC report\r\n\r\n\
            Your message to jo@contoso.example couldn't be delivered.\r\n\
            jo wasn't found at contoso.example.\r\n\
            Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found'\r\n\
            \r\nOriginal message headers:\r\nTo: other@contoso.example\r\n";
        assert_eq!(failed(exchange), [("jo@contoso.example".to_owned(), true)]);
        let gmail = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n\
            Subject: Delivery Status Notification (Failure)\r\n\r\n\
            Address not found\r\n\r\nYour message wasn't delivered to jo@gmail.example \
            because the address couldn't be found, or is unable to receive mail.\r\n";
        assert_eq!(failed(gmail), [("jo@gmail.example".to_owned(), true)]);
        let yahoo = "From: MAILER-DAEMON@yahoo.example\r\nSubject: Failure Notice\r\n\r\n\
            Sorry, we were unable to deliver your message to the following address.\r\n\r\n\
            <jo@yahoo.example>:\r\n552: Mailbox full: over quota\r\n";
        assert_eq!(failed(yahoo), [("jo@yahoo.example".to_owned(), false)]);
        let plain = "From: postmaster@example.org\r\nSubject: Undelivered Mail\r\n\r\n\
            Delivery to jo@example.org failed: temporary problem, will not retry.\r\n";
        assert_eq!(failed(plain), [("jo@example.org".to_owned(), false)]);
    }

    #[test]
    fn a_dsn_with_the_original_attached_names_its_message_id_and_return_path() {
        let raw = "From: MAILER-DAEMON@mx.example.org\r\nSubject: failed\r\n\
            Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n\
            --B\r\nContent-Type: text/plain\r\n\r\nsorry\r\n\
            --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
            Final-Recipient: rfc822; jo@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
            Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n\
            --B\r\nContent-Type: message/rfc822\r\n\r\nReturn-Path: <bounce+T@nec.example>\r\n\
            Message-ID: <7.T@nec.example>\r\nSubject: the report\r\n\r\nThe body, cut sh";
        let Classified::Bounce {
            recipients,
            enclosed,
        } = classify(&parse(raw))
        else {
            panic!("a bounce");
        };
        assert_eq!(recipients[0].status, "5.1.1");
        assert!(recipients[0].diagnostic.contains("no such user"));
        assert_eq!(enclosed.message_id.as_deref(), Some("7.T@nec.example"));
        assert_eq!(
            enclosed.return_path.as_deref(),
            Some("bounce+T@nec.example")
        );
    }

    #[test]
    fn an_arf_report_of_another_type_than_abuse_is_no_complaint() {
        let raw = "From: fbl@example.net\r\n\
            Content-Type: multipart/report; report-type=feedback-report; boundary=F\r\n\r\n\
            --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: not-spam\r\n\
            \r\n--F--\r\n";
        assert_eq!(classify(&parse(raw)), Classified::Other);
    }
}
