//! The SMTP relay transport: a pool of our own TCP_NODELAY connections to
//! the relay in `NECMAIL_SMTP_URL`, one recipient per transaction.
//!
//! lettre speaks the protocol ([`AsyncSmtpConnection`]); this module owns the
//! sockets, the pool, the timeouts and the classification of outcomes:
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
//! refused, STARTTLS required but not offered) are [`SendError::Local`].
//! The password never appears in an error, a log line or `Debug` output.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::Address;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tracing::Instrument as _;

use super::{Accepted, Envelope, Outgoing, SendError, Transport};
use secrecy::ExposeSecret;

use crate::config::{Config, SmtpTls, SmtpUrl};
use crate::subscribers::SubscriberEmail;

/// A pooled connection idle for longer than this is closed rather than
/// reused: relays drop idle clients after a while (Postfix: 300 s).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// The AUTH mechanisms necmail offers, in order of preference.
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// An SMTP relay with a pool of connections. Build it with
/// [`SmtpRelay::new`]; call [`SmtpRelay::close`] on shutdown.
pub struct SmtpRelay {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    username: Option<String>,
    hello: ClientId,
    timeout: Duration,
    connections: usize,
    /// One permit per connection that may be open: a send holds one while
    /// it uses a connection, and idle connections are only ever taken by a
    /// permit holder, so no more than `connections` are ever open.
    slots: Semaphore,
    idle: Mutex<Vec<Connection>>,
    starttls: TlsParameters,
    implicit_tls: TlsConnector,
    label: String,
}

