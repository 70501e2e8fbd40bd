//! An SMTP server for tests, on 127.0.0.1 and a free port.
//!
//! It speaks enough ESMTP for necmail (EHLO with 8BITMIME and SIZE, AUTH
//! PLAIN and LOGIN when asked to require it, PIPELINING and STARTTLS when
//! asked to offer them, or TLS from the first byte), records every message
//! it accepts and every attempt with its reply, and misbehaves on request.
//! Its certificate is for localhost, 127.0.0.1 and ::1, from a CA made for
//! the test run ([`test_ca_pem`]), which necmail trusts only when told to.
//! Its [`Behaviour`] can be changed at any time, also while a campaign is
//! sending:
//!
//! ```ignore
//! let server = SmtpServer::start().await;
//! server.set(Behaviour::accept().refuse(Who::to(["jo@example.org"]), "550 5.1.1 no such user"));
//! // … send …
//! server.set(Behaviour::accept().refuse(Who::everyone(), "421 4.3.2 try later"));
//! let sent = server.wait_for(3, Duration::from_secs(5)).await;
//! assert_eq!(sent[0].header("Subject").as_deref(), Some("NEC report"));
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Which recipients a rule is for.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// `None`: every recipient.
    recipients: Option<Vec<String>>,
    /// `Some(n)`: only a recipient's first `n` attempts since the behaviour
    /// was set.
    first: Option<u32>,
}

impl Who {
    pub fn everyone() -> Who {
        Who::default()
    }

    /// These recipients (compared without regard to case).
    pub fn to<S: Into<String>>(recipients: impl IntoIterator<Item = S>) -> Who {
        Who {
            recipients: Some(recipients.into_iter().map(Into::into).collect()),
            first: None,
        }
    }

    /// The first `n` attempts of each recipient: `Who::first(2)`, or
    /// `Who::to([…]).and_first(2)`.
    pub fn first(n: u32) -> Who {
        Who {
            recipients: None,
            first: Some(n),
        }
    }

    pub fn and_first(self, n: u32) -> Who {
        Who {
            first: Some(n),
            ..self
        }
    }

    fn matches(&self, recipient: &str, attempt: u32) -> bool {
        self.recipients
            .as_ref()
            .is_none_or(|list| list.iter().any(|r| r.eq_ignore_ascii_case(recipient)))
            && self.first.is_none_or(|n| attempt <= n)
    }
}

/// Where in a transaction a rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The reply to MAIL FROM (only rules for everyone act here: there is
    /// no recipient yet).
    Mail,
    /// The reply to RCPT TO.
    Rcpt,
    /// The reply to the DATA command.
    Data,
    /// The final reply, after the message data.
    EndOfData,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this full reply, e.g. `450 4.2.1 mailbox busy`.
    Reply(String),
    /// Close the connection without answering.
    Drop,
    /// Answer nothing until the test lets go ([`SmtpServer::let_go`]) or
    /// the client goes away: a relay that hangs, or a client killed while it
    /// waits. Acts at `Data` and `EndOfData` only. Held at the end of the
    /// data, the message counts as received at once, as a relay that queued
    /// it and then lost the connection would have it; let go, it is
    /// accepted with a 250.
    Hold,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub who: Who,
    pub stage: Stage,
    pub action: Action,
}

/// How the server behaves: the first matching rule acts, and without one it
/// accepts.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub rules: Vec<Rule>,
    /// Waited before every reply.
    pub delay: Duration,
    /// AUTH with these credentials is required before MAIL.
    pub auth: Option<(String, String)>,
    /// The AUTH mechanisms offered, of PLAIN and LOGIN.
    pub auth_mechanisms: &'static [&'static str],
    /// PIPELINING is offered (RFC 2920), as Postfix does.
    pub pipelining: bool,
    /// STARTTLS is offered (RFC 3207), before and after which AUTH is.
    pub starttls: bool,
    /// Connections are TLS from the first byte (smtps). Read when a
    /// connection is accepted.
    pub implicit_tls: bool,
    /// A reply sent in clear in the same write as the answer to STARTTLS,
    /// as a man in the middle would inject one.
    pub after_starttls: Option<String>,
}

