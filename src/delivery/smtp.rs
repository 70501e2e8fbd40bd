//! The SMTP relay transport: a pool of our own TCP_NODELAY connections to
//! the relay in `NECMAIL_SMTP_URL`, one recipient per transaction.
//!
//! necmail speaks the protocol itself ([`Session`]): the greeting, EHLO,
//! STARTTLS, AUTH PLAIN or LOGIN, and per message MAIL FROM, RCPT TO and
//! DATA, pipelined when the relay offers PIPELINING (RFC 2920), then the
//! message in one vectored write. This module owns the sockets, the pool,
//! the timeouts and the classification of outcomes:
//!
//! * at most `NECMAIL_SMTP_CONNECTIONS` connections are open at once, and a
//!   send waits for one to be free;
//! * after a 4xx or 5xx reply to MAIL, RCPT or DATA the transaction is reset
//!   with RSET and the connection kept; after a negative reply to the message
//!   data no RSET is needed (the transaction is over), so it is kept as it is;
//! * after a network error or a timeout the connection is dropped, and the
//!   next send opens a fresh one. A pooled connection that turns out to be
//!   dead (or answers 421) at MAIL FROM is replaced once, at no risk, because
//!   nothing of the message has been sent;
//! * a connection lost after the whole message was written but before the
//!   reply is [`SendError::Ambiguous`]; lost any earlier, it is
//!   [`SendError::NetworkBeforeData`].
//!
//! A refusal of RCPT TO, DATA or the message is the recipient's outcome
//! ([`SendError::Transient`] or [`SendError::Permanent`]). Refusals of the
//! relay as a whole (its greeting, EHLO, STARTTLS or MAIL FROM) are
//! [`SendError::Relay`], so the engine retries and pauses the campaign
//! instead of failing every recipient; configuration problems (credentials
//! refused, STARTTLS required but not offered, a certificate that chains to
//! neither a public root nor `NECMAIL_SMTP_CA_FILE`) are
//! [`SendError::Local`]. When STARTTLS is offered it is used, and if it
//! fails nothing is sent in clear instead.
//! The password never appears in an error, a log line or `Debug` output.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tracing::Instrument as _;

use super::session::{Extensions, Session, Stream};
use super::{Accepted, Envelope, Outgoing, SendError, Transport};
use crate::config::{Config, SmtpTls, SmtpUrl};

/// A pooled connection idle for longer than this is closed rather than
/// reused: relays drop idle clients after a while (Postfix: 300 s).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// An SMTP relay with a pool of connections. Build it with
/// [`SmtpRelay::new`]; call [`SmtpRelay::close`] on shutdown.
pub struct SmtpRelay {
    host: String,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
    password: SecretString,
    hello: String,
    timeout: Duration,
    connections: usize,
    /// One permit per connection that may be open: a send holds one while
    /// it uses a connection, and idle connections are only ever taken by a
    /// permit holder, so no more than `connections` are ever open.
    slots: Semaphore,
    idle: Mutex<Vec<Connection>>,
    tls_connector: TlsConnector,
    label: String,
}

/// One open, greeted (and if configured, encrypted and authenticated)
/// connection.
struct Connection {
    session: Session,
    idle_since: Instant,
}

/// The SMTP steps of one transaction, for error messages and for deciding
/// whether a lost connection makes the outcome ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Mail,
    Rcpt,
    Data,
    Message,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "the message data",
        })
    }
}

/// How one step of a transaction went wrong.
enum Failure {
    /// A 4xx or 5xx reply: the full reply text, and whether the server said
    /// it is closing the connection (421).
    Refused {
        reply: String,
        permanent: bool,
        closing: bool,
    },
    /// The connection failed or timed out: it is unusable. `sent` says
    /// whether the whole message had been written.
    Lost { why: String, sent: bool },
}

/// The last reply of `session` as a refusal, if it is one.
fn refusal(session: &Session, code: u16) -> Option<Failure> {
    (code >= 400).then(|| Failure::Refused {
        reply: session.reply_text(),
        permanent: code >= 500,
        closing: code == 421,
    })
}

