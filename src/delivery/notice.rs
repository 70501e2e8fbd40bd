//! One-off messages that are not campaign mail: the confirmation email of a
//! sign-up and warnings to the admin. Each is built from templates by its
//! caller and sent here through the same transport as campaigns.

use chrono::Utc;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Accepted, Envelope, Outgoing, SendError, Transport};
use crate::config::Config;
use crate::render::encoding::{Header, qp_piece};
use crate::subscribers::SubscriberEmail;

/// A rendered one-off message.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub to: &'a SubscriberEmail,
    pub to_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    /// An HTML alternative, when there is one.
    pub html: Option<&'a str>,
    /// Where replies go, instead of NECMAIL_REPLY_TO: a confirmation's
    /// `confirm+TOKEN` address, so that replying confirms.
    pub reply_to: Option<&'a str>,
}

/// Sends `notice` from NECMAIL_FROM through `transport`.
#[tracing::instrument(level = "debug", skip_all, fields(transport = %transport.describe()))]
pub async fn send_notice(
    transport: &dyn Transport,
    config: &Config,
    notice: &Notice<'_>,
) -> Result<Accepted, SendError> {
    let id = random_id();
    let message = compose(config, notice, &id);
    let envelope_id = format!("notice-{id}");
    transport
        .send(
            &Envelope {
                id: &envelope_id,
                mail_from: &config.from.address,
                rcpt_to: notice.to,
            },
            Outgoing::from(message.as_bytes()),
        )
        .await
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random generator works");
    crate::text::hex(&bytes)
}

/// The whole message: headers, then text (and HTML) as quoted-printable.
fn compose(config: &Config, notice: &Notice<'_>, id: &str) -> String {
    let mut out = String::with_capacity(notice.text.len() * 2 + 1024);
    let mut from = Header::start(&mut out, "From");
    from.mailbox(config.from.name.as_deref(), &config.from.address);
    from.end();
    if let Some(address) = notice.reply_to {
        let mut header = Header::start(&mut out, "Reply-To");
        header.mailbox(None, address);
        header.end();
    } else if let Some(reply_to) = &config.reply_to {
        let mut header = Header::start(&mut out, "Reply-To");
        header.mailbox(reply_to.name.as_deref(), &reply_to.address);
        header.end();
    }
    let mut to = Header::start(&mut out, "To");
    to.mailbox(notice.to_name, notice.to.as_str());
    to.end();
    let mut subject = Header::start(&mut out, "Subject");
    subject.text(notice.subject);
    subject.end();
    out.push_str("Date: ");
    out.push_str(&Utc::now().to_rfc2822());
    out.push_str("\r\nMessage-ID: <notice.");
    out.push_str(id);
    out.push('@');
    out.push_str(config.from.domain());
    out.push_str(">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    let part = |out: &mut String, content_type: &str, body: &str| {
        out.push_str("Content-Type: ");
        out.push_str(content_type);
        out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
        qp_piece(body, out);
    };
    match notice.html {
        None => part(&mut out, "text/plain", notice.text),
        Some(html) => {
            let boundary = format!("=_necmail_{id}");
            out.push_str("Content-Type: multipart/alternative;\r\n boundary=\"");
            out.push_str(&boundary);
            out.push_str("\"\r\n\r\n");
            for (content_type, body) in [("text/plain", notice.text), ("text/html", html)] {
                out.push_str("--");
                out.push_str(&boundary);
                out.push_str("\r\n");
                part(&mut out, content_type, body);
                out.push_str("\r\n");
            }
            out.push_str("--");
            out.push_str(&boundary);
            out.push_str("--\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| (k == "NECMAIL_FROM").then(|| "NEC Rep <rep@example.org>".into()))
            .unwrap()
    }

    #[test]
    fn a_notice_with_html_is_text_then_html_alternatives() {
        let ann = SubscriberEmail::parse("ann@example.org").unwrap();
        let notice = Notice {
            to: &ann,
            to_name: Some("Ann Smith"),
            subject: "Please confirm – NEC reports",
            text: "Confirm here: https://x/c/abc\n",
            html: Some("<p>Confirm <a href=\"https://x/c/abc\">here</a></p>"),
            reply_to: Some("confirm+abc@example.org"),
        };
        let m = compose(&config(), &notice, "abc123");
        assert!(m.starts_with(concat!(
            "From: NEC Rep <rep@example.org>\r\n",
            "Reply-To: confirm+abc@example.org\r\n",
            "To: Ann Smith <ann@example.org>\r\n"
        )));
        assert!(m.contains("Subject: Please confirm =?UTF-8?B?4oCT?= NEC reports\r\n"));
        assert!(m.contains("Message-ID: <notice.abc123@example.org>"));
        let text = m.find("Content-Type: text/plain").unwrap();
        let html = m.find("Content-Type: text/html").unwrap();
        assert!(text < html);
        assert!(m.ends_with("--=_necmail_abc123--\r\n"));
    }

    #[test]
    fn a_text_only_notice_is_a_single_part() {
        let admin = SubscriberEmail::parse("admin@example.org").unwrap();
        let notice = Notice {
            to: &admin,
            to_name: None,
            subject: "Overdue",
            text: "No report yet.\n",
            html: None,
            reply_to: None,
        };
        let m = compose(&config(), &notice, "x");
        assert!(!m.contains("multipart"));
        assert!(m.contains("Content-Type: text/plain; charset=utf-8\r\n"));
    }
}