impl Behaviour {
    /// Accepts everything: the default.
    pub fn accept() -> Behaviour {
        Behaviour::default()
    }

    pub fn rule(mut self, who: Who, stage: Stage, action: Action) -> Behaviour {
        self.rules.push(Rule { who, stage, action });
        self
    }

    /// Answers RCPT TO with `reply` (a 4xx or 5xx, in full).
    pub fn refuse(self, who: Who, reply: &str) -> Behaviour {
        self.rule(who, Stage::Rcpt, Action::Reply(reply.into()))
    }

    /// Closes the connection when the client sends DATA.
    pub fn drop_before_data(self, who: Who) -> Behaviour {
        self.rule(who, Stage::Data, Action::Drop)
    }

    /// Reads the whole message, then closes the connection without a reply.
    pub fn drop_after_data(self, who: Who) -> Behaviour {
        self.rule(who, Stage::EndOfData, Action::Drop)
    }

    pub fn delay(self, delay: Duration) -> Behaviour {
        Behaviour { delay, ..self }
    }

    /// Offers PIPELINING in the EHLO reply.
    pub fn pipelining(self) -> Behaviour {
        Behaviour {
            pipelining: true,
            ..self
        }
    }

    /// Requires AUTH PLAIN or LOGIN with these credentials before MAIL.
    pub fn require_auth(self, user: &str, password: &str) -> Behaviour {
        Behaviour {
            auth: Some((user.into(), password.into())),
            auth_mechanisms: &["PLAIN", "LOGIN"],
            ..self
        }
    }

    /// Offers (and takes) only these AUTH mechanisms, e.g. `&["LOGIN"]`.
    pub fn auth_mechanisms(self, auth_mechanisms: &'static [&'static str]) -> Behaviour {
        Behaviour {
            auth_mechanisms,
            ..self
        }
    }

    /// Offers STARTTLS in the EHLO reply.
    pub fn starttls(self) -> Behaviour {
        Behaviour {
            starttls: true,
            ..self
        }
    }

    /// Sends `reply` in clear in the same write as the answer to STARTTLS.
    pub fn inject_after_starttls(self, reply: &str) -> Behaviour {
        Behaviour {
            after_starttls: Some(reply.into()),
            ..self
        }
    }

    /// Speaks TLS from the first byte, as an smtps:// relay does.
    pub fn implicit_tls(self) -> Behaviour {
        Behaviour {
            implicit_tls: true,
            ..self
        }
    }

    /// The action of the first rule for this stage and recipient, if any.
    fn action(&self, stage: Stage, recipient: Option<(&str, u32)>) -> Option<&Action> {
        self.rules
            .iter()
            .find(|r| {
                r.stage == stage
                    && match recipient {
                        Some((rcpt, attempt)) => r.who.matches(rcpt, attempt),
                        None => r.who.recipients.is_none() && r.who.first.is_none(),
                    }
            })
            .map(|r| &r.action)
    }
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Which connection (numbered from 1) carried it.
    pub connection: usize,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as the client meant it: dot-unstuffed, ending with the
    /// CRLF before the final dot.
    pub data: Vec<u8>,
    /// The message as it came over the wire: dot-stuffed, with the final
    /// `.` line.
    pub wire: Vec<u8>,
    /// The user the connection authenticated as.
    pub authenticated_as: Option<String>,
    /// Whether it came over TLS.
    pub encrypted: bool,
    /// The server's final reply, e.g. `250 2.0.0 Ok: queued as 3`.
    pub reply: String,
}

impl Received {
    /// The message as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The first header called `name` (any case), unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every header called `name` (any case), in order, unfolded and trimmed.
    pub fn headers(&self, name: &str) -> Vec<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut fields: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match fields.last_mut() {
                Some(field) if line.starts_with([' ', '\t']) => field.push_str(line),
                _ => fields.push(line.to_owned()),
            }
        }
        fields
            .iter()
            .filter_map(|f| f.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Everything after the blank line that ends the headers.
    pub fn body(&self) -> String {
        self.text()
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }
}

