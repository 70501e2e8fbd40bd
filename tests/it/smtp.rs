//! The SMTP relay transport against the test SMTP server, over real TCP.

use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::time::Duration;

use necmail::config::{Config, SmtpUrl};
use necmail::delivery::{Accepted, Envelope, Outgoing, Piece, SendError, SmtpRelay, Transport};
use necmail::subscribers::SubscriberEmail;

use crate::campaigns::{campaign, config as campaign_config, engine, run, world};
use crate::support::on_both_backends;
use crate::support::smtp::{Action, Behaviour, SmtpServer, Stage, Who, test_ca_pem};

const WAIT: Duration = Duration::from_secs(5);
const MESSAGE: &[u8] =
    b"From: NEC Report <reports@nec.example>\r\nTo: jo@example.org\r\nSubject: NEC report\r\n\r\nHello.\r\n";

fn envelope(rcpt_to: &SubscriberEmail) -> Envelope<'_> {
    Envelope {
        id: "d1",
        mail_from: "bounce+d1@nec.example",
        rcpt_to,
    }
}

fn jo() -> SubscriberEmail {
    SubscriberEmail::parse("jo@example.org").unwrap()
}

/// Sends [`MESSAGE`] to `rcpt`.
async fn send_to(relay: &dyn Transport, rcpt: &str) -> Result<Accepted, SendError> {
    let rcpt = SubscriberEmail::parse(rcpt).expect("a valid address");
    relay.send(&envelope(&rcpt), MESSAGE.into()).await
}

fn with_url(mut config: Config, url: &str) -> Config {
    config.smtp = Some(SmtpUrl::parse(url).expect("a valid SMTP URL"));
    config
}

#[tokio::test]
async fn a_message_arrives_with_its_envelope_and_exact_bytes() {
    let server = SmtpServer::start().await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let message = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n";
    let accepted = relay
        .send(&envelope(&jo()), message[..].into())
        .await
        .unwrap();
    assert_eq!(accepted.reply, "250 2.0.0 Ok: queued as 1");
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, "bounce+d1@nec.example");
    assert_eq!(received[0].rcpt_to, ["jo@example.org"]);
    assert_eq!(received[0].text(), String::from_utf8_lossy(message));
    assert_eq!(received[0].header("subject").as_deref(), Some("dots"));
    assert_eq!(
        received[0].body(),
        ".starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n"
    );
    assert_eq!(received[0].reply, accepted.reply);
}

#[tokio::test]
async fn a_message_with_a_head_arrives_as_one_dot_stuffed_across_the_join() {
    let server = SmtpServer::start().await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let head = b"DKIM-Signature: v=1; b=x\r\n";
    let message = b".X-Dot: first\r\n\r\n.a dot\r\n";
    let outgoing = Outgoing::from(&message[..]).with_head(head);
    relay.send(&envelope(&jo()), outgoing).await.unwrap();
    let received = &server.messages()[0];
    assert_eq!(received.data, [&head[..], message].concat());
    assert_eq!(received.body(), ".a dot\r\n");
}

#[tokio::test]
async fn a_message_in_pieces_is_dot_stuffed_across_every_join_as_if_it_were_whole() {
    let server = SmtpServer::start_with(Behaviour::accept().pipelining()).await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    // A dot that starts a piece starts a line only after a line end; a
    // checked piece holds none that does.
    let pieces = [
        Piece::new(b"Subject: x\r\n\r\n"),
        Piece::new(b".a dot after a join\r\nno line end"),
        Piece::new(b".not at a line start\r\n"),
        Piece::checked(b"checked=2E\r\nsafe\r\n"),
        Piece::new(b".after a checked piece\r\n..two\r\n"),
    ];
    relay
        .send(
            &envelope(&jo()),
            Outgoing::in_pieces(&pieces).with_head(b".H: v\r\n"),
        )
        .await
        .unwrap();
    let whole: Vec<u8> = [&b".H: v\r\n"[..]]
        .into_iter()
        .chain(pieces.iter().map(Piece::bytes))
        .collect::<Vec<_>>()
        .concat();
    let received = &server.messages()[0];
    assert_eq!(
        String::from_utf8_lossy(&received.wire),
        String::from_utf8_lossy(&stuffed(&whole))
    );
    assert_eq!(received.data, whole);
}