impl SmtpRelay {
    /// The relay named by `config.smtp`. Refuses, without connecting, a
    /// configuration that would send the password unencrypted to anything
    /// but this machine.
    pub fn new(config: &Config) -> Result<Self, SendError> {
        let url = config
            .smtp
            .as_ref()
            .ok_or_else(|| SendError::Local("NECMAIL_SMTP_URL is not set".into()))?;
        Self::check_credentials_are_safe(url)?;
        if config.helo_name.is_empty()
            || config
                .helo_name
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(SendError::Local(format!(
                "NECMAIL_HELO_NAME {:?} is not a host name",
                config.helo_name
            )));
        }
        let host = url
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls_connector = tls_connector(config.smtp_ca_file.as_deref())?;
        let password = url
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        let label = match url.tls {
            SmtpTls::Opportunistic => {
                format!("smtp://{}:{} (STARTTLS if offered)", url.host, url.port)
            }
            SmtpTls::Required => format!("smtp://{}:{} (STARTTLS)", url.host, url.port),
            SmtpTls::Implicit => format!("smtps://{}:{} (TLS)", url.host, url.port),
        };
        Ok(SmtpRelay {
            host,
            port: url.port,
            tls: url.tls,
            username: url.username.clone(),
            password: password.into(),
            hello: config.helo_name.clone(),
            timeout: config.smtp_timeout,
            connections: config.smtp_connections,
            slots: Semaphore::new(config.smtp_connections),
            idle: Mutex::new(Vec::new()),
            tls_connector,
            label,
        })
    }

    /// A password may travel unencrypted only to this machine: elsewhere
    /// the URL must make encryption mandatory (`smtps://` or
    /// `?tls=required`), which [`SmtpRelay::connect`] then enforces before
    /// AUTH.
    fn check_credentials_are_safe(url: &SmtpUrl) -> Result<(), SendError> {
        if url.username.is_some() && url.tls == SmtpTls::Opportunistic && !url.is_loopback() {
            return Err(SendError::Local(format!(
                "NECMAIL_SMTP_URL has credentials for {} but does not require encryption, so the password could \
                 travel in clear: use smtps:// or add ?tls=required",
                url.host
            )));
        }
        Ok(())
    }

    /// Sends QUIT on every connection and closes it. Waits for the sends in
    /// progress to finish first (each step of each is bounded by the
    /// timeout). The relay stays usable: a later send opens a new
    /// connection.
    #[tracing::instrument(skip_all, fields(relay = %self.label))]
    pub async fn close(&self) {
        let Ok(_all) = self.slots.acquire_many(self.connections_u32()).await else {
            return;
        };
        let idle = std::mem::take(&mut *self.lock_idle());
        let count = idle.len();
        futures_util::future::join_all(idle.into_iter().map(|c| quit(c, self.timeout))).await;
        tracing::debug!(closed = count, "SMTP connections closed");
    }

    fn connections_u32(&self) -> u32 {
        u32::try_from(self.connections).unwrap_or(u32::MAX)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding this lock cannot leave the list inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used idle connection, if one is fresh enough;
    /// stale ones are closed in the background.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.lock_idle();
        if idle.iter().all(|c| c.idle_since.elapsed() < MAX_IDLE) {
            return idle.pop();
        }
        let (fresh, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut *idle)
            .into_iter()
            .partition(|c| c.idle_since.elapsed() < MAX_IDLE);
        *idle = fresh;
        let taken = idle.pop();
        drop(idle);
        for connection in stale {
            let quit = quit(connection, self.timeout);
            tokio::spawn(quit.instrument(tracing::debug_span!("smtp_quit_stale")));
        }
        taken
    }

    fn put_back(&self, mut connection: Connection) {
        connection.idle_since = Instant::now();
        self.lock_idle().push(connection);
    }

    /// Opens a connection: TCP with TCP_NODELAY, TLS, greeting, EHLO,
    /// STARTTLS and AUTH as configured.
    #[tracing::instrument(skip_all, fields(relay = %self.label))]
    async fn connect(&self) -> Result<Connection, SendError> {
        let lost = |what: &str, e: &dyn fmt::Display| {
            SendError::NetworkBeforeData(format!("{what} {}:{}: {e}", self.host, self.port))
        };
        let tcp = match tokio::time::timeout(self.timeout, open_tcp(&self.host, self.port)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(lost("cannot connect to", &e)),
            Err(_) => return Err(lost("cannot connect to", &self.timed_out())),
        };
        let stream = if self.tls == SmtpTls::Implicit {
            Stream::Tls(Box::new(self.encrypt(tcp).await?))
        } else {
            Stream::Plain(tcp)
        };
        let mut session = Session::new(stream);
        let greeted = tokio::time::timeout(self.timeout, self.greet(&mut session)).await;
        self.setup_step("greeting and EHLO", &session, greeted)?;
        if self.tls != SmtpTls::Implicit && session.extensions.starttls {
            let asked = tokio::time::timeout(self.timeout, async {
                session.queue(&["STARTTLS"]);
                session.send_commands().await?;
                session.read_reply().await
            })
            .await;
            self.setup_step("STARTTLS", &session, asked)?;
            let tcp = session.into_plain().ok_or_else(|| {
                SendError::Relay("the relay sent more than its answer to STARTTLS".into())
            })?;
            session = Session::new(Stream::Tls(Box::new(self.encrypt(tcp).await?)));
            let greeted = tokio::time::timeout(self.timeout, self.ehlo(&mut session)).await;
            self.setup_step("EHLO after STARTTLS", &session, greeted)?;
        }
        if self.tls == SmtpTls::Required && !session.is_encrypted() {
            return Err(SendError::Local(format!(
                "{}:{} does not offer STARTTLS, and NECMAIL_SMTP_URL has tls=required: nothing was sent",
                self.host, self.port
            )));
        }
        // `new` refused credentials that could travel in clear to another
        // machine, and the check above enforces the encryption it relies on.
        if let Some(user) = &self.username {
            self.authenticate(&mut session, user).await?;
        }
        tracing::debug!(encrypted = session.is_encrypted(), "SMTP connection open");
        Ok(Connection {
            session,
            idle_since: Instant::now(),
        })
    }

    /// TLS over `tcp`, the relay's certificate checked against its name.
    async fn encrypt(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendError> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
            SendError::Local(format!("{} is not a name TLS can check: {e}", self.host))
        })?;
        let failed = |e: &dyn fmt::Display| {
            SendError::NetworkBeforeData(format!(
                "TLS failed with {}:{}: {e}",
                self.host, self.port
            ))
        };
        match tokio::time::timeout(self.timeout, self.tls_connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) if is_certificate_error(&e) => Err(SendError::Local(format!(
                "the certificate of {}:{} is not one necmail trusts, so nothing was sent: {e} \
                 (for a relay with a private CA, set NECMAIL_SMTP_CA_FILE)",
                self.host, self.port
            ))),
            Ok(Err(e)) => Err(failed(&e)),
            Err(_) => Err(failed(&self.timed_out())),
        }
    }

    /// EHLO, noting the extensions the relay offers; the reply's code.
    async fn ehlo(&self, session: &mut Session) -> io::Result<u16> {
        session.queue(&["EHLO ", &self.hello]);
        session.send_commands().await?;
        let code = session.read_reply().await?;
        if code == 250 {
            session.note_extensions();
        }
        Ok(code)
    }

    /// The greeting, then EHLO: the code of the first refusal, or EHLO's.
    async fn greet(&self, session: &mut Session) -> io::Result<u16> {
        let greeting = session.read_reply().await?;
        if greeting != 220 {
            return Ok(greeting.max(400));
        }
        self.ehlo(session).await
    }

    /// How one step of setting up a connection went, from the code of its
    /// last reply: a refusal is the relay's problem, not the recipient's.
    fn setup_step(
        &self,
        what: &str,
        session: &Session,
        outcome: Result<io::Result<u16>, tokio::time::error::Elapsed>,
    ) -> Result<(), SendError> {
        let failed = |e: &dyn fmt::Display| {
            SendError::NetworkBeforeData(format!(
                "{what} with {}:{} failed: {e}",
                self.host, self.port
            ))
        };
        match outcome {
            Ok(Ok(code)) if code < 400 => Ok(()),
            Ok(Ok(_)) => Err(SendError::Relay(format!(
                "the {what} was refused: {}",
                session.reply_text()
            ))),
            Ok(Err(e)) => Err(failed(&e)),
            Err(_) => Err(failed(&self.timed_out())),
        }
    }

    /// AUTH PLAIN, or LOGIN when the relay offers only that.
    async fn authenticate(&self, session: &mut Session, user: &str) -> Result<(), SendError> {
        let password = self.password.expose_secret();
        let offers = session.extensions;
        if !offers.auth_plain && !offers.auth_login {
            return Err(SendError::Local(format!(
                "cannot authenticate as {user:?} with AUTH PLAIN or LOGIN, the mechanisms necmail \
                 knows: the relay offers neither"
            )));
        }
        let exchange = async {
            if offers.auth_plain {
                let token = BASE64.encode(format!("\0{user}\0{password}"));
                session.queue(&["AUTH PLAIN ", &token]);
                session.send_commands().await?;
                return session.read_reply().await;
            }
            session.queue(&["AUTH LOGIN"]);
            for answer in [user, password] {
                session.send_commands().await?;
                let code = session.read_reply().await?;
                if code != 334 {
                    return Ok(code);
                }
                session.queue(&[&BASE64.encode(answer)]);
            }
            session.send_commands().await?;
            session.read_reply().await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(code)) if (200..300).contains(&code) => Ok(()),
            Ok(Ok(code)) if code >= 500 => Err(SendError::Local(format!(
                "the relay refused the credentials of {user:?}: {}",
                session.reply_text()
            ))),
            Ok(Ok(_)) => Err(SendError::Relay(format!(
                "it could not check the credentials of {user:?}: {}",
                session.reply_text()
            ))),
            Ok(Err(e)) => Err(SendError::NetworkBeforeData(format!("AUTH failed: {e}"))),
            Err(_) => Err(SendError::NetworkBeforeData(format!(
                "AUTH failed: {}",
                self.timed_out()
            ))),
        }
    }

    fn timed_out(&self) -> String {
        format!("no answer within {} s", self.timeout.as_secs_f32())
    }

    /// MAIL FROM, RCPT TO and DATA (in one write when the relay offers
    /// PIPELINING), then the message, on an open connection; the final
    /// reply's text.
    async fn transaction(
        &self,
        session: &mut Session,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
        eight_bit: bool,
    ) -> Result<String, (Step, Failure)> {
        let lost = |step: Step| {
            move |why: String| {
                let why = format!("{step}: {why}");
                (step, Failure::Lost { why, sent: false })
            }
        };
        let body = if eight_bit { " BODY=8BITMIME" } else { "" };
        let utf8 = if envelope.mail_from.is_ascii() {
            ""
        } else {
            " SMTPUTF8"
        };
        let mail = ["MAIL FROM:<", envelope.mail_from, ">", body, utf8];
        let rcpt = ["RCPT TO:<", envelope.rcpt_to.as_str(), ">"];
        let steps: [(Step, &[&str]); 3] = [
            (Step::Mail, &mail),
            (Step::Rcpt, &rcpt),
            (Step::Data, &["DATA"]),
        ];
        let pipelined = session.extensions.pipelining;
        if pipelined {
            for (_, command) in steps {
                session.queue(command);
            }
            self.step(session.send_commands())
                .await
                .map_err(lost(Step::Mail))?;
        }
        let mut refused: Option<(Step, Failure)> = None;
        for (step, command) in steps {
            if !pipelined {
                if refused.is_some() {
                    break;
                }
                session.queue(command);
                self.step(session.send_commands())
                    .await
                    .map_err(lost(step))?;
            }
            let code = self.step(session.read_reply()).await.map_err(lost(step))?;
            if refused.is_none() {
                refused = refusal(session, code).map(|failure| (step, failure));
                if let Some((_, Failure::Refused { closing: true, .. })) = refused {
                    break;
                }
            } else if code == 354 {
                // A relay that took DATA after refusing the transaction: an
                // empty message ends it.
                session.queue(&["."]);
                self.step(session.send_commands())
                    .await
                    .map_err(lost(step))?;
                self.step(session.read_reply()).await.map_err(lost(step))?;
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        self.step(session.send_data(message))
            .await
            .map_err(lost(Step::Message))?;
        let code = self.step(session.read_reply()).await.map_err(|why| {
            let why = format!("{}: {why}", Step::Message);
            (Step::Message, Failure::Lost { why, sent: true })
        })?;
        match refusal(session, code) {
            Some(failure) => Err((Step::Message, failure)),
            None => Ok(session.reply_text()),
        }
    }

    /// One network step, within the timeout; why it failed.
    async fn step<T>(&self, future: impl Future<Output = io::Result<T>>) -> Result<T, String> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Resets the transaction after a refusal, keeping the connection when
    /// the server allows.
    async fn reset_and_keep(&self, mut connection: Connection) {
        let session = &mut connection.session;
        let reset = async {
            session.queue(&["RSET"]);
            session.send_commands().await?;
            session.read_reply().await
        };
        match tokio::time::timeout(self.timeout, reset).await {
            Ok(Ok(250)) => self.put_back(connection),
            _ => tracing::debug!("RSET failed: the connection is dropped"),
        }
    }
}

/// QUIT, and the socket closed.
async fn quit(mut connection: Connection, timeout: Duration) {
    let session = &mut connection.session;
    let said = async {
        session.queue(&["QUIT"]);
        session.send_commands().await?;
        session.read_reply().await
    };
    let _ = tokio::time::timeout(timeout, said).await;
    let _ = tokio::time::timeout(timeout, session.shutdown()).await;
}

/// Refuses, before MAIL FROM, what the envelope or this server cannot
/// carry; `eight_bit` says whether the message has 8-bit content.
fn check_envelope(
    offers: Extensions,
    eight_bit: bool,
    envelope: &Envelope<'_>,
) -> Result<(), SendError> {
    let from = envelope.mail_from;
    if from.contains(|c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        || !(from.is_empty() || from.contains('@'))
    {
        return Err(SendError::Local(format!(
            "the return path {from:?} is not an address SMTP can carry"
        )));
    }
    if eight_bit && !offers.eight_bit_mime {
        return Err(SendError::Local(
            "the message has 8-bit content and the relay does not offer 8BITMIME".into(),
        ));
    }
    if !from.is_ascii() && !offers.smtp_utf8 {
        return Err(SendError::Local(format!(
            "the return path {from:?} needs SMTPUTF8, which the relay does not offer"
        )));
    }
    Ok(())
}

#[async_trait]
impl Transport for SmtpRelay {
    #[tracing::instrument(skip_all, fields(id = envelope.id, relay = %self.label))]
    async fn send(
        &self,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
    ) -> Result<Accepted, SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Local("the SMTP connection pool is closed".into()))?;
        // One scan of the message, for both the check and MAIL FROM.
        let eight_bit = !message.is_ascii();
        let mut pooled = self.take_idle();
        loop {
            let reused = pooled.is_some();
            let mut connection = match pooled.take() {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            if let Err(e) = check_envelope(connection.session.extensions, eight_bit, envelope) {
                self.put_back(connection);
                return Err(e);
            }
            let outcome = self
                .transaction(&mut connection.session, envelope, message, eight_bit)
                .await;
            match outcome {
                Ok(reply) => {
                    self.put_back(connection);
                    return Ok(Accepted { reply });
                }
                Err((
                    Step::Mail,
                    Failure::Lost { .. } | Failure::Refused { closing: true, .. },
                )) if reused => {
                    tracing::debug!(
                        "a pooled connection was closed by the relay: opening a fresh one"
                    );
                }
                Err((
                    step,
                    Failure::Refused {
                        reply,
                        permanent,
                        closing,
                    },
                )) => {
                    tracing::debug!(%step, %reply, "refused");
                    if closing {
                        drop(connection);
                    } else if step == Step::Message {
                        self.put_back(connection);
                    } else {
                        self.reset_and_keep(connection).await;
                    }
                    return Err(match (step, permanent) {
                        (Step::Mail, _) => SendError::Relay(reply),
                        (_, true) => SendError::Permanent(reply),
                        (_, false) => SendError::Transient(reply),
                    });
                }
                Err((step, Failure::Lost { why, sent })) => {
                    tracing::debug!(%step, %why, "connection lost");
                    if sent {
                        return Err(SendError::Ambiguous(format!(
                            "the connection was lost after the message was sent, before the reply: {why}"
                        )));
                    }
                    return Err(SendError::NetworkBeforeData(why));
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    async fn close(&self) {
        SmtpRelay::close(self).await;
    }
}

impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("relay", &self.label)
            .field("username", &self.username)
            .field("connections", &self.connections)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A TLS client that trusts the public roots and those in `ca_file`
/// (`NECMAIL_SMTP_CA_FILE`): for the relay, and for the bounce mailbox.
pub fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, SendError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Local(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(trusted_roots(ca_file)?)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls_config)))
}

/// The roots a relay's certificate may chain to: the public ones, and those
/// in `ca_file` (`NECMAIL_SMTP_CA_FILE`).
fn trusted_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, SendError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let Some(file) = ca_file else {
        return Ok(roots);
    };
    let bad = |why: &dyn fmt::Display| {
        SendError::Local(format!("NECMAIL_SMTP_CA_FILE {}: {why}", file.display()))
    };
    let pem = std::fs::read(file).map_err(|e| bad(&e))?;
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(certificate.map_err(|e| bad(&e))?)
            .map_err(|e| bad(&e))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad(&"it holds no PEM certificate"));
    }
    Ok(roots)
}