/// One recipient's attempt: from its RCPT TO (or from a refused MAIL FROM,
/// before any recipient) to the reply that settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub connection: usize,
    pub mail_from: String,
    /// `None` when MAIL FROM itself was refused.
    pub rcpt_to: Option<String>,
    /// The reply that settled it; `None` when the transaction ended without
    /// one (the server dropped the connection, or the client reset, quit or
    /// went away).
    pub reply: Option<String>,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    /// Attempts per recipient (lower case) since the behaviour was set.
    attempt_counts: HashMap<String, u32>,
    messages: Vec<Received>,
    attempts: Vec<Attempt>,
    commands: Vec<String>,
    /// The lines of `commands` that came unencrypted.
    commands_in_clear: Vec<String>,
    connections: usize,
    /// Transactions held by [`Action::Hold`] so far.
    held: usize,
    /// Set by [`SmtpServer::let_go`]: held transactions go on.
    let_go: bool,
    /// Held transactions that were let go and answered.
    answered_after_hold: usize,
    open: usize,
    max_open: usize,
    tasks: Vec<AbortHandle>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }
}

/// The running server; it stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

impl SmtpServer {
    /// A server that accepts everything.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(Behaviour::accept()).await
    }

    pub async fn start_with(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener
            .local_addr()
            .expect("the test SMTP server's address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                behaviour,
                ..State::default()
            }),
            changed: Notify::new(),
        });
        let accepting = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut state = accepting.lock();
                state.connections += 1;
                state.open += 1;
                state.max_open = state.max_open.max(state.open);
                let id = state.connections;
                let session = Session::new(id, Arc::clone(&accepting));
                state
                    .tasks
                    .push(tokio::spawn(session.run(stream)).abort_handle());
            }
        })
        .abort_handle();
        SmtpServer {
            addr,
            shared,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT` (`smtps://` for implicit TLS), for
    /// NECMAIL_SMTP_URL.
    pub fn url(&self) -> String {
        let scheme = if self.shared.lock().behaviour.implicit_tls {
            "smtps"
        } else {
            "smtp"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// A configuration that sends to this server, with defaults otherwise.
    pub fn config(&self) -> necmail::config::Config {
        let url = self.url();
        necmail::config::Config::from_lookup(|name| {
            (name == "NECMAIL_SMTP_URL").then(|| url.clone())
        })
        .expect("a valid configuration")
    }

    /// Replaces the behaviour, from the next reply on, and restarts the
    /// count of each recipient's attempts.
    pub fn set(&self, behaviour: Behaviour) {
        let mut state = self.shared.lock();
        state.behaviour = behaviour;
        state.attempt_counts.clear();
        state.let_go = false;
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// The accepted messages for `rcpt` (any case).
    pub fn messages_to(&self, rcpt: &str) -> Vec<Received> {
        let state = self.shared.lock();
        state
            .messages
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .cloned()
            .collect()
    }

    /// Every attempt so far, in the order they were settled.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// The attempts for `rcpt` (any case).
    pub fn attempts_to(&self, rcpt: &str) -> Vec<Attempt> {
        let state = self.shared.lock();
        let is_rcpt = |a: &&Attempt| {
            a.rcpt_to
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(rcpt))
        };
        state.attempts.iter().filter(is_rcpt).cloned().collect()
    }

    /// Every line received but the message data: commands, e.g. `RSET`,
    /// and answers to AUTH's challenges.
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.clone()
    }

    /// The lines of [`SmtpServer::commands`] that came unencrypted.
    pub fn commands_in_clear(&self) -> Vec<String> {
        self.shared.lock().commands_in_clear.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().open
    }

    /// The most connections that were ever open at once.
    pub fn max_open_connections(&self) -> usize {
        self.shared.lock().max_open
    }

    /// Closes every open connection at once, without a word, as a crashed
    /// or restarted relay would.
    pub fn disconnect_all(&self) {
        let tasks = std::mem::take(&mut self.shared.lock().tasks);
        for task in tasks {
            task.abort();
        }
    }

    /// Waits until at least `n` messages have been accepted, and returns
    /// them all; panics, showing what did happen, after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, &format!("{n} messages"), |s| s.messages.len() >= n)
            .await;
        self.messages()
    }

    /// Waits until at least `n` attempts have been settled, and returns them
    /// all; panics, showing what did happen, after `timeout`.
    pub async fn wait_for_attempts(&self, n: usize, timeout: Duration) -> Vec<Attempt> {
        self.wait_until(timeout, &format!("{n} attempts"), |s| s.attempts.len() >= n)
            .await;
        self.attempts()
    }

    /// Waits until at least `n` transactions are held by [`Action::Hold`];
    /// panics after `timeout`.
    pub async fn wait_for_held(&self, n: usize, timeout: Duration) {
        self.wait_until(timeout, &format!("{n} held transactions"), |s| s.held >= n)
            .await;
    }

    /// Lets every held transaction go on, and those held from now on too.
    pub fn let_go(&self) {
        self.shared.record(|s| s.let_go = true);
    }

    /// Waits until `n` held transactions were let go and answered; panics
    /// after `timeout`.
    pub async fn wait_for_answered_after_hold(&self, n: usize, timeout: Duration) {
        let what = format!("{n} held transactions answered");
        self.wait_until(timeout, &what, |s| s.answered_after_hold >= n)
            .await;
    }

    /// Waits until no connection is open; panics after `timeout`.
    pub async fn wait_for_no_connections(&self, timeout: Duration) {
        self.wait_until(timeout, "every connection to close", |s| s.open == 0)
            .await;
    }

    async fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.shared.lock()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let state = self.shared.lock();
                panic!(
                    "the test SMTP server waited {timeout:?} for {what}; it accepted {} messages, settled attempts \
                     {:#?}, and {} connections are open",
                    state.messages.len(),
                    state.attempts,
                    state.open
                );
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.disconnect_all();
    }
}