/// `message` as SMTP carries it: a dot before each line that starts with
/// one, and CRLF.CRLF at the end (the message's own final CRLF the first).
pub fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    if !wire.ends_with(b"\r\n") {
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

#[tokio::test]
async fn the_data_on_the_wire_is_dot_stuffed_with_crlf_and_ends_with_crlf_dot_crlf() {
    let many_dots = b".\r\n".repeat(40);
    let cases: [(&[u8], &[u8]); 4] = [
        (
            b"DKIM-Signature: v=1; b=x\r\n",
            b".X-Dot: first\r\n\r\n.a dot\r\n..two\r\nmid.dle\r\n",
        ),
        (b"", b"Subject: x\r\n\r\n.\r\nno final line end"),
        (b".H: v\r\n", &many_dots),
        (b"", b"Subject: x\r\n\r\nplain\r\n"),
    ];
    for behaviour in [Behaviour::accept(), Behaviour::accept().pipelining()] {
        let server = SmtpServer::start_with(behaviour).await;
        let relay = SmtpRelay::new(&server.config()).unwrap();
        for (head, message) in cases {
            relay
                .send(&envelope(&jo()), Outgoing::from(message).with_head(head))
                .await
                .unwrap();
        }
        let received = server.messages();
        assert_eq!(received.len(), cases.len());
        for ((head, message), received) in cases.iter().zip(&received) {
            let whole = [*head, *message].concat();
            assert_eq!(
                String::from_utf8_lossy(&received.wire),
                String::from_utf8_lossy(&stuffed(&whole))
            );
            assert!(received.wire.ends_with(b"\r\n.\r\n"));
            let bare_lf = received
                .wire
                .windows(2)
                .any(|w| w[1] == b'\n' && w[0] != b'\r');
            assert!(
                !bare_lf && !received.wire.starts_with(b"\n"),
                "CRLF everywhere"
            );
        }
        assert_eq!(
            received[0].wire,
            b"DKIM-Signature: v=1; b=x\r\n..X-Dot: first\r\n\r\n..a dot\r\n...two\r\nmid.dle\r\n.\r\n"
        );
        assert_eq!(
            received[1].data,
            b"Subject: x\r\n\r\n.\r\nno final line end\r\n"
        );
    }
}

#[tokio::test]
async fn with_pipelining_the_envelope_goes_in_one_write_and_a_refused_recipient_is_reset() {
    let busy = Who::to(["busy@example.org"]).and_first(1);
    let server = SmtpServer::start_with(
        Behaviour::accept()
            .pipelining()
            .refuse(busy, "450 4.2.1 mailbox busy"),
    )
    .await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "busy@example.org").await.unwrap_err();
    assert_eq!(err, SendError::Transient("450 4.2.1 mailbox busy".into()));
    send_to(&relay, "busy@example.org").await.unwrap();
    send_to(&relay, "jo@example.org").await.unwrap();
    assert_eq!(server.connections(), 1, "the connection was kept");
    let commands: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| !c.starts_with("EHLO"))
        .map(|c| c.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        commands,
        [
            "MAIL FROM",
            "RCPT TO",
            "DATA",
            "RSET",
            "MAIL FROM",
            "RCPT TO",
            "DATA",
            "MAIL FROM",
            "RCPT TO",
            "DATA"
        ]
    );
    assert_eq!(server.messages().len(), 2);
}

#[tokio::test]
async fn eight_bit_content_is_announced_with_body_8bitmime_and_arrives_unchanged() {
    let server = SmtpServer::start().await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let message = "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nCafé, Gdańsk, Łódź.\r\n".as_bytes();
    relay.send(&envelope(&jo()), message.into()).await.unwrap();
    assert_eq!(server.messages()[0].data, message);
    assert!(
        server
            .commands()
            .contains(&"MAIL FROM:<bounce+d1@nec.example> BODY=8BITMIME".to_owned())
    );
}

