//! Inbound mail: every address of ours through the real listener over
//! loopback SMTP and LMTP, and through the real `necmail receive`.

use std::net::SocketAddr;
use std::sync::Arc;

use necmail::config::Config;
use necmail::delivery::Sending;
use necmail::feedback::{Bounce, BounceOutcome, EventFilter, EventKind, EventSource};
use necmail::inbound::Handler;
use necmail::inbound::listener::Listener;
use necmail::lists::OptIn;
use necmail::store::Store;
use necmail::subscribers::{ConsentMethod, SubscriberEmail, SubscriptionStatus, SuppressionReason};
use necmail::tokens::{Purpose, Signer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::campaigns::{campaign, world};
use crate::lists::{list_id, new_list, subscriber};
use crate::serve::{Daemon, free_port};
use crate::support::app::{PUBLIC_URL, SECRET, TestApp, spawn_app_with};
use crate::support::cli::{necmail, run, run_command};
use crate::support::{TestDb, on_both_backends};

const DOMAIN: &str = "nec.example";

/// The web application (which sends the confirmation emails) and the
/// inbound listener, on one database, mailing to one outbox.
struct Inbound {
    app: TestApp,
    addr: SocketAddr,
    signer: Signer,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// The configuration of the test application with `extra`.
fn config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let outbox = db.dir.path().join("outbox").display().to_string();
    let mut env: Vec<(String, String)> = [
        ("NECMAIL_SECRET", SECRET),
        ("NECMAIL_PUBLIC_URL", PUBLIC_URL),
        ("NECMAIL_FROM", "NEC Report <reports@nec.example>"),
        ("NECMAIL_OUTBOX_DIR", outbox.as_str()),
        ("NECMAIL_INBOUND_ADDR", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .expect("a valid test configuration")
}

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Inbound {
    let app = spawn_app_with(db, extra).await;
    let config = config(db, extra);
    let sending = Sending::new(Arc::new(config.clone())).expect("sending is set up");
    let handler = Handler::new(Arc::clone(&app.store), &sending, EventSource::Email);
    let listener = Listener::bind(config.inbound_addr.unwrap(), handler, &config)
        .await
        .expect("the listener binds");
    let addr = listener.local_addr();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(listener.run(stopped));
    Inbound {
        signer: config.signer(),
        app,
        addr,
        stop,
        task: Some(task),
    }
}

impl Inbound {
    fn store(&self) -> &dyn Store {
        &*self.app.store
    }

    async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Sends `message` from `from` to `to` over SMTP; the reply to the data.
    async fn send(&self, from: &str, to: &[&str], message: &str) -> String {
        let mut c = self.client().await;
        c.cmd("EHLO client.example").await;
        assert!(
            c.cmd(&format!("MAIL FROM:<{from}>"))
                .await
                .starts_with("250")
        );
        for rcpt in to {
            let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert!(reply.starts_with("250"), "RCPT {rcpt}: {reply}");
        }
        assert!(c.cmd("DATA").await.starts_with("354"));
        let reply = c.data(message).await;
        c.cmd("QUIT").await;
        reply
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.task.take().unwrap().await.unwrap();
        self.app.stop().await;
    }

    async fn events(&self, email: &str) -> Vec<EventKind> {
        let events = events_of(self.store(), email).await;
        events.into_iter().map(|(kind, _)| kind).collect()
    }

    async fn suppression(&self, email: &str) -> Option<SuppressionReason> {
        self.store()
            .suppression(&SubscriberEmail::parse(email).unwrap())
            .await
            .unwrap()
            .map(|s| s.reason)
    }

    /// The VERP address of delivery `id`.
    fn verp(&self, id: i64) -> String {
        format!(
            "bounce+{}@{DOMAIN}",
            self.signer.sign(Purpose::Delivery, &[id as u64])
        )
    }
}

/// A plain SMTP/LMTP client, to see each reply as it is.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (read, writer) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut c = Client {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = c.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        c
    }

    /// One whole reply (every line of a multi-line one); empty when the
    /// server closed the connection.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a message (dot-stuffed) and its end; the first reply.
    async fn data(&mut self, message: &str) -> String {
        let mut body = String::new();
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        self.write(body.as_bytes()).await;
        self.reply().await
    }
}

/// A message from `from` with `subject` and `body`, and `extra` header lines.
fn message(from: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: someone@{DOMAIN}\r\nSubject: {subject}\r\n{extra}\
         Message-ID: <{}.{}@client.example>\r\n\r\n{body}\r\n",
        subject.len(),
        body.len()
    )
}

/// An RFC 3464 delivery status notification for `recipients` (address,
/// action, status), from the MTA of example.org, enclosing `original`'s
/// headers.
fn dsn(recipients: &[(&str, &str, &str)], original: &str) -> String {
    let mut fields = String::from("Reporting-MTA: dns; mx.example.org\r\n");
    for (address, action, status) in recipients {
        fields.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {} {status} mailbox problem\r\n",
            if status.starts_with('5') { 550 } else { 452 }
        ));
    }
    format!(
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
         To: reports@{DOMAIN}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your \
         message could not be delivered.\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\n{fields}\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n--B--\r\n"
    )
}

/// An RFC 5965 abuse report about `original` (its headers).
fn arf(rcpt: &str, original: &str) -> String {
    format!(
        "From: feedback@fbl.example.org\r\nTo: bounces@{DOMAIN}\r\nSubject: FW: the report\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\
         User-Agent: FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {rcpt}\r\n\r\n\
         --F\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n\r\nthe report\r\n--F--\r\n"
    )
}

/// The headers of the campaign message of delivery `id` to `to`.
fn original(signer: &Signer, campaign: i64, id: i64, to: &str) -> String {
    let token = signer.sign(Purpose::Delivery, &[id as u64]);
    format!(
        "From: NEC Report <reports@{DOMAIN}>\r\nTo: {to}\r\nSubject: The NEC report\r\n\
         Message-ID: <{campaign}.{token}@{DOMAIN}>"
    )
}

/// The delivery of campaign `campaign` to `email`.
async fn delivery_of(store: &dyn Store, email: &str) -> i64 {
    for id in 1..100 {
        if let Some(d) = store.delivery_ref(id).await.unwrap()
            && d.email.as_str() == email
        {
            return id;
        }
    }
    panic!("no delivery to {email}");
}

async fn status_on(store: &dyn Store, email: &str, list: &str) -> SubscriptionStatus {
    let s = store
        .subscriber(&SubscriberEmail::parse(email).unwrap())
        .await
        .unwrap();
    s.lists
        .iter()
        .find(|m| m.slug.as_str() == list)
        .map(|m| m.status)
        .unwrap()
}

/// The `confirm+TOKEN@DOMAIN` address of the newest email's Reply-To.
fn reply_to(email: &str) -> String {
    let line = email
        .lines()
        .find(|l| l.starts_with("Reply-To:"))
        .unwrap_or_else(|| panic!("no Reply-To in:\n{email}"));
    line["Reply-To:".len()..].trim().to_owned()
}