/// A connection: TCP, or TLS over it.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

type Reader = BufReader<ReadHalf<Box<dyn Connection>>>;
type Writer = WriteHalf<Box<dyn Connection>>;

/// The test CA and the server's certificate, made once per test run.
struct TestCa {
    pem: String,
    /// The server's certificate and key, in PEM, for servers not ours (Dovecot).
    server_pem: String,
    server_key_pem: String,
    acceptor: TlsAcceptor,
}

static TEST_CA: LazyLock<TestCa> = LazyLock::new(|| {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "necmail test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("the CA certificate");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    let certificate = rcgen::CertificateParams::new(names)
        .and_then(|params| params.signed_by(&key, &ca))
        .expect("the server certificate");
    let (server_pem, server_key_pem) = (certificate.pem(), key.serialize_pem());
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .expect("a private key rustls reads");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(vec![certificate.der().clone(), ca.der().clone()], key)
        })
        .expect("a TLS server configuration");
    TestCa {
        pem: ca.pem(),
        server_pem,
        server_key_pem,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
});

/// The PEM certificate of the CA that signed the test server's certificate,
/// for NECMAIL_SMTP_CA_FILE.
pub fn test_ca_pem() -> &'static str {
    &TEST_CA.pem
}

/// The test server's certificate (for localhost and 127.0.0.1, signed by
/// [`test_ca_pem`]) and its private key, in PEM.
pub fn test_server_pem() -> (&'static str, &'static str) {
    (&TEST_CA.server_pem, &TEST_CA.server_key_pem)
}