#[tokio::test]
async fn a_4xx_reply_to_rcpt_is_transient_and_the_connection_is_reset_and_reused() {
    let busy = Who::to(["busy@example.org"]).and_first(1);
    let server =
        SmtpServer::start_with(Behaviour::accept().refuse(busy, "450 4.2.1 mailbox busy")).await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "busy@example.org").await.unwrap_err();
    assert_eq!(err, SendError::Transient("450 4.2.1 mailbox busy".into()));
    send_to(&relay, "busy@example.org").await.unwrap();
    assert_eq!(server.connections(), 1, "the connection was kept");
    assert_eq!(server.messages_to("busy@example.org")[0].connection, 1);
    let commands = server.commands();
    let rset = commands
        .iter()
        .position(|c| c == "RSET")
        .expect("an RSET after the refusal");
    assert!(
        commands[rset - 1].starts_with("RCPT TO:<busy@example.org>"),
        "{commands:#?}"
    );
}

#[tokio::test]
async fn a_5xx_reply_is_permanent_with_the_whole_reply_and_its_enhanced_status_code() {
    let refusal = "550 5.1.1 <gone@example.org>: no such user";
    let server =
        SmtpServer::start_with(Behaviour::accept().refuse(Who::to(["gone@example.org"]), refusal))
            .await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "gone@example.org").await.unwrap_err();
    assert_eq!(err, SendError::Permanent(refusal.into()));
    let attempts = server.attempts_to("gone@example.org");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].reply.as_deref(), Some(refusal));
}

#[tokio::test]
async fn a_refused_mail_from_is_the_relays_failure_and_is_reset_and_a_refused_message_needs_no_reset()
 {
    let server = SmtpServer::start_with(Behaviour::accept().rule(
        Who::everyone(),
        Stage::Mail,
        Action::Reply("451 4.3.0 try again later".into()),
    ))
    .await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert_eq!(err, SendError::Relay("451 4.3.0 try again later".into()));
    assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));

    let spam = "554 5.7.1 message rejected as spam";
    server.set(Behaviour::accept().rule(
        Who::everyone(),
        Stage::EndOfData,
        Action::Reply(spam.into()),
    ));
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert_eq!(err, SendError::Permanent(spam.into()));
    server.set(Behaviour::accept());
    send_to(&relay, "jo@example.org").await.unwrap();
    let commands = server.commands();
    assert_eq!(
        commands.iter().filter(|c| *c == "RSET").count(),
        1,
        "{commands:#?}"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_drop_before_data_is_a_network_error_before_data_and_the_next_send_reconnects() {
    let server = SmtpServer::start_with(Behaviour::accept().drop_before_data(Who::first(1))).await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(matches!(err, SendError::NetworkBeforeData(_)), "{err:?}");
    assert!(server.messages().is_empty());
    send_to(&relay, "jo@example.org").await.unwrap();
    assert_eq!(server.connections(), 2);
    let replies: Vec<_> = server
        .attempts_to("jo@example.org")
        .into_iter()
        .map(|a| a.reply)
        .collect();
    assert_eq!(
        replies,
        [None, Some("250 2.0.0 Ok: queued as 1".to_owned())]
    );
}

#[tokio::test]
async fn a_drop_after_the_data_is_ambiguous_and_the_next_send_reconnects() {
    let server =
        SmtpServer::start_with(Behaviour::accept().drop_after_data(Who::to(["jo@example.org"])))
            .await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(matches!(err, SendError::Ambiguous(_)), "{err:?}");
    let attempts = server.wait_for_attempts(1, WAIT).await;
    assert_eq!(
        (attempts[0].rcpt_to.as_deref(), attempts[0].reply.as_deref()),
        (Some("jo@example.org"), None)
    );
    assert!(server.messages().is_empty());
    send_to(&relay, "al@example.org").await.unwrap();
    assert_eq!(server.connections(), 2);
    assert_eq!(server.messages_to("al@example.org").len(), 1);
}

#[tokio::test]
async fn a_pooled_connection_the_relay_closed_is_replaced_without_an_error() {
    let server = SmtpServer::start().await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    send_to(&relay, "jo@example.org").await.unwrap();
    server.disconnect_all();
    server.wait_for_no_connections(WAIT).await;
    send_to(&relay, "al@example.org").await.unwrap();
    assert_eq!(server.connections(), 2);
    assert_eq!(server.wait_for(2, WAIT).await.len(), 2);
}

/// Whether this process's TCP connection to `peer` has Nagle's algorithm
/// off; `None` when it has no connection to `peer`.
fn nodelay_of_the_connection_to(peer: SocketAddr) -> Option<bool> {
    use std::os::fd::{FromRawFd, RawFd};
    std::fs::read_dir("/dev/fd")
        .expect("the list of this process's open files")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find_map(|fd| {
            // SAFETY: the descriptor is only asked about, and never closed
            // (the stream is never dropped); if another thread closes it
            // meanwhile, the questions fail.
            let socket = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
            (socket.peer_addr().ok()? == peer).then(|| socket.nodelay().expect("TCP_NODELAY"))
        })
}

#[tokio::test]
async fn the_relay_opens_its_connections_with_nagles_algorithm_off() {
    let server = SmtpServer::start().await;
    let relay = SmtpRelay::new(&server.config()).unwrap();
    send_to(&relay, "jo@example.org").await.unwrap();
    // The connection the send opened waits in the relay's pool.
    assert_eq!(nodelay_of_the_connection_to(server.addr()), Some(true));
}

#[tokio::test]
async fn a_relay_slower_than_the_timeout_is_a_network_error_before_data() {
    let server =
        SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(500))).await;
    let mut config = server.config();
    config.smtp_timeout = Duration::from_millis(100);
    let relay = SmtpRelay::new(&config).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(
        matches!(err, SendError::NetworkBeforeData(ref m) if m.contains("no answer within")),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_more_than_smtp_connections_are_open_at_once_under_concurrent_sends() {
    let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(5))).await;
    let mut config = server.config();
    config.smtp_connections = 3;
    let relay = SmtpRelay::new(&config).unwrap();
    let rcpts: Vec<String> = (0..30).map(|i| format!("member{i}@example.org")).collect();
    let sends = rcpts.iter().map(|rcpt| send_to(&relay, rcpt));
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(server.messages().len(), 30);
    assert_eq!(
        server.max_open_connections(),
        3,
        "three connections were used, and never more"
    );
    assert_eq!(server.connections(), 3, "and each was reused");
}