on_both_backends! {
    async fn joining_by_email_sends_a_confirmation_that_a_reply_or_the_link_confirms(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();

        let join = message("Jo <jo@example.org>", "please add me", "", "thanks");
        let reply = inbound.send("jo@example.org", &[&format!("members-join@{DOMAIN}")], &join).await;
        assert!(reply.starts_with("250"), "{reply}");
        let emails = inbound.app.wait_for_emails(1).await;
        let confirm = reply_to(&emails[0]);
        assert!(confirm.starts_with("confirm+") && confirm.ends_with(DOMAIN), "{confirm}");
        assert!(emails[0].contains("Or simply reply to this email."));
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unconfirmed);

        let answer = message("jo@example.org", "Re: Please confirm", "", "yes please");
        let reply = inbound.send("jo@example.org", &[&confirm], &answer).await;
        assert!(reply.starts_with("250"), "{reply}");
        let jo = inbound.store().subscriber(&SubscriberEmail::parse("jo@example.org").unwrap())
            .await.unwrap();
        assert_eq!(jo.lists[0].status, SubscriptionStatus::Confirmed);
        assert_eq!(jo.lists[0].consent.method, ConsentMethod::Email, "the consent says email");
        assert_eq!(inbound.events("jo@example.org").await, [EventKind::Join, EventKind::Confirm]);

        // Another joins by email and confirms with the link instead.
        let join = message("ann@example.org", "join", "", "");
        inbound.send("ann@example.org", &[&format!("members-join@{DOMAIN}")], &join).await;
        inbound.app.wait_for_emails(2).await;
        let link = inbound.app.confirmation_link().await;
        let csrf = inbound.app.csrf(&link).await;
        let page = inbound.app.post_form(&link, &[("csrf", &csrf)]).await;
        assert_eq!(page.status(), 200);
        assert_eq!(status_on(inbound.store(), "ann@example.org", "members").await,
                   SubscriptionStatus::Confirmed);
        inbound.stop().await;
    }

    async fn leaving_by_email_unsubscribes_and_the_notice_never_tells_who_was_on_the_list(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        inbound.store().add_subscriber(&subscriber("jo@example.org", &["members"], true))
            .await.unwrap();
        let leave = format!("members-leave@{DOMAIN}");
        let reply = inbound.send("jo@example.org", &[&leave], &message("jo@example.org", "bye", "", "")).await;
        assert!(reply.starts_with("250"), "{reply}");
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unsubscribed);
        let reply = inbound.send("stranger@example.org", &[&leave],
            &message("stranger@example.org", "bye", "", "")).await;
        assert!(reply.starts_with("250"), "{reply}");
        let emails = inbound.app.emails();
        assert_eq!(emails.len(), 2, "one notice each");
        let body = |e: &str| e[e.find("\r\n\r\n").unwrap()..].to_owned();
        assert_eq!(body(&emails[0]), body(&emails[1]),
                   "the notice is the same whether or not the address was on the list");
        assert_eq!(inbound.events("jo@example.org").await, [EventKind::Leave]);
        inbound.stop().await;
    }

    async fn the_mailto_unsubscribe_works_at_once_and_silently_whatever_the_message(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let jo = inbound.store().add_subscriber(&subscriber("jo@example.org", &["members"], true))
            .await.unwrap();
        let list = list_id(inbound.store(), "members").await;
        let token = inbound.signer.sign(Purpose::Unsubscribe, &[jo.id as u64, list as u64]);
        let to = format!("leave+{token}@{DOMAIN}");
        // Gmail sends the mailto unsubscribe with a subject of its own, and
        // the message is automatic: it works all the same.
        let m = message("jo@example.org", "$(rm -rf /); unsubscribe", "Auto-Submitted: auto-generated\r\n", "");
        let reply = inbound.send("jo@example.org", &[&to], &m).await;
        assert!(reply.starts_with("250"), "{reply}");
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unsubscribed);
        assert!(inbound.app.emails().is_empty(), "silently");
        assert_eq!(inbound.events("jo@example.org").await, [EventKind::Leave]);
        inbound.stop().await;
    }

    async fn the_mailto_unsubscribe_of_a_message_sent_through_two_lists_leaves_both(db) {
        let inbound = start(db, &[]).await;
        for slug in ["members", "councillors", "staff"] {
            inbound.store().create_list(&new_list(slug, OptIn::Double)).await.unwrap();
        }
        let jo = inbound.store()
            .add_subscriber(&subscriber("jo@example.org", &["members", "councillors", "staff"], true))
            .await.unwrap();
        let members = list_id(inbound.store(), "members").await;
        let councillors = list_id(inbound.store(), "councillors").await;
        let mut token = String::new();
        inbound.signer.unsubscribe_into(jo.id as u64, [members as u64, councillors as u64], &mut token);
        let to = format!("leave+{token}@{DOMAIN}");
        let reply = inbound.send("jo@example.org", &[&to], &message("jo@example.org", "unsubscribe", "", "")).await;
        assert!(reply.starts_with("250"), "{reply}");
        for (slug, status) in [
            ("members", SubscriptionStatus::Unsubscribed),
            ("councillors", SubscriptionStatus::Unsubscribed),
            ("staff", SubscriptionStatus::Confirmed),
        ] {
            assert_eq!(status_on(inbound.store(), "jo@example.org", slug).await, status, "{slug}");
        }
        assert_eq!(inbound.events("jo@example.org").await, [EventKind::Leave, EventKind::Leave]);
        inbound.stop().await;
    }

    async fn a_request_message_obeys_subscribe_and_unsubscribe_and_otherwise_answers_help(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let request = format!("members-request@{DOMAIN}");
        inbound.send("jo@example.org", &[&request], &message("jo@example.org", "what is this", "", "hello")).await;
        let emails = inbound.app.wait_for_emails(1).await;
        assert!(emails[0].contains("subscribe     to join"), "{}", emails[0]);
        inbound.send("jo@example.org", &[&request], &message("jo@example.org", "", "", "\r\nsubscribe\r\n")).await;
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unconfirmed);
        inbound.send("jo@example.org", &[&request], &message("jo@example.org", "unsubscribe", "", "")).await;
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unsubscribed);
        inbound.stop().await;
    }

    async fn automatic_mail_is_never_answered_so_no_loop_can_start(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let join = format!("members-join@{DOMAIN}");
        let request = format!("members-request@{DOMAIN}");
        for (sender, extra) in [
            ("jo@example.org", "Auto-Submitted: auto-replied\r\n"),
            ("jo@example.org", "Precedence: bulk\r\n"),
            ("jo@example.org", "Precedence: list\r\n"),
            ("jo@example.org", "X-Autoreply: yes\r\n"),
            ("", ""),
            ("MAILER-DAEMON@mx.example.org", ""),
        ] {
            let m = message("jo@example.org", "help", extra, "subscribe");
            let reply = inbound.send(sender, &[&join, &request], &m).await;
            assert!(reply.starts_with("250"), "{reply}");
        }
        assert_eq!(inbound.store().confirmations_waiting().await.unwrap(), 0);
        assert!(inbound.app.emails().is_empty(), "no answer to anything automatic");
        assert!(inbound.store().subscriber(&SubscriberEmail::parse("jo@example.org").unwrap())
            .await.is_err(), "nobody joined");
        inbound.stop().await;
    }

    async fn a_hard_bounce_to_the_verp_address_marks_the_delivery_and_suppresses(db) {
        let inbound = start(db, &[]).await;
        let (store, report) = world(db, 2).await;
        let id = campaign(&*store, report, &["members"]).await;
        let delivery = delivery_of(&*store, "m000@example.org").await;
        let bounce = dsn(&[("m000@example.org", "failed", "5.1.1")],
                         &original(&inbound.signer, id, delivery, "m000@example.org"));
        let reply = inbound.send("", &[&inbound.verp(delivery)], &bounce).await;
        assert!(reply.starts_with("250"), "{reply}");
        assert_eq!(inbound.suppression("m000@example.org").await, Some(SuppressionReason::HardBounce));
        assert_eq!(inbound.suppression("m001@example.org").await, None);
        assert_eq!(inbound.events("m000@example.org").await, [EventKind::Bounce, EventKind::Suppress]);
        assert_eq!(store.delivery_counts(id).await.unwrap().bounced, 1);
        let listed = run(db, &["bounces", "ls", "--campaign", &id.to_string(), "--json"]).json();
        assert_eq!(listed[0]["email"], "m000@example.org");
        assert_eq!(listed[0]["status"], "5.1.1");
        inbound.stop().await;
    }

    async fn soft_bounces_suppress_only_at_the_limit_and_a_delay_is_no_bounce(db) {
        let inbound = start(db, &[("NECMAIL_SOFT_BOUNCE_LIMIT", "3")]).await;
        let (store, report) = world(db, 1).await;
        let id = campaign(&*store, report, &["members"]).await;
        let delivery = delivery_of(&*store, "m000@example.org").await;
        let head = original(&inbound.signer, id, delivery, "m000@example.org");
        let delayed = dsn(&[("m000@example.org", "delayed", "4.4.7")], &head);
        inbound.send("", &[&inbound.verp(delivery)], &delayed).await;
        assert!(inbound.events("m000@example.org").await.is_empty(), "a delay is not a bounce");
        let full = dsn(&[("m000@example.org", "failed", "5.2.2")], &head);
        for n in 1..=3 {
            let reply = inbound.send("", &[&inbound.verp(delivery)], &full).await;
            assert!(reply.starts_with("250"), "{reply}");
            let suppressed = inbound.suppression("m000@example.org").await;
            assert_eq!(suppressed.is_some(), n == 3, "after {n} soft bounces");
        }
        assert_eq!(store.delivery_counts(id).await.unwrap().bounced, 0, "soft bounces apart");
        inbound.stop().await;
    }

    async fn a_complaint_unsubscribes_from_everything_and_suppresses(db) {
        let inbound = start(db, &[]).await;
        let (store, report) = world(db, 2).await;
        let id = campaign(&*store, report, &["members"]).await;
        // Through the VERP address…
        let first = delivery_of(&*store, "m000@example.org").await;
        let report0 = arf("m000@example.org", &original(&inbound.signer, id, first, "m000@example.org"));
        inbound.send("feedback@fbl.example.org", &[&inbound.verp(first)], &report0).await;
        // …and through bounces@, matched by our Message-ID in the enclosed message.
        let second = delivery_of(&*store, "m001@example.org").await;
        let report1 = arf("someone@else.example", &original(&inbound.signer, id, second, "m001@example.org"));
        let reply = inbound.send("feedback@fbl.example.org", &[&format!("bounces@{DOMAIN}")], &report1).await;
        assert!(reply.starts_with("250"), "{reply}");
        for email in ["m000@example.org", "m001@example.org"] {
            assert_eq!(inbound.suppression(email).await, Some(SuppressionReason::Complaint), "{email}");
            assert_eq!(status_on(inbound.store(), email, "members").await, SubscriptionStatus::Unsubscribed);
        }
        assert_eq!(store.delivery_counts(id).await.unwrap().complained, 2);
        inbound.stop().await;
    }

    async fn an_out_of_office_reply_to_a_verp_address_is_not_a_bounce(db) {
        let inbound = start(db, &[]).await;
        let (store, report) = world(db, 1).await;
        campaign(&*store, report, &["members"]).await;
        let delivery = delivery_of(&*store, "m000@example.org").await;
        let ooo = message("m000@example.org", "Out of Office: The NEC report",
                          "Auto-Submitted: auto-replied\r\n", "I am away until Monday.");
        inbound.send("m000@example.org", &[&inbound.verp(delivery)], &ooo).await;
        assert_eq!(inbound.events("m000@example.org").await, [EventKind::AutoReply]);
        assert_eq!(inbound.suppression("m000@example.org").await, None);
        assert!(inbound.app.emails().is_empty(), "and it is not answered");
        inbound.stop().await;
    }

    async fn a_forged_verp_token_is_dropped(db) {
        let inbound = start(db, &[]).await;
        let (store, report) = world(db, 1).await;
        let id = campaign(&*store, report, &["members"]).await;
        let delivery = delivery_of(&*store, "m000@example.org").await;
        let forged = format!("bounce+{}@{DOMAIN}", Signer::new("another secret of some length")
            .sign(Purpose::Delivery, &[delivery as u64]));
        let bounce = dsn(&[("m000@example.org", "failed", "5.1.1")],
                         &original(&inbound.signer, id, delivery, "m000@example.org"));
        let reply = inbound.send("", &[&forged], &bounce).await;
        assert!(reply.starts_with("250"), "accepted, and dropped: {reply}");
        assert_eq!(inbound.suppression("m000@example.org").await, None);
        assert!(inbound.events("m000@example.org").await.is_empty());
        inbound.stop().await;
    }

    async fn bounces_without_a_token_are_matched_by_the_addresses_they_name(db) {
        let inbound = start(db, &[]).await;
        let (store, _) = world(db, 6).await;
        let bounces = format!("bounces@{DOMAIN}");
        // A DSN with several recipients: one hard, one soft, one delayed.
        let several = dsn(&[("m000@example.org", "failed", "5.1.1"),
                            ("m001@example.org", "failed", "4.2.2"),
                            ("m002@example.org", "delayed", "4.4.7")], "Subject: x");
        inbound.send("", &[&bounces], &several).await;
        assert_eq!(inbound.suppression("m000@example.org").await, Some(SuppressionReason::HardBounce));
        assert_eq!(inbound.events("m001@example.org").await, [EventKind::SoftBounce]);
        assert!(inbound.events("m002@example.org").await.is_empty());
        // Bounces that are not DSNs, as Postfix, Exim and qmail word them
        // (the original attached or cut short).
        let texts = [
            ("MAILER-DAEMON@mx.example.org", "Undelivered Mail Returned to Sender",
             "This is the mail system at host mx.example.org.\r\n\r\n<m003@example.org>: host \
              mx.example.org[192.0.2.1] said: 550 5.1.1 <m003@example.org>: Recipient address \
              rejected: User unknown\r\n"),
            ("Mail Delivery System <Mailer-Daemon@mx.example.org>", "Mail delivery failed: returning message to sender",
             "This message was created automatically by mail delivery software.\r\n\r\nA message \
              that you sent could not be delivered to one or more of its\r\nrecipients. This is \
              a permanent error. The following address(es) failed:\r\n\r\n  m004@example.org\r\n\
              \x20   host mx.example.org [192.0.2.1]\r\n    SMTP error from remote mail server \
              after RCPT TO:<m004@example.org>:\r\n    550 5.1.1 User unknown\r\n\r\n------ This is \
              a copy of the message, including all the headers. ------\r\nTo: m005@example.org\r\n"),
            ("MAILER-DAEMON@mx.example.org", "failure notice",
             "Hi. This is the qmail-send program at mx.example.org.\r\n\r\n<m005@example.org>:\r\n\
              Sorry, I couldn't find a mailbox here by that name. (#5.1.1)\r\n\r\n--- Below this \
              line is a copy of the message.\r\n"),
        ];
        for (from, subject, body) in texts {
            let m = message(from, subject, "", body);
            let reply = inbound.send("", &[&bounces], &m).await;
            assert!(reply.starts_with("250"), "{reply}");
        }
        for email in ["m003@example.org", "m004@example.org", "m005@example.org"] {
            assert_eq!(inbound.suppression(email).await, Some(SuppressionReason::HardBounce), "{email}");
        }
        drop(store);
        inbound.stop().await;
    }

    async fn addresses_it_does_not_handle_are_refused_at_rcpt(db) {
        let inbound = start(db, &[]).await;
        let store = inbound.store();
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut private = new_list("secret", OptIn::Double);
        private.public = false;
        store.create_list(&private).await.unwrap();
        let mut c = inbound.client().await;
        c.cmd("EHLO client.example").await;
        c.cmd("MAIL FROM:<jo@example.org>").await;
        for rcpt in [
            format!("someone@{DOMAIN}"),
            format!("nolist-join@{DOMAIN}"),
            format!("secret-join@{DOMAIN}"),
            "members-join@elsewhere.example".to_owned(),
            format!("members-frobnicate@{DOMAIN}"),
        ] {
            let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert!(reply.starts_with("550 5.1.1"), "{rcpt}: {reply}");
        }
        let reply = c.cmd(&format!("RCPT TO:<secret-leave@{DOMAIN}>")).await;
        assert!(reply.starts_with("250"), "a private list can be left: {reply}");
        assert!(c.cmd("QUIT").await.starts_with("221"));
        inbound.stop().await;
    }

    async fn lmtp_gives_one_reply_per_recipient(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        inbound.store().create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        for list in ["members", "councillors"] {
            inbound.store().add_subscriber(&subscriber("jo@example.org", &[list], true)).await.unwrap();
        }
        let mut c = inbound.client().await;
        let lhlo = c.cmd("LHLO mta.example").await;
        assert!(lhlo.contains("PIPELINING") && lhlo.contains("SIZE"), "{lhlo}");
        c.cmd("MAIL FROM:<jo@example.org>").await;
        assert!(c.cmd(&format!("RCPT TO:<members-leave@{DOMAIN}>")).await.starts_with("250"));
        assert!(c.cmd(&format!("RCPT TO:<nobody@{DOMAIN}>")).await.starts_with("550"));
        assert!(c.cmd(&format!("RCPT TO:<councillors-leave@{DOMAIN}>")).await.starts_with("250"));
        c.cmd("DATA").await;
        let first = c.data(&message("jo@example.org", "bye", "", "")).await;
        let second = c.reply().await;
        assert!(first.starts_with("250") && second.starts_with("250"), "{first}{second}");
        for list in ["members", "councillors"] {
            assert_eq!(status_on(inbound.store(), "jo@example.org", list).await,
                       SubscriptionStatus::Unsubscribed);
        }
        inbound.stop().await;
    }

    async fn hostile_input_gets_a_clear_reply_and_the_listener_stays_up(db) {
        let inbound = start(db, &[
            ("NECMAIL_INBOUND_MAX_BYTES", "65536"),
            ("NECMAIL_INBOUND_MAX_RECIPIENTS", "5"),
        ]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        inbound.store().add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        let leave = format!("members-leave@{DOMAIN}");
        let mut c = inbound.client().await;
        c.cmd("EHLO client.example").await;
        // A message far over the limit: 552, and the session goes on.
        c.cmd("MAIL FROM:<jo@example.org>").await;
        c.cmd(&format!("RCPT TO:<{leave}>")).await;
        c.cmd("DATA").await;
        let big = format!("Subject: big\r\n\r\n{}", "x".repeat(998).repeat(100).as_str());
        let big: String = std::iter::repeat_n(big.as_str(), 10).collect::<Vec<_>>().join("\r\n");
        let reply = c.data(&big).await;
        assert!(reply.starts_with("552"), "{reply}");
        // Thousands of recipients: 452 past the limit.
        c.cmd("MAIL FROM:<jo@example.org>").await;
        let mut refused = 0;
        let batch: String = (0..500).map(|_| format!("RCPT TO:<{leave}>\r\n")).collect();
        for _ in 0..20 {
            c.write(batch.as_bytes()).await;
            for _ in 0..500 {
                if c.reply().await.starts_with("452") {
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 10_000 - 5);
        assert!(c.cmd("RSET").await.starts_with("250"));
        // NUL bytes: 554.
        c.cmd("MAIL FROM:<jo@example.org>").await;
        c.cmd(&format!("RCPT TO:<{leave}>")).await;
        c.cmd("DATA").await;
        let reply = c.data("Subject: a\0b\r\n\r\nhello").await;
        assert!(reply.starts_with("554"), "{reply}");
        // Garbage: 500, and no state changed.
        assert!(c.cmd("FROBNICATE now").await.starts_with("500"));
        assert!(c.cmd("DATA").await.starts_with("503"));
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Confirmed, "nothing changed");
        // Bare LF line endings are read all the same; only CRLF.CRLF ends
        // the message, so none can be smuggled in after a bare LF dot.
        c.cmd("MAIL FROM:<jo@example.org>").await;
        c.cmd(&format!("RCPT TO:<{leave}>")).await;
        c.cmd("DATA").await;
        c.write(b"From: jo@example.org\nSubject: bye\n\nbye\n.\nMAIL FROM:<x@y.z>\n\r\n.\r\n")
            .await;
        let reply = c.reply().await;
        assert!(reply.starts_with("250"), "{reply}");
        assert_eq!(status_on(inbound.store(), "jo@example.org", "members").await,
                   SubscriptionStatus::Unsubscribed);
        c.cmd("QUIT").await;
        // Malformed MIME is taken without harm.
        let broken = "From: x@example.org\r\nContent-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n--\r\n";
        let reply = inbound.send("x@example.org", &[&format!("bounces@{DOMAIN}")], broken).await;
        assert!(reply.starts_with("250"), "{reply}");
        inbound.stop().await;
    }

    async fn a_client_that_stalls_mid_data_is_cut_off(db) {
        let inbound = start(db, &[("NECMAIL_INBOUND_TIMEOUT_SECS", "1")]).await;
        let mut c = inbound.client().await;
        c.cmd("EHLO client.example").await;
        c.cmd("MAIL FROM:<jo@example.org>").await;
        c.cmd(&format!("RCPT TO:<bounces@{DOMAIN}>")).await;
        c.cmd("DATA").await;
        c.write(b"Subject: half a message\r\n").await;
        let reply = c.reply().await;
        assert!(reply.starts_with("421"), "{reply}");
        assert_eq!(c.reply().await, "", "and the connection is closed");
        // The listener still serves.
        let mut again = inbound.client().await;
        assert!(again.cmd("EHLO client.example").await.starts_with("250"));
        inbound.stop().await;
    }

    async fn a_join_flood_sends_at_most_three_confirmations_a_day(db) {
        let inbound = start(db, &[]).await;
        inbound.store().create_list(&new_list("members", OptIn::Double)).await.unwrap();
        for _ in 0..6 {
            inbound.send("jo@example.org", &[&format!("members-join@{DOMAIN}")],
                         &message("jo@example.org", "join", "", "")).await;
        }
        inbound.app.wait_for_emails(3).await;
        let mut app = inbound.app;
        let _ = inbound.stop.send(true);
        inbound.task.unwrap().await.unwrap();
        app.stop().await;
        assert_eq!(app.emails().len(), 3);
    }

    async fn necmail_receive_exits_as_sysexits_says(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        let receive = |to: &str, from: &str, input: &[u8], url: &str| {
            let mut cmd = necmail(db);
            cmd.env("DATABASE_URL", url)
                .env("NECMAIL_SECRET", SECRET)
                .env("NECMAIL_PUBLIC_URL", PUBLIC_URL)
                .env("NECMAIL_FROM", "NEC Report <reports@nec.example>")
                .args(["receive", "--to", to, "--from", from])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(input);
            let out = child.wait_with_output().unwrap();
            (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let leave = format!("members-leave@{DOMAIN}");
        let bye = message("jo@example.org", "bye", "", "");
        let (code, stderr) = receive(&leave, "jo@example.org", bye.as_bytes(), &db.url);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(status_on(&*store, "jo@example.org", "members").await, SubscriptionStatus::Unsubscribed);
        let (code, _) = receive(&format!("nobody@{DOMAIN}"), "jo@example.org", bye.as_bytes(), &db.url);
        assert_eq!(code, 67, "unknown address");
        let (code, _) = receive(&leave, "jo@example.org", b"\0\0\0", &db.url);
        assert_eq!(code, 65, "unparsable");
        // A MIME structure mail-parser loses its way in (found by fuzzing).
        let lost = include_bytes!("../fixtures/hostile/mime-part-mail-parser-loses.eml");
        let (code, stderr) = receive(&leave, "jo@example.org", lost, &db.url);
        assert_eq!(code, 65, "unparsable: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
        let (code, stderr) = receive(&leave, "jo@example.org", bye.as_bytes(),
                                     "sqlite:///nonexistent/necmail.db");
        assert_eq!(code, 75, "the database is down: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    async fn events_ls_tells_the_whole_story_of_a_subscriber(db) {
        let inbound = start(db, &[]).await;
        let (store, report) = world(db, 0).await;
        let join = message("jo@example.org", "join", "", "");
        inbound.send("jo@example.org", &[&format!("members-join@{DOMAIN}")], &join).await;
        let emails = inbound.app.wait_for_emails(1).await;
        inbound.send("jo@example.org", &[&reply_to(&emails[0])], &message("jo@example.org", "Re: confirm", "", "yes")).await;
        let id = campaign(&*store, report, &["members"]).await;
        let delivery = delivery_of(&*store, "jo@example.org").await;
        let head = original(&inbound.signer, id, delivery, "jo@example.org");
        for _ in 0..2 {
            inbound.send("", &[&inbound.verp(delivery)],
                         &dsn(&[("jo@example.org", "failed", "4.2.2")], &head)).await;
        }
        inbound.send("fbl@example.net", &[&inbound.verp(delivery)], &arf("jo@example.org", &head)).await;
        let events = run(db, &["events", "ls", "--email", "jo@example.org", "--json"]).json();
        let kinds: Vec<&str> = events.as_array().unwrap().iter().rev()
            .map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["join", "confirm", "soft-bounce", "soft-bounce", "complaint"]);
        let complaint = &events[0];
        assert_eq!(complaint["source"], "email");
        assert_eq!(complaint["delivery_id"], delivery);
        let table = run(db, &["events", "ls", "--kind", "complaint"]);
        assert!(table.ok().contains("jo@example.org"), "{}", table.stdout);
        inbound.stop().await;
    }

    async fn a_bounce_records_its_event_delivery_and_suppression_only_for_a_subscriber(db) {
        let (store, report) = world(db, 3).await;
        let id = campaign(&*store, report, &["members"]).await;
        let delivery = store.delivery_ref(delivery_of(&*store, "m000@example.org").await)
            .await.unwrap().unwrap();
        let email = |e: &str| SubscriberEmail::parse(e).unwrap();
        let (m000, m001, m002, nobody) = (email("m000@example.org"), email("m001@example.org"),
                                          email("m002@example.org"), email("nobody@example.org"));
        let bounce = |email, delivery, hard| Bounce {
            email, delivery, hard, status: if hard { "5.1.1" } else { "4.2.2" },
            reason: "550 5.1.1 user unknown", source: EventSource::Mailbox, soft_limit: 2,
            soft_since: chrono::Utc::now() - chrono::Duration::days(1),
        };
        let events = async |email: &SubscriberEmail| {
            let mut events = store.events(&EventFilter {
                email: Some(email.clone()), limit: 100, ..EventFilter::default()
            }).await.unwrap();
            events.reverse();
            events
        };
        let suppression = async |email| store.suppression(email).await.unwrap().map(|s| s.reason);

        // An address of no subscriber: nothing at all.
        assert_eq!(store.record_bounce(&bounce(&nobody, None, true)).await.unwrap(),
                   BounceOutcome::Unknown);
        assert!(events(&nobody).await.is_empty());
        assert_eq!(suppression(&nobody).await, None);

        // A hard bounce of a delivery: the delivery, both events, the suppression.
        assert_eq!(store.record_bounce(&bounce(&m000, Some(&delivery), true)).await.unwrap(),
                   BounceOutcome::Suppressed);
        assert_eq!(suppression(&m000).await, Some(SuppressionReason::HardBounce));
        assert_eq!(store.delivery_counts(id).await.unwrap().bounced, 1);
        let recorded = events(&m000).await;
        let kinds: Vec<_> = recorded.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Bounce, EventKind::Suppress]);
        let (bounced, suppressed) = (&recorded[0], &recorded[1]);
        assert_eq!((bounced.source, bounced.status.as_deref(), bounced.reason.as_str()),
                   (EventSource::Mailbox, Some("5.1.1"), "550 5.1.1 user unknown"));
        assert_eq!((bounced.delivery_id, bounced.campaign_id, bounced.list_id),
                   (Some(delivery.id), Some(id), Some(delivery.list_id)));
        assert_eq!(bounced.subscriber_id, Some(delivery.subscriber_id));
        assert_eq!(bounced.email.as_deref(), Some("m000@example.org"));
        assert_eq!((suppressed.source, suppressed.reason.as_str(), suppressed.subscriber_id),
                   (EventSource::Mailbox, "a hard bounce", Some(delivery.subscriber_id)));
        // Bounced again: the bounce counts, the address is not suppressed twice.
        assert_eq!(store.record_bounce(&bounce(&m000, None, true)).await.unwrap(),
                   BounceOutcome::Suppressed);
        let kinds: Vec<_> = events(&m000).await.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Bounce, EventKind::Suppress, EventKind::Bounce]);

        // A complaint outranks a hard bounce; an unsubscribe from everything does not.
        store.add_suppression(&m001, SuppressionReason::Complaint, "", EventSource::Admin).await.unwrap();
        store.add_suppression(&m002, SuppressionReason::Unsubscribed, "", EventSource::Admin).await.unwrap();
        for (email, kept, kinds) in [
            (&m001, SuppressionReason::Complaint, &[EventKind::Suppress, EventKind::Bounce][..]),
            (&m002, SuppressionReason::HardBounce,
             &[EventKind::Suppress, EventKind::Bounce, EventKind::Suppress][..]),
        ] {
            assert_eq!(store.record_bounce(&bounce(email, None, true)).await.unwrap(),
                       BounceOutcome::Suppressed, "{email}");
            assert_eq!(suppression(email).await, Some(kept), "{email}");
            let recorded: Vec<_> = events(email).await.iter().map(|e| e.kind).collect();
            assert_eq!(recorded, kinds, "{email}");
        }

        // Soft bounces count up to the limit, then suppress.
        store.remove_suppression(&m002, "back", EventSource::Admin).await.unwrap();
        let m002_events = events(&m002).await.len();
        assert_eq!(store.record_bounce(&bounce(&m002, None, false)).await.unwrap(),
                   BounceOutcome::Counted);
        assert_eq!(suppression(&m002).await, None);
        assert_eq!(store.record_bounce(&bounce(&m002, None, false)).await.unwrap(),
                   BounceOutcome::Suppressed);
        assert_eq!(suppression(&m002).await, Some(SuppressionReason::HardBounce));
        let recorded = events(&m002).await;
        let kinds: Vec<_> = recorded[m002_events..].iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::SoftBounce, EventKind::SoftBounce, EventKind::Suppress]);
        assert_eq!(recorded.last().unwrap().reason, "2 soft bounces");
    }

    async fn suppressions_are_listed_added_and_lifted_with_a_reason(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        run(db, &["suppression", "add", "jo@example.org", "--reason", "complaint", "--note", "phoned"]).ok();
        let listed = run(db, &["suppression", "ls", "--json"]).json();
        assert_eq!(listed[0]["email"], "jo@example.org");
        assert_eq!(listed[0]["reason"], "complaint");
        run_command(necmail(db).args(["suppression", "rm", "jo@example.org"])).fails(2);
        run(db, &["suppression", "rm", "jo@example.org", "--reason", "asked to come back"]).ok();
        assert!(run(db, &["suppression", "ls", "--json"]).json().as_array().unwrap().is_empty());
        let events = run(db, &["events", "ls", "--json"]).json();
        assert_eq!(events[0]["kind"], "unsuppress");
        assert_eq!(events[0]["reason"], "asked to come back");
        assert_eq!(events[0]["source"], "cli", "done on the command line");
        run(db, &["suppression", "rm", "jo@example.org", "--reason", "again"]).fails(2);
        // Erasing the subscriber erases the address from the events; what
        // happened stays, by the address's hash.
        run(db, &["subscriber", "rm", "jo@example.org", "--erase"]).ok();
        let events = run(db, &["events", "ls", "--json"]).json();
        assert_eq!(events.as_array().unwrap().len(), 2);
        for event in events.as_array().unwrap() {
            assert!(event["email"].is_null() && event["subscriber_id"].is_null(), "{event}");
        }
        assert!(!run(db, &["events", "ls"]).ok().contains("jo@example.org"));
    }

    async fn serve_takes_inbound_mail_from_an_ordinary_smtp_client(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        let port = free_port();
        let daemon = Daemon::start(db, &[
            ("NECMAIL_INBOUND_ADDR", format!("127.0.0.1:{port}")),
            ("NECMAIL_FROM", "NEC Report <reports@nec.example>".to_owned()),
            ("NECMAIL_OUTBOX_DIR", db.dir.path().join("outbox").display().to_string()),
        ]).await;
        use lettre::AsyncTransport;
        let client = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
        let envelope = lettre::address::Envelope::new(
            Some("jo@example.org".parse().unwrap()),
            vec![format!("members-leave@{DOMAIN}").parse().unwrap()],
        ).unwrap();
        let sent = client.send_raw(&envelope, message("jo@example.org", "leave", "", "").as_bytes()).await;
        assert!(sent.is_ok(), "{sent:?}");
        assert_eq!(status_on(&*store, "jo@example.org", "members").await, SubscriptionStatus::Unsubscribed);
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("inbound SMTP and LMTP listening"), "{log}");
    }
}