/// One open, greeted (and if configured, encrypted and authenticated)
/// connection.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// Set by the socket when a read is attempted; see [`Wire`].
    reading: Arc<AtomicBool>,
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
    /// The connection failed or timed out: it is unusable.
    Lost(String),
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
        let starttls = TlsParameters::new(host.clone())
            .map_err(|e| SendError::Local(format!("cannot set up TLS for {host}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SendError::Local(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let credentials = match (&url.username, &url.password) {
            (Some(user), password) => Some(Credentials::new(
                user.clone(),
                password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned())
                    .unwrap_or_default(),
            )),
            (None, _) => None,
        };
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
            credentials,
            username: url.username.clone(),
            hello: ClientId::Domain(config.helo_name.clone()),
            timeout: config.smtp_timeout,
            connections: config.smtp_connections,
            slots: Semaphore::new(config.smtp_connections),
            idle: Mutex::new(Vec::new()),
            starttls,
            implicit_tls: TlsConnector::from(Arc::new(tls_config)),
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
        futures_util::future::join_all(idle.into_iter().map(|c| self.quit(c))).await;
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
        let stale: Vec<Connection> = {
            let (fresh, stale) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|c| c.idle_since.elapsed() < MAX_IDLE);
            *idle = fresh;
            stale
        };
        let taken = idle.pop();
        drop(idle);
        for connection in stale {
            let timeout = self.timeout;
            let quit = async move {
                let mut smtp = connection.smtp;
                let _ = tokio::time::timeout(timeout, smtp.quit()).await;
            };
            tokio::spawn(quit.instrument(tracing::debug_span!("smtp_quit_stale")));
        }
        taken
    }

    fn put_back(&self, mut connection: Connection) {
        connection.idle_since = Instant::now();
        self.lock_idle().push(connection);
    }

    async fn quit(&self, mut connection: Connection) {
        let _ = tokio::time::timeout(self.timeout, connection.smtp.quit()).await;
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
        let peer = tcp
            .peer_addr()
            .map_err(|e| lost("lost the connection to", &e))?;
        let reading = Arc::new(AtomicBool::new(false));
        let stream: Box<dyn AsyncTokioStream> = if self.tls == SmtpTls::Implicit {
            let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                SendError::Local(format!("{} is not a name TLS can check: {e}", self.host))
            })?;
            let tls = match tokio::time::timeout(self.timeout, self.implicit_tls.connect(name, tcp))
                .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return Err(lost("TLS failed with", &e)),
                Err(_) => return Err(lost("TLS failed with", &self.timed_out())),
            };
            Box::new(Wire {
                inner: tls,
                peer,
                reading: Arc::clone(&reading),
            })
        } else {
            Box::new(Wire {
                inner: tcp,
                peer,
                reading: Arc::clone(&reading),
            })
        };
        let greeted = AsyncSmtpConnection::connect_with_transport(stream, &self.hello);
        let mut smtp = self.setup_step("greeting and EHLO", greeted).await?;
        if self.tls != SmtpTls::Implicit && smtp.can_starttls() {
            let upgrade = smtp.starttls(self.starttls.clone(), &self.hello);
            self.setup_step("STARTTLS", upgrade).await?;
        }
        if self.tls == SmtpTls::Required && !smtp.is_encrypted() {
            return Err(SendError::Local(format!(
                "{}:{} does not offer STARTTLS, and NECMAIL_SMTP_URL has tls=required: nothing was sent",
                self.host, self.port
            )));
        }
        // `new` refused credentials that could travel in clear to another
        // machine, and the check above enforces the encryption it relies on.
        if let Some(credentials) = &self.credentials {
            self.authenticate(&mut smtp, credentials).await?;
        }
        tracing::debug!(encrypted = smtp.is_encrypted(), "SMTP connection open");
        Ok(Connection {
            smtp,
            reading,
            idle_since: Instant::now(),
        })
    }

    /// One step of setting up a connection: a refusal is the relay's
    /// problem, not the recipient's.
    async fn setup_step<T>(
        &self,
        what: &str,
        step: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, SendError> {
        match tokio::time::timeout(self.timeout, step).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => match reply_text(&e) {
                Some(reply) => Err(SendError::Relay(format!("the {what} was refused: {reply}"))),
                None => Err(SendError::NetworkBeforeData(format!(
                    "{what} with {}:{} failed: {e}",
                    self.host, self.port
                ))),
            },
            Err(_) => Err(SendError::NetworkBeforeData(format!(
                "{what} with {}:{} failed: {}",
                self.host,
                self.port,
                self.timed_out()
            ))),
        }
    }

    async fn authenticate(
        &self,
        smtp: &mut AsyncSmtpConnection,
        credentials: &Credentials,
    ) -> Result<(), SendError> {
        let user = self.username.as_deref().unwrap_or_default();
        match tokio::time::timeout(self.timeout, smtp.auth(MECHANISMS, credentials)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Local(format!(
                "the relay refused the credentials of {user:?}: {}",
                reply_text(&e).unwrap_or_default()
            ))),
            Ok(Err(e)) if e.is_transient() => Err(SendError::Relay(format!(
                "it could not check the credentials of {user:?}: {}",
                reply_text(&e).unwrap_or_default()
            ))),
            Ok(Err(e)) if e.is_client() => Err(SendError::Local(format!(
                "cannot authenticate as {user:?} with AUTH PLAIN or LOGIN, the mechanisms necmail knows: {e}"
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

    /// MAIL FROM, RCPT TO, DATA and the message on an open connection.
    async fn transaction(
        &self,
        connection: &mut Connection,
        mail: Mail,
        rcpt: Rcpt,
        data: Outgoing<'_>,
    ) -> Result<Response, (Step, Failure)> {
        let smtp = &mut connection.smtp;
        self.step(Step::Mail, smtp.command(mail)).await?;
        self.step(Step::Rcpt, smtp.command(rcpt)).await?;
        self.step(Step::Data, smtp.command(Data)).await?;
        connection.reading.store(false, Ordering::SeqCst);
        self.step(Step::Message, smtp.message_iter(data.parts()))
            .await
    }

    async fn step(
        &self,
        step: Step,
        future: impl Future<Output = Result<Response, SmtpError>>,
    ) -> Result<Response, (Step, Failure)> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => match (reply_text(&e), e.status()) {
                (Some(reply), Some(code)) => Err((
                    step,
                    Failure::Refused {
                        reply,
                        permanent: e.is_permanent(),
                        closing: code.to_string() == "421",
                    },
                )),
                _ => Err((step, Failure::Lost(format!("{step}: {e}")))),
            },
            Err(_) => Err((step, Failure::Lost(format!("{step}: {}", self.timed_out())))),
        }
    }

    /// Resets the transaction after a refusal, keeping the connection when
    /// the server allows.
    async fn reset_and_keep(&self, mut connection: Connection) {
        match tokio::time::timeout(self.timeout, connection.smtp.command(Rset)).await {
            Ok(Ok(_)) => self.put_back(connection),
            _ => tracing::debug!("RSET failed: the connection is dropped"),
        }
    }
}

/// The RCPT TO address of `email`, without parsing it again: a
/// [`SubscriberEmail`] is a dot-atom ASCII local part and an A-label domain,
/// which SMTP carries as it is.
fn recipient(email: &SubscriberEmail) -> Address {
    Address::new_dangerous(email.local_part(), email.domain())
}

/// The MAIL FROM and RCPT TO commands for `envelope`.
fn envelope_commands(
    envelope: &Envelope<'_>,
    message: Outgoing<'_>,
) -> Result<(Mail, Rcpt), SendError> {
    let from = match envelope.mail_from {
        "" => None,
        from => Some(Address::from_str(from).map_err(|e| {
            SendError::Local(format!(
                "the return path {from:?} is not an address SMTP can carry: {e}"
            ))
        })?),
    };
    let to = recipient(envelope.rcpt_to);
    let mut parameters = Vec::new();
    if !message.is_ascii() {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if !envelope.mail_from.is_ascii() {
        parameters.push(MailParameter::SmtpUtfEight);
    }
    Ok((Mail::new(from, parameters), Rcpt::new(to, Vec::new())))
}

/// Refuses, before MAIL FROM, what this server cannot carry.
fn check_extensions(
    smtp: &AsyncSmtpConnection,
    message: Outgoing<'_>,
    envelope: &Envelope<'_>,
) -> Result<(), SendError> {
    let info = smtp.server_info();
    if !message.is_ascii() && !info.supports_feature(Extension::EightBitMime) {
        return Err(SendError::Local(
            "the message has 8-bit content and the relay does not offer 8BITMIME".into(),
        ));
    }
    if !envelope.mail_from.is_ascii() && !info.supports_feature(Extension::SmtpUtfEight) {
        return Err(SendError::Local(format!(
            "the return path {:?} needs SMTPUTF8, which the relay does not offer",
            envelope.mail_from
        )));
    }
    Ok(())
}

/// The reply of a 4xx or 5xx error as the server sent it, e.g.
/// `550 5.1.1 <x@y>: no such user`; `None` for any other error.
fn reply_text(error: &SmtpError) -> Option<String> {
    let code = error.status()?;
    let text = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default();
    Some(format!("{code} {text}").trim_end().to_owned())
}

/// A positive reply as the server sent it, e.g. `250 2.0.0 Ok: queued as X`.
fn response_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim_end()
        .to_owned()
}

/// The data to hand to lettre, which ends it with CRLF.CRLF itself: a
/// final CRLF of the message is that CRLF, so the server receives exactly
/// `message`. lettre dot-stuffs the parts in turn, as one stream.
fn without_final_crlf(message: Outgoing<'_>) -> Outgoing<'_> {
    Outgoing {
        head: message.head,
        message: message
            .message
            .strip_suffix(b"\r\n")
            .unwrap_or(message.message),
    }
}

#[async_trait]
impl Transport for SmtpRelay {
    #[tracing::instrument(skip_all, fields(id = envelope.id, relay = %self.label))]
    async fn send(
        &self,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
    ) -> Result<Accepted, SendError> {
        let (mail, rcpt) = envelope_commands(envelope, message)?;
        let data = without_final_crlf(message);
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Local("the SMTP connection pool is closed".into()))?;
        let mut pooled = self.take_idle();
        loop {
            let reused = pooled.is_some();
            let mut connection = match pooled.take() {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            if let Err(e) = check_extensions(&connection.smtp, message, envelope) {
                self.put_back(connection);
                return Err(e);
            }
            let outcome = self
                .transaction(&mut connection, mail.clone(), rcpt.clone(), data)
                .await;
            match outcome {
                Ok(response) => {
                    self.put_back(connection);
                    return Ok(Accepted {
                        reply: response_text(&response),
                    });
                }
                Err((Step::Mail, Failure::Lost(_) | Failure::Refused { closing: true, .. }))
                    if reused =>
                {
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
                Err((step, Failure::Lost(why))) => {
                    tracing::debug!(%step, %why, "connection lost");
                    if step == Step::Message && connection.reading.load(Ordering::SeqCst) {
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

/// The socket under lettre: it notes when a read is attempted, so that a
/// connection lost during [`AsyncSmtpConnection::message`] can be told
/// apart: lettre writes and flushes the whole message and the final dot
/// before it reads the reply, so a read means the message was handed over.
#[derive(Debug)]
struct Wire<S> {
    inner: S,
    peer: SocketAddr,
    reading: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.reading.store(true, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> AsyncTokioStream for Wire<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + fmt::Debug,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
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
    fn the_final_crlf_of_a_message_is_the_one_that_precedes_the_final_dot() {
        let data = |message: &'static [u8]| without_final_crlf(message.into()).message;
        assert_eq!(data(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(data(b"a\r\nb"), b"a\r\nb");
        assert_eq!(data(b"a\r\n\r\n"), b"a\r\n");
        let signed = Outgoing {
            head: b"DKIM-Signature: x\r\n",
            message: b"a\r\n",
        };
        assert_eq!(without_final_crlf(signed).head, signed.head);
    }

    #[test]
    fn the_recipient_is_the_address_lettre_would_parse() {
        for address in [
            "jo@example.org",
            "Jo.Bloggs@Example.ORG",
            "!#$%&'*+-/=?^_`{|}~@example.org",
            "user@xn--mnchen-3ya.de",
            "jo@münchen.de",
            &format!("{}@example.org", "a".repeat(64)),
        ] {
            let email = SubscriberEmail::parse(address).unwrap();
            assert_eq!(
                recipient(&email),
                Address::from_str(email.as_str()).unwrap(),
                "{address}"
            );
        }
    }
}