/// Whether a TLS handshake failed on the server's certificate: a setting
/// (or an impostor) to look into, not a network error to retry blindly.
pub fn is_certificate_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

/// A TCP connection with Nagle's algorithm off: otherwise the end of every
/// message waits for the server's delayed ACK (about 40 ms on Linux).
async fn open_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(url: &str) -> Result<SmtpRelay, SendError> {
        let url = url.to_owned();
        let config =
            Config::from_lookup(|name| (name == "NECMAIL_SMTP_URL").then(|| url.clone())).unwrap();
        SmtpRelay::new(&config)
    }

    #[test]
    fn the_description_names_the_relay_and_its_security_but_no_credentials() {
        let described = |url: &str| relay(url).unwrap().describe();
        assert_eq!(
            described("smtp://u:hunter2@127.0.0.1:2525"),
            "smtp://127.0.0.1:2525 (STARTTLS if offered)"
        );
        assert_eq!(
            described("smtp://u:hunter2@relay.example?tls=required"),
            "smtp://relay.example:25 (STARTTLS)"
        );
        assert_eq!(
            described("smtps://u:hunter2@relay.example"),
            "smtps://relay.example:465 (TLS)"
        );
        let debug = format!(
            "{:?}",
            relay("smtps://mailer:hunter2@relay.example").unwrap()
        );
        assert!(
            debug.contains("mailer") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn a_password_may_travel_unencrypted_only_to_this_machine() {
        for url in ["smtp://u:hunter2@relay.example", "smtp://u@10.0.0.1:25"] {
            let err = relay(url).unwrap_err();
            assert!(
                matches!(err, SendError::Local(ref m) if m.contains("smtps://")),
                "{url}: {err:?}"
            );
            assert!(!err.to_string().contains("hunter2"));
        }
        for url in [
            "smtp://u:p@localhost:2525",
            "smtp://u:p@[::1]:2525",
            "smtp://u:p@relay.example?tls=required",
            "smtps://u:p@relay.example",
            "smtp://relay.example",
        ] {
            assert!(relay(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_helo_name_with_a_space_is_refused() {
        let config = Config::from_lookup(|name| match name {
            "NECMAIL_SMTP_URL" => Some("smtp://127.0.0.1".into()),
            "NECMAIL_HELO_NAME" => Some("mail host".into()),
            _ => None,
        })
        .unwrap();
        let refused = SmtpRelay::new(&config);
        assert!(matches!(refused, Err(SendError::Local(m)) if m.contains("NECMAIL_HELO_NAME")));
    }

    #[test]
    fn eight_bit_content_is_refused_before_mail_from_only_by_a_relay_without_8bitmime() {
        let jo = crate::subscribers::SubscriberEmail::parse("jo@example.org").unwrap();
        let envelope = Envelope {
            id: "d1",
            mail_from: "bounce+d1@example.org",
            rcpt_to: &jo,
        };
        let with_8bitmime = Extensions {
            eight_bit_mime: true,
            ..Extensions::default()
        };
        assert!(check_envelope(Extensions::default(), true, &envelope).is_err());
        assert!(check_envelope(Extensions::default(), false, &envelope).is_ok());
        assert!(check_envelope(with_8bitmime, true, &envelope).is_ok());
    }

    #[test]
    fn a_return_path_smtp_cannot_carry_is_refused_before_mail_from() {
        let jo = crate::subscribers::SubscriberEmail::parse("jo@example.org").unwrap();
        for (from, ok) in [
            ("bounce+x@example.org", true),
            ("", true),
            ("a b@example.org", false),
            ("x@example.org>\r\nRCPT TO:<y@example.org", false),
            ("no-at-sign", false),
        ] {
            let envelope = Envelope {
                id: "d1",
                mail_from: from,
                rcpt_to: &jo,
            };
            assert_eq!(
                check_envelope(Extensions::default(), false, &envelope).is_ok(),
                ok,
                "{from}"
            );
        }
    }
}