/// swaks is the standard SMTP test client; `scripts/test` runs this when it
/// is installed and says so when it is not.
/// What happened to `email`, oldest first: each event's kind and source.
async fn events_of(store: &dyn Store, email: &str) -> Vec<(EventKind, EventSource)> {
    let mut events = store
        .events(&EventFilter {
            email: Some(SubscriberEmail::parse(email).unwrap()),
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    events.reverse();
    events.into_iter().map(|e| (e.kind, e.source)).collect()
}

mod swaks {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs swaks: scripts/test runs it when swaks is installed"]
    async fn serve_takes_a_leave_over_lmtp_from_swaks_as_an_mta_would_deliver_it() {
        let db = TestDb::sqlite();
        let store = db.store().await;
        store
            .create_list(&new_list("councillors", OptIn::Double))
            .await
            .unwrap();
        store
            .add_subscriber(&subscriber("jo@example.org", &["councillors"], true))
            .await
            .unwrap();
        let port = free_port();
        let daemon = Daemon::start(
            &db,
            &[
                ("NECMAIL_INBOUND_ADDR", format!("127.0.0.1:{port}")),
                (
                    "NECMAIL_FROM",
                    "NEC Report <reports@nec.example>".to_owned(),
                ),
                (
                    "NECMAIL_OUTBOX_DIR",
                    db.dir.path().join("outbox").display().to_string(),
                ),
            ],
        )
        .await;
        let swaks = std::process::Command::new("swaks")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--protocol",
                "LMTP",
                "--from",
                "jo@example.org",
                "--to",
                &format!("councillors-leave@{DOMAIN}"),
                "--header",
                "Subject: leave",
                "--body",
                "please",
            ])
            .output()
            .expect("swaks runs");
        let transcript = String::from_utf8_lossy(&swaks.stdout);
        assert!(swaks.status.success(), "{transcript}");
        assert!(
            transcript.contains("<-  250 2.0.0 Delivered"),
            "{transcript}"
        );
        assert_eq!(
            status_on(&*store, "jo@example.org", "councillors").await,
            SubscriptionStatus::Unsubscribed
        );
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        drop(store);
        db.finish().await;
    }
}