#[tokio::test]
async fn close_says_quit_on_every_connection() {
    let server = SmtpServer::start_with(Behaviour::accept().delay(Duration::from_millis(20))).await;
    let mut config = server.config();
    config.smtp_connections = 2;
    let relay = SmtpRelay::new(&config).unwrap();
    let (a, b) = tokio::join!(
        send_to(&relay, "jo@example.org"),
        send_to(&relay, "al@example.org")
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(server.open_connections(), 2);
    Transport::close(&relay).await;
    assert_eq!(server.commands().iter().filter(|c| *c == "QUIT").count(), 2);
    server.wait_for_no_connections(WAIT).await;
    send_to(&relay, "jo@example.org").await.unwrap();
    assert_eq!(
        server.connections(),
        3,
        "a closed relay opens a new connection when used again"
    );
}

#[tokio::test]
async fn auth_plain_works_against_a_relay_on_loopback() {
    let server =
        SmtpServer::start_with(Behaviour::accept().require_auth("mailer", "s3cret pass")).await;
    let config = with_url(
        server.config(),
        &format!("smtp://mailer:s3cret%20pass@{}", server.addr()),
    );
    let relay = SmtpRelay::new(&config).unwrap();
    send_to(&relay, "jo@example.org").await.unwrap();
    assert_eq!(
        server.messages()[0].authenticated_as.as_deref(),
        Some("mailer")
    );
}

#[tokio::test]
async fn refused_credentials_are_a_local_error_that_never_shows_the_password() {
    let server = SmtpServer::start_with(Behaviour::accept().require_auth("mailer", "right")).await;
    let config = with_url(
        server.config(),
        &format!("smtp://mailer:hunter2@{}", server.addr()),
    );
    let relay = SmtpRelay::new(&config).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(
        matches!(err, SendError::Local(ref m) if m.contains("535 5.7.8")),
        "{err:?}"
    );
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{relay:?}"),
        relay.describe(),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn credentials_for_a_relay_elsewhere_without_required_encryption_are_refused_without_connecting()
 {
    let config = with_url(
        Config::from_lookup(|_| None).unwrap(),
        "smtp://mailer:hunter2@relay.invalid:587",
    );
    let err = SmtpRelay::new(&config).unwrap_err();
    assert!(
        matches!(err, SendError::Local(ref m) if m.contains("tls=required")),
        "{err:?}"
    );
    let err = necmail::delivery::transport(&config)
        .err()
        .expect("the transport is refused too");
    assert!(
        !err.to_string().contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{err}"
    );
    let required = with_url(
        config,
        "smtp://mailer:hunter2@relay.invalid:587?tls=required",
    );
    let relay = SmtpRelay::new(&required).unwrap();
    assert_eq!(relay.describe(), "smtp://relay.invalid:587 (STARTTLS)");
    assert!(!format!("{relay:?}").contains("hunter2"));
}

#[tokio::test]
async fn tls_required_refuses_to_send_to_a_relay_without_starttls() {
    let server = SmtpServer::start().await;
    let config = with_url(server.config(), &format!("{}?tls=required", server.url()));
    let relay = SmtpRelay::new(&config).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(
        matches!(err, SendError::Local(ref m) if m.contains("does not offer STARTTLS")),
        "{err:?}"
    );
    assert!(
        server.commands().iter().all(|c| !c.starts_with("MAIL")),
        "{:?}",
        server.commands()
    );
}

#[tokio::test]
async fn the_configured_transport_is_the_relay_when_an_smtp_url_is_set() {
    let server = SmtpServer::start().await;
    let transport = necmail::delivery::transport(&server.config()).unwrap();
    assert_eq!(
        transport.describe(),
        format!("{} (STARTTLS if offered)", server.url())
    );
    send_to(&*transport, "jo@example.org").await.unwrap();
    assert_eq!(
        server.wait_for(1, WAIT).await[0].header("To").as_deref(),
        Some("jo@example.org")
    );
}

/// `config` sending to `url`, trusting the test CA from a file in `dir`.
fn trusting_the_test_ca(config: Config, url: &str, dir: &tempfile::TempDir) -> Config {
    let mut config = with_url(config, url);
    config.smtp_ca_file = Some(test_ca_file(dir));
    config
}

fn test_ca_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let file = dir.path().join("relay-ca.pem");
    std::fs::write(&file, test_ca_pem()).unwrap();
    file
}

/// `smtp://USER:PASSWORD@127.0.0.1:PORT?tls=required` for `server`.
fn starttls_url(server: &SmtpServer, user: &str, password: &str) -> String {
    format!("smtp://{user}:{password}@{}?tls=required", server.addr())
}

/// Whether `text` shows `password`, as it is or in base64.
fn shows(text: &str, password: &str) -> bool {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    text.contains(password)
        || text.contains(&base64.encode(password))
        || text.contains(&base64.encode(format!("\0mailer\0{password}")))
}

on_both_backends! {
    async fn a_campaign_sent_over_starttls_with_auth_plain_arrives_intact(db) {
        let (store, report) = world(db, 3).await;
        let server = SmtpServer::start_with(
            Behaviour::accept().require_auth("mailer", "s3cret pass").starttls().pipelining(),
        ).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = test_ca_file(&dir);
        let url = starttls_url(&server, "mailer", "s3cret%20pass");
        let config = campaign_config(&server, &[
            ("NECMAIL_SMTP_URL", &url),
            ("NECMAIL_SMTP_CA_FILE", ca_file.to_str().unwrap()),
        ]);
        let id = campaign(&*store, report, &["members"]).await;
        assert_eq!(run(&engine(&store, config), id).await, necmail::delivery::engine::Finish::Done);
        let messages = server.messages();
        assert_eq!(messages.len(), 3);
        for message in &messages {
            assert!(message.encrypted, "{message:?}");
            assert_eq!(message.authenticated_as.as_deref(), Some("mailer"));
            assert!(message.text().contains("575,000 members"));
            assert_eq!(message.wire, stuffed(&message.data));
            let parsed = mail_parser::MessageParser::default().parse(&message.data).unwrap();
            assert_eq!(parsed.subject(), Some("Labour NEC Report – March 2026"));
            assert!(parsed.body_text(0).unwrap().contains("8,000 people stood for election"));
        }
        let counts = store.delivery_counts(id).await.unwrap();
        assert_eq!((counts.sent, counts.total()), (3, 3));
        let in_clear = server.commands_in_clear();
        assert_eq!(in_clear.last().map(String::as_str), Some("STARTTLS"), "{in_clear:?}");
        assert!(in_clear.iter().all(|c| !c.starts_with("AUTH")), "{in_clear:?}");
    }
}

#[tokio::test]
async fn a_long_message_with_many_dotted_lines_arrives_byte_for_byte_over_starttls() {
    let server = SmtpServer::start_with(
        Behaviour::accept()
            .require_auth("mailer", "s3cret")
            .starttls(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = starttls_url(&server, "mailer", "s3cret");
    let relay = SmtpRelay::new(&trusting_the_test_ca(server.config(), &url, &dir)).unwrap();
    let mut message = b"Subject: long\r\n\r\n".to_vec();
    for i in 0..5000 {
        message.extend_from_slice(
            format!(".line {i} of a long message, which crosses TLS records\r\n").as_bytes(),
        );
    }
    for _ in 0..2 {
        relay
            .send(&envelope(&jo()), message[..].into())
            .await
            .unwrap();
    }
    let received = server.messages();
    assert_eq!(received.len(), 2);
    for received in received {
        assert!(received.encrypted);
        assert_eq!(received.data, message);
        assert_eq!(received.wire, stuffed(&message));
    }
    assert_eq!(
        server.connections(),
        1,
        "the encrypted connection is reused"
    );
}

#[tokio::test]
async fn auth_login_works_over_implicit_tls_when_the_relay_offers_only_login() {
    let server = SmtpServer::start_with(
        Behaviour::accept()
            .require_auth("mailer", "s3cret pass")
            .auth_mechanisms(&["LOGIN"])
            .implicit_tls(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("smtps://mailer:s3cret%20pass@{}", server.addr());
    assert_eq!(server.url(), format!("smtps://{}", server.addr()));
    let relay = SmtpRelay::new(&trusting_the_test_ca(server.config(), &url, &dir)).unwrap();
    send_to(&relay, "jo@example.org").await.unwrap();
    let received = &server.messages()[0];
    assert!(received.encrypted);
    assert_eq!(received.authenticated_as.as_deref(), Some("mailer"));
    assert!(server.commands_in_clear().is_empty());
    assert!(server.commands().contains(&"AUTH LOGIN".to_owned()));
}

/// Everything logged at any level while `work` runs, with every span's
/// opening and closing and their fields.
async fn logged_while<T>(work: impl Future<Output = T>) -> (T, String) {
    #[derive(Clone, Default)]
    struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    use tracing_subscriber::fmt::format::FmtSpan;
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let output = work.await;
    drop(guard);
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    (output, text)
}

#[tokio::test]
async fn a_wrong_password_is_a_local_error_that_no_error_or_log_line_shows() {
    for mechanisms in [&["PLAIN", "LOGIN"][..], &["LOGIN"]] {
        let server = SmtpServer::start_with(
            Behaviour::accept()
                .require_auth("mailer", "right")
                .auth_mechanisms(mechanisms)
                .starttls(),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let url = starttls_url(&server, "mailer", "hunter2");
        let relay = SmtpRelay::new(&trusting_the_test_ca(server.config(), &url, &dir)).unwrap();
        let (err, log) = logged_while(send_to(&relay, "jo@example.org")).await;
        let err = err.unwrap_err();
        assert!(
            matches!(err, SendError::Local(ref m)
                if m.contains("refused the credentials of \"mailer\"") && m.contains("535 5.7.8")),
            "{mechanisms:?}: {err:?}"
        );
        assert!(log.contains("relay=smtp://"), "the log was captured: {log}");
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            format!("{relay:?}"),
            log,
        ] {
            assert!(!shows(&shown, "hunter2"), "{mechanisms:?}: {shown}");
        }
        assert!(server.messages().is_empty());
    }
}

#[tokio::test]
async fn tls_required_refuses_a_relay_without_starttls_before_sending_any_credentials() {
    let server =
        SmtpServer::start_with(Behaviour::accept().require_auth("mailer", "hunter2")).await;
    let url = starttls_url(&server, "mailer", "hunter2");
    let relay = SmtpRelay::new(&with_url(server.config(), &url)).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(
        matches!(err, SendError::Local(ref m) if m.contains("does not offer STARTTLS")),
        "{err:?}"
    );
    assert_eq!(server.commands(), ["EHLO necmail.localhost"]);
    assert!(!shows(&err.to_string(), "hunter2"));
}

#[tokio::test]
async fn a_certificate_from_a_ca_necmail_does_not_trust_is_refused_with_no_plaintext_fallback() {
    let server = SmtpServer::start_with(
        Behaviour::accept()
            .require_auth("mailer", "hunter2")
            .starttls(),
    )
    .await;
    for url in [
        starttls_url(&server, "mailer", "hunter2"),
        format!("smtp://mailer:hunter2@{}", server.addr()),
    ] {
        let relay = SmtpRelay::new(&with_url(server.config(), &url)).unwrap();
        let err = send_to(&relay, "jo@example.org").await.unwrap_err();
        assert!(
            matches!(err, SendError::Local(ref m)
                if m.contains("certificate") && m.contains("NECMAIL_SMTP_CA_FILE")),
            "{url}: {err:?}"
        );
        assert!(!shows(&err.to_string(), "hunter2"));
    }
    assert_eq!(
        server.commands(),
        ["EHLO necmail.localhost", "STARTTLS"].repeat(2),
        "nothing after STARTTLS, in clear or not"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_reply_injected_before_the_tls_handshake_is_refused_before_any_credentials() {
    let server = SmtpServer::start_with(
        Behaviour::accept()
            .require_auth("mailer", "hunter2")
            .starttls()
            .inject_after_starttls("250 2.0.0 injected"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = starttls_url(&server, "mailer", "hunter2");
    let relay = SmtpRelay::new(&trusting_the_test_ca(server.config(), &url, &dir)).unwrap();
    let err = send_to(&relay, "jo@example.org").await.unwrap_err();
    assert!(
        matches!(err, SendError::Relay(ref m) if m.contains("more than its answer to STARTTLS")),
        "{err:?}"
    );
    assert_eq!(server.commands(), ["EHLO necmail.localhost", "STARTTLS"]);
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (file, why) in [
        (empty, "holds no PEM certificate"),
        (dir.path().join("missing.pem"), "No such file"),
    ] {
        let mut config = SmtpServer::start().await.config();
        config.smtp_ca_file = Some(file.clone());
        let err = SmtpRelay::new(&config).unwrap_err();
        assert!(
            matches!(err, SendError::Local(ref m)
                if m.contains("NECMAIL_SMTP_CA_FILE") && m.contains(why)
                    && m.contains(&*file.to_string_lossy())),
            "{err:?}"
        );
    }
}

#[test]
fn config_check_names_the_relay_and_refuses_a_ca_file_it_cannot_read() {
    let check = |ca_file: &str| {
        let db = crate::support::TestDb::sqlite();
        let mut command = crate::support::cli::necmail(&db);
        command
            .env(
                "NECMAIL_SMTP_URL",
                "smtp://mailer:hunter2@relay.example?tls=required",
            )
            .env("NECMAIL_SMTP_CA_FILE", ca_file)
            .args(["config", "check"]);
        crate::support::cli::run_command(&mut command)
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = test_ca_file(&dir);
    let trusted = check(ca_file.to_str().unwrap());
    let out = trusted.ok();
    assert!(
        out.contains("# mail goes out through smtp://relay.example:25 (STARTTLS)"),
        "{out}"
    );
    let missing = check("/no/such/ca.pem");
    let err = missing.fails(2);
    assert!(
        err.contains("NECMAIL_SMTP_CA_FILE /no/such/ca.pem"),
        "{err}"
    );
    assert!(!err.contains("hunter2") && !missing.stdout.contains("hunter2"));
}