/// One connection's conversation.
struct Session {
    id: usize,
    shared: Arc<Shared>,
    encrypted: bool,
    authenticated_as: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

/// The session is over: the client quit or went away, or the behaviour
/// said to drop it.
struct Closed;

/// The client asked for STARTTLS and was told to go ahead.
struct StartTls;

impl Session {
    fn new(id: usize, shared: Arc<Shared>) -> Session {
        Session {
            id,
            shared,
            encrypted: false,
            authenticated_as: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    /// Runs until the conversation ends or the task is aborted; either way
    /// dropping the session settles its transaction and counts it closed.
    /// A failed TLS handshake ends it too.
    async fn run(mut self, tcp: TcpStream) {
        let mut connection: Box<dyn Connection> = Box::new(tcp);
        if self.behaviour().implicit_tls {
            let Ok(tls) = TEST_CA.acceptor.accept(connection).await else {
                return;
            };
            connection = Box::new(tls);
            self.encrypted = true;
        }
        let mut greet = true;
        loop {
            let (read, mut write) = tokio::io::split(connection);
            let mut read = BufReader::new(read);
            if self.converse(&mut read, &mut write, greet).await.is_err() {
                return;
            }
            // RFC 3207: what the client sent after STARTTLS, before the
            // handshake, is not to be trusted.
            if !read.buffer().is_empty() {
                return;
            }
            let plain = read.into_inner().unsplit(write);
            let Ok(tls) = TEST_CA.acceptor.accept(plain).await else {
                return;
            };
            connection = Box::new(tls);
            // RFC 3207: the client starts afresh, with EHLO and AUTH.
            self.encrypted = true;
            self.authenticated_as = None;
            greet = false;
        }
    }

    /// Converses until the session is over, or the client may start TLS.
    async fn converse(
        &mut self,
        read: &mut Reader,
        write: &mut Writer,
        greet: bool,
    ) -> Result<StartTls, Closed> {
        if greet {
            self.reply(write, "220 necmail-test ESMTP ready").await?;
        }
        loop {
            let line = self.read_command(read).await?;
            let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    let behaviour = self.behaviour();
                    let mut lines = vec![
                        "250-necmail-test".to_owned(),
                        "250-8BITMIME".into(),
                        "250-SIZE 52428800".into(),
                    ];
                    if behaviour.auth.is_some() {
                        lines.push(format!("250-AUTH {}", behaviour.auth_mechanisms.join(" ")));
                    }
                    if behaviour.pipelining {
                        lines.push("250-PIPELINING".into());
                    }
                    if behaviour.starttls && !self.encrypted {
                        lines.push("250-STARTTLS".into());
                    }
                    lines.push("250 ENHANCEDSTATUSCODES".into());
                    self.reply(write, &lines.join("\r\n")).await?;
                }
                "STARTTLS" if self.behaviour().starttls && !self.encrypted => {
                    self.abandon();
                    let mut reply = "220 2.0.0 Ready to start TLS".to_owned();
                    if let Some(injected) = self.behaviour().after_starttls {
                        reply = format!("{reply}\r\n{injected}");
                    }
                    self.reply(write, &reply).await?;
                    return Ok(StartTls);
                }
                "HELO" | "NOOP" => self.reply(write, "250 2.0.0 Ok").await?,
                "AUTH" => self.auth(read, write, argument).await?,
                "MAIL" => self.mail(write, argument).await?,
                "RCPT" => self.rcpt(write, argument).await?,
                "DATA" => self.data(read, write).await?,
                "RSET" => {
                    self.abandon();
                    self.reply(write, "250 2.0.0 Ok").await?;
                }
                "QUIT" => {
                    self.reply(write, "221 2.0.0 Bye").await?;
                    return Err(Closed);
                }
                _ => {
                    self.reply(write, "500 5.5.2 command not recognised")
                        .await?
                }
            }
        }
    }

    fn behaviour(&self) -> Behaviour {
        self.shared.lock().behaviour.clone()
    }

    /// The next line, recorded as a command (trimmed).
    async fn read_command(&self, read: &mut Reader) -> Result<String, Closed> {
        let line = read_line(read).await?;
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let encrypted = self.encrypted;
        self.shared.record(|s| {
            s.commands.push(line.clone());
            if !encrypted {
                s.commands_in_clear.push(line.clone());
            }
        });
        Ok(line)
    }

    async fn reply(&self, write: &mut Writer, reply: &str) -> Result<(), Closed> {
        let delay = self.behaviour().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .map_err(|_| Closed)
    }

    /// Settles the open transaction's recipients with `reply` and clears it.
    fn settle(&mut self, reply: Option<&str>) {
        let mail_from = self.mail_from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpt_to);
        let id = self.id;
        self.shared.record(|s| {
            for rcpt in rcpts {
                let rcpt_to = Some(rcpt);
                s.attempts.push(Attempt {
                    connection: id,
                    mail_from: mail_from.clone(),
                    rcpt_to,
                    reply: reply.map(Into::into),
                });
            }
        });
    }

    fn abandon(&mut self) {
        self.settle(None);
    }