/// The bounce mailbox, against a real Dovecot on loopback; `scripts/test`
/// runs these when Dovecot is installed and says so when it is not.
mod dovecot {
    use super::*;
    use crate::support::imap::{Dovecot, PASSWORD};
    use crate::support::on_both_backends_needing;
    use crate::support::smtp::test_ca_pem;

    /// `necmail bounces poll` against `mailbox`, with `extra` variables.
    fn poll(db: &TestDb, mailbox: &str, extra: &[(&str, &str)]) -> crate::support::cli::Run {
        let mut cmd = necmail(db);
        cmd.args(["bounces", "poll"])
            .env("NECMAIL_SECRET", SECRET)
            .env("NECMAIL_PUBLIC_URL", PUBLIC_URL)
            .env("NECMAIL_FROM", "NEC Report <reports@nec.example>")
            .env("NECMAIL_OUTBOX_DIR", db.dir.path().join("outbox"))
            .env("NECMAIL_BOUNCE_MAILBOX", mailbox)
            // Everything: the IMAP client's own trace of what it sends too.
            .env("NECMAIL_LOG", "trace");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run_command(&mut cmd)
    }

    /// A Dovecot whose mailbox holds a hard bounce of m000@example.org, and
    /// a store where m000 is subscribed.
    async fn one_hard_bounce_waiting(db: &TestDb) -> (Dovecot, Arc<dyn Store>) {
        let dovecot = Dovecot::start().await;
        let (store, _) = world(db, 1).await;
        dovecot
            .append(dsn(&[("m000@example.org", "failed", "5.1.1")], "Subject: x").as_bytes())
            .await;
        (dovecot, store)
    }

    on_both_backends_needing! {
        "needs dovecot: scripts/test runs it when dovecot is installed",
        "needs dovecot and PostgreSQL: scripts/test runs it when both are here";

        async fn a_dsn_in_the_bounce_mailbox_suppresses_the_address_and_is_handled_once(db) {
            let dovecot = Dovecot::start().await;
            let (store, report) = world(db, 2).await;
            let id = campaign(&*store, report, &["members"]).await;
            let signer = Signer::new(SECRET);
            // A DSN as the relay returns it to the mailbox: to bounces@.
            dovecot.append(dsn(&[("m000@example.org", "failed", "5.1.1")], "Subject: x").as_bytes())
                .await;
            // One whose delivery agent recorded our VERP address.
            let delivery = delivery_of(&*store, "m001@example.org").await;
            let verp = format!("bounce+{}@{DOMAIN}", signer.sign(Purpose::Delivery, &[delivery as u64]));
            let bounce = dsn(&[("m001@example.org", "failed", "5.2.1")],
                             &original(&signer, id, delivery, "m001@example.org"));
            dovecot.append(format!("Delivered-To: {verp}\r\n{bounce}").as_bytes()).await;
            // One that cannot be read (no header), and one too large.
            dovecot.append(b"\r\nthere is no header here\r\n").await;
            let large = format!("Subject: large\r\n\r\n{}\r\n", "x".repeat(3000));
            dovecot.append(large.as_bytes()).await;

            let limit = [("NECMAIL_INBOUND_MAX_BYTES", "2048")];
            let first = poll(db, &dovecot.url(), &limit);
            assert!(first.ok().starts_with("2 handled, 2 left"), "{}", first.stdout);
            assert_eq!(store.suppression(&SubscriberEmail::parse("m000@example.org").unwrap())
                .await.unwrap().map(|s| s.reason), Some(SuppressionReason::HardBounce));
            let bounced = [(EventKind::Bounce, EventSource::Mailbox),
                           (EventKind::Suppress, EventSource::Mailbox)];
            assert_eq!(events_of(&*store, "m000@example.org").await, bounced);
            assert_eq!(events_of(&*store, "m001@example.org").await, bounced);
            assert_eq!(store.delivery_counts(id).await.unwrap().bounced, 1, "the VERP delivery");
            // The handled messages are gone; the two it cannot read stay, seen.
            let left = dovecot.flags().await;
            assert_eq!(left.len(), 2, "{left:?}");
            assert!(left.iter().all(|f| f.iter().any(|f| f == "Seen")), "{left:?}");

            // A second poll handles nothing again, nor the two unreadable ones.
            let second = poll(db, &dovecot.url(), &limit);
            assert!(second.ok().starts_with("0 handled, 0 left"), "{}", second.stdout);
            assert_eq!(events_of(&*store, "m000@example.org").await, bounced);
            let listed = run(db, &["events", "ls", "--email", "m000@example.org", "--json"]).json();
            assert_eq!(listed[0]["source"], "mailbox");
            for out in [&first, &second] {
                assert!(out.stderr.contains("polled the bounce mailbox"), "{}", out.stderr);
                assert!(!format!("{}{}", out.stdout, out.stderr).contains(PASSWORD), "{}", out.stderr);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs dovecot: scripts/test runs it when dovecot is installed"]
    async fn a_refused_login_is_a_clear_error_without_the_password() {
        let db = TestDb::sqlite();
        let dovecot = Dovecot::start().await;
        let wrong = dovecot.url().replace(PASSWORD, "wrong-pw-3Jd8sLq");
        let run = poll(&db, &wrong, &[("NECMAIL_LOG", "info")]);
        let error = run.fails(2);
        assert!(error.contains("LOGIN was refused"), "{error}");
        assert!(
            error.contains(&format!("127.0.0.1:{}/INBOX", dovecot.port)),
            "{error}"
        );
        assert!(!error.contains("wrong-pw-3Jd8sLq") && !run.stdout.contains("wrong-pw-3Jd8sLq"));
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs dovecot: scripts/test runs it when dovecot is installed"]
    async fn a_poll_takes_no_more_messages_than_necmail_bounce_poll_max_oldest_first() {
        let db = TestDb::sqlite();
        let dovecot = Dovecot::start().await;
        let (store, _) = world(&db, 3).await;
        for i in 0..3 {
            let bounce = dsn(
                &[(&format!("m{i:03}@example.org"), "failed", "5.1.1")],
                "Subject: x",
            );
            dovecot.append(bounce.as_bytes()).await;
        }
        let polled = poll(&db, &dovecot.url(), &[("NECMAIL_BOUNCE_POLL_MAX", "2")]);
        assert!(
            polled.ok().starts_with("2 handled, 0 left"),
            "{}",
            polled.stdout
        );
        assert!(polled.stdout.contains("1 waiting"), "{}", polled.stdout);
        let bounced = [
            (EventKind::Bounce, EventSource::Mailbox),
            (EventKind::Suppress, EventSource::Mailbox),
        ];
        assert_eq!(events_of(&*store, "m000@example.org").await, bounced);
        assert_eq!(events_of(&*store, "m001@example.org").await, bounced);
        assert_eq!(events_of(&*store, "m002@example.org").await, []);
        let left = dovecot.flags().await;
        assert_eq!(left.len(), 1, "the newest stays: {left:?}");
        assert!(!left[0].iter().any(|f| f == "Seen"), "unseen: {left:?}");
        drop(store);
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs dovecot: scripts/test runs it when dovecot is installed"]
    async fn serve_polls_the_bounce_mailbox_on_its_schedule() {
        let db = TestDb::sqlite();
        let (dovecot, store) = one_hard_bounce_waiting(&db).await;
        let daemon = Daemon::start(
            &db,
            &[
                (
                    "NECMAIL_FROM",
                    "NEC Report <reports@nec.example>".to_owned(),
                ),
                (
                    "NECMAIL_OUTBOX_DIR",
                    db.dir.path().join("outbox").display().to_string(),
                ),
                ("NECMAIL_BOUNCE_MAILBOX", dovecot.url()),
                // Every second, with seconds first.
                ("NECMAIL_BOUNCE_POLL_SCHEDULE", "* * * * * *".to_owned()),
                ("NECMAIL_LOG", "debug".to_owned()),
            ],
        )
        .await;
        let email = SubscriberEmail::parse("m000@example.org").unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.suppression(&email).await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not polled:\n{}",
                daemon.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            events_of(&*store, "m000@example.org").await,
            [
                (EventKind::Bounce, EventSource::Mailbox),
                (EventKind::Suppress, EventSource::Mailbox)
            ]
        );
        let (code, log) = daemon.stop().await;
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("bounce mailbox polled"), "{log}");
        assert!(log.contains("polled the bounce mailbox"), "{log}");
        assert!(!log.contains(PASSWORD), "{log}");
        drop(store);
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs dovecot: scripts/test runs it when dovecot is installed"]
    async fn imaps_trusts_the_ca_file_and_refuses_a_certificate_it_cannot_check() {
        let db = TestDb::sqlite();
        let (dovecot, store) = one_hard_bounce_waiting(&db).await;
        let url = dovecot.tls_url("localhost");
        let untrusted = poll(&db, &url, &[("NECMAIL_LOG", "info")]);
        let error = untrusted.fails(2);
        assert!(error.contains("NECMAIL_SMTP_CA_FILE"), "{error}");
        let ca = db.dir.path().join("ca.pem");
        std::fs::write(&ca, test_ca_pem()).unwrap();
        let trusted = poll(&db, &url, &[("NECMAIL_SMTP_CA_FILE", ca.to_str().unwrap())]);
        assert!(trusted.ok().starts_with("1 handled"), "{}", trusted.stdout);
        let email = SubscriberEmail::parse("m000@example.org").unwrap();
        assert!(store.suppression(&email).await.unwrap().is_some());
        drop(store);
        db.finish().await;
    }
}

#[test]
fn config_check_refuses_a_bounce_mailbox_in_clear_to_another_machine() {
    let db = TestDb::sqlite();
    let run = run_command(necmail(&db).args(["config", "check"]).env(
        "NECMAIL_BOUNCE_MAILBOX",
        "imap://bounces:hunter2-pw@mail.example/INBOX",
    ));
    let error = run.fails(2);
    assert!(error.contains("NECMAIL_BOUNCE_MAILBOX"), "{error}");
    assert!(error.contains("imaps://"), "{error}");
    assert!(
        !error.contains("hunter2-pw") && !run.stdout.contains("hunter2-pw"),
        "{error}"
    );
}

/// SQLite's migration 0017 rebuilds the events and the suppressions, whose
/// checks it writes as comparisons: the rows, their ids and the checks stay.
#[tokio::test]
async fn rebuilding_events_and_suppressions_on_sqlite_keeps_their_rows_and_their_checks() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 17)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    before.run(&mut conn).await.unwrap();
    for sql in [
        "INSERT INTO subscribers (id, email, email_key, email_hash, created_at, updated_at)
         VALUES (3, 'jo@example.org', 'jo@example.org', 'h', '2026-01-01T00:00:00Z',
                 '2026-01-01T00:00:00Z')",
        "INSERT INTO subscriber_events
             (id, at, kind, source, email, email_hash, subscriber_id, status, reason)
         VALUES (7, '2026-01-01T00:00:00Z', 'bounce', 'email', 'jo@example.org', 'h', 3,
                 '5.1.1', 'user unknown')",
        "INSERT INTO suppressions (email_hash, reason, created_at)
         VALUES ('h', 'hard-bounce', '2026-01-01T00:00:00Z')",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    // Opening the store applies the migrations left: 0017 onwards.
    let store = db.store().await;
    let events = store
        .events(&EventFilter {
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        (event.id, event.kind, event.source),
        (7, EventKind::Bounce, EventSource::Email)
    );
    assert_eq!(
        (event.subscriber_id, event.status.as_deref()),
        (Some(3), Some("5.1.1"))
    );
    let suppressions = store.suppressions(None, 10).await.unwrap();
    assert_eq!(suppressions.len(), 1, "{suppressions:?}");
    assert_eq!(suppressions[0].reason, SuppressionReason::HardBounce);
    assert_eq!(suppressions[0].email.as_deref(), Some("jo@example.org"));

    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    for bad in [
        "INSERT INTO subscriber_events (at, kind, source, email_hash) VALUES ('t', 'jump', 'web', 'h')",
        "INSERT INTO subscriber_events (at, kind, source, email_hash) VALUES ('t', 'join', 'fax', 'h')",
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ('g', 'bored', 't')",
        "UPDATE suppressions SET reason = 'bored'",
    ] {
        let refused = sqlx::query(bad).execute(&mut conn).await.unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{bad}: {refused}"
        );
    }
    for good in [
        "INSERT INTO subscriber_events (at, kind, source, email_hash)
         VALUES ('t', 'auto-reply', 'mailbox', 'h')",
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ('g', 'erased', 't')",
    ] {
        sqlx::query(good).execute(&mut conn).await.unwrap();
    }
    let (next,): (i64,) = sqlx::query_as("SELECT max(id) FROM subscriber_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(next, 8, "new events follow the kept ids");
    conn.close().await.unwrap();
}