    /// AUTH PLAIN (RFC 4616) or LOGIN, as offered.
    async fn auth(
        &mut self,
        read: &mut Reader,
        write: &mut Writer,
        argument: &str,
    ) -> Result<(), Closed> {
        let behaviour = self.behaviour();
        let Some((user, password)) = behaviour.auth else {
            return self.reply(write, "503 5.5.1 AUTH is not offered").await;
        };
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        let mechanism = mechanism.to_ascii_uppercase();
        if !behaviour.auth_mechanisms.contains(&mechanism.as_str()) {
            return self.reply(write, "504 5.5.4 mechanism not offered").await;
        }
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .unwrap_or_default()
        };
        let (given_user, given_password) = if mechanism == "LOGIN" {
            self.reply(write, "334 VXNlcm5hbWU6").await?;
            let given_user = decode(&self.read_command(read).await?);
            self.reply(write, "334 UGFzc3dvcmQ6").await?;
            (given_user, decode(&self.read_command(read).await?))
        } else {
            let response = if initial.is_empty() {
                self.reply(write, "334 ").await?;
                self.read_command(read).await?
            } else {
                initial.to_owned()
            };
            let decoded = decode(&response);
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            match parts[..] {
                [_, given_user, given_password] => (given_user.to_vec(), given_password.to_vec()),
                _ => (Vec::new(), Vec::new()),
            }
        };
        if given_user == user.as_bytes() && given_password == password.as_bytes() {
            self.authenticated_as = Some(user);
            self.reply(write, "235 2.7.0 Authentication successful")
                .await
        } else {
            self.reply(write, "535 5.7.8 Authentication credentials invalid")
                .await
        }
    }

    async fn mail(&mut self, write: &mut Writer, argument: &str) -> Result<(), Closed> {
        let behaviour = self.behaviour();
        if behaviour.auth.is_some() && self.authenticated_as.is_none() {
            return self.reply(write, "530 5.7.0 Authentication required").await;
        }
        if self.mail_from.is_some() {
            return self.reply(write, "503 5.5.1 nested MAIL command").await;
        }
        let Some(from) = path(argument, "FROM:") else {
            return self
                .reply(write, "501 5.5.4 syntax: MAIL FROM:<address>")
                .await;
        };
        match behaviour.action(Stage::Mail, None) {
            Some(action) => {
                let reply = match action {
                    Action::Reply(reply) => Some(reply.clone()),
                    Action::Drop => None,
                    Action::Hold => panic!("the test server holds at DATA or the end of the data"),
                };
                let attempt = Attempt {
                    connection: self.id,
                    mail_from: from,
                    rcpt_to: None,
                    reply: reply.clone(),
                };
                self.shared.record(|s| s.attempts.push(attempt));
                match reply {
                    Some(reply) => self.reply(write, &reply).await,
                    None => Err(Closed),
                }
            }
            None => {
                self.mail_from = Some(from);
                self.reply(write, "250 2.1.0 Ok").await
            }
        }
    }

    async fn rcpt(&mut self, write: &mut Writer, argument: &str) -> Result<(), Closed> {
        let Some(mail_from) = self.mail_from.clone() else {
            return self.reply(write, "503 5.5.1 need MAIL before RCPT").await;
        };
        let Some(rcpt) = path(argument, "TO:") else {
            return self
                .reply(write, "501 5.5.4 syntax: RCPT TO:<address>")
                .await;
        };
        let (behaviour, attempt) = {
            let mut state = self.shared.lock();
            let count = state
                .attempt_counts
                .entry(rcpt.to_ascii_lowercase())
                .or_default();
            *count += 1;
            let count = *count;
            (state.behaviour.clone(), count)
        };
        match behaviour.action(Stage::Rcpt, Some((&rcpt, attempt))) {
            Some(Action::Hold) => panic!("the test server holds at DATA or the end of the data"),
            Some(Action::Drop) => {
                self.rcpt_to.push(rcpt);
                Err(Closed)
            }
            Some(Action::Reply(reply)) => {
                let settled = Attempt {
                    connection: self.id,
                    mail_from,
                    rcpt_to: Some(rcpt),
                    reply: Some(reply.clone()),
                };
                self.shared.record(|s| s.attempts.push(settled));
                self.reply(write, reply).await
            }
            None => {
                self.rcpt_to.push(rcpt);
                self.reply(write, "250 2.1.5 Ok").await
            }
        }
    }

    /// The action for the transaction's recipients at `stage`: the first
    /// recipient that a rule matches decides.
    fn transaction_action(&self, stage: Stage) -> Option<Action> {
        let state = self.shared.lock();
        self.rcpt_to.iter().find_map(|rcpt| {
            let attempt = state
                .attempt_counts
                .get(&rcpt.to_ascii_lowercase())
                .copied()
                .unwrap_or(1);
            state
                .behaviour
                .action(stage, Some((rcpt, attempt)))
                .cloned()
        })
    }

    async fn data(&mut self, read: &mut Reader, write: &mut Writer) -> Result<(), Closed> {
        if self.rcpt_to.is_empty() {
            return self.reply(write, "503 5.5.1 need RCPT before DATA").await;
        }
        match self.transaction_action(Stage::Data) {
            Some(Action::Drop) => return Err(Closed),
            Some(Action::Hold) => {
                self.hold(read).await?;
                self.reply(write, "354 End data with <CR><LF>.<CR><LF>")
                    .await?;
                self.shared.record(|s| s.answered_after_hold += 1);
            }
            Some(Action::Reply(reply)) => {
                self.settle(Some(&reply));
                return self.reply(write, &reply).await;
            }
            None => {
                self.reply(write, "354 End data with <CR><LF>.<CR><LF>")
                    .await?
            }
        }
        let (mut data, mut wire) = (Vec::new(), Vec::new());
        loop {
            let line = read_line(read).await?;
            wire.extend_from_slice(&line);
            if line == b".\r\n" {
                break;
            }
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
        match self.transaction_action(Stage::EndOfData) {
            Some(Action::Drop) => Err(Closed),
            Some(Action::Reply(reply)) => {
                self.settle(Some(&reply));
                self.reply(write, &reply).await
            }
            Some(Action::Hold) => {
                let reply = self.receive(data, wire, "250 2.0.0 Ok: held, then queued as");
                self.hold(read).await?;
                self.reply(write, &reply).await?;
                self.shared.record(|s| s.answered_after_hold += 1);
                Ok(())
            }
            None => {
                let reply = self.receive(data, wire, "250 2.0.0 Ok: queued as");
                self.reply(write, &reply).await
            }
        }
    }

    /// Keeps the message, settles the transaction with a reply that starts
    /// with `reply` and ends with the message's number, and returns it.
    fn receive(&mut self, data: Vec<u8>, wire: Vec<u8>, reply: &str) -> String {
        let reply = {
            let mut state = self.shared.lock();
            let reply = format!("{reply} {}", state.messages.len() + 1);
            state.messages.push(Received {
                connection: self.id,
                mail_from: self.mail_from.clone().unwrap_or_default(),
                rcpt_to: self.rcpt_to.clone(),
                data,
                wire,
                authenticated_as: self.authenticated_as.clone(),
                encrypted: self.encrypted,
                reply: reply.clone(),
            });
            reply
        };
        // Settling notifies whoever waits for messages.
        self.settle(Some(&reply));
        reply
    }

    /// Answers nothing until the test lets go, or ends the session when
    /// the client goes away (a client waiting for a reply sends nothing).
    async fn hold(&mut self, read: &mut Reader) -> Result<(), Closed> {
        self.shared.record(|s| s.held += 1);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.shared.lock().let_go {
                return Ok(());
            }
            tokio::select! {
                _ = changed => {}
                line = read_line(read) => {
                    line?;
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.abandon();
        self.shared.record(|s| s.open -= 1);
    }
}

/// The address in `FROM:<a@b> PARAMS` or `TO:<a@b>`.
fn path(argument: &str, keyword: &str) -> Option<String> {
    let rest = argument
        .get(..keyword.len())
        .filter(|k| k.eq_ignore_ascii_case(keyword))
        .map(|_| &argument[keyword.len()..])?;
    let rest = rest.trim_start().strip_prefix('<')?;
    rest.split_once('>').map(|(address, _)| address.to_owned())
}

/// One line with its line ending; the session ends at end of input.
async fn read_line(read: &mut Reader) -> Result<Vec<u8>, Closed> {
    let mut line = Vec::new();
    match read.read_until(b'\n', &mut line).await {
        Ok(0) | Err(_) => Err(Closed),
        Ok(_) => Ok(line),
    }
}
