//! The bounce mailbox (`NECMAIL_BOUNCE_MAILBOX`): for relays that return
//! bounces to a mailbox rather than to necmail. `serve` polls it over IMAP
//! on `NECMAIL_BOUNCE_POLL_SCHEDULE`, and `necmail bounces poll` once.
//!
//! Each unseen message is handed to the [`Handler`] as mail to `bounces@`,
//! or to the address of ours that its `Delivered-To` or `X-Original-To`
//! names (a `bounce+TOKEN@` address, say). A message is never handled twice:
//! it is flagged `\Seen` before it is handled, and only unseen messages are
//! taken, so a poll cut off half-way leaves the message it was handling seen,
//! for a person to look at, rather than handle it again. A handled message is
//! then flagged `\Deleted` and expunged; one the handler cannot read (or too
//! large) stays seen in the mailbox and is not tried again. When the
//! database is down the message is flagged unseen again and the poll stops:
//! the next one takes it.
//!
//! Every step (connecting, TLS, the greeting, LOGIN and each command) has
//! `NECMAIL_INBOUND_TIMEOUT_SECS`; a poll takes at most
//! `NECMAIL_BOUNCE_POLL_MAX` messages, the oldest first, and at most
//! `NECMAIL_INBOUND_MAX_BYTES` of each. The password
//! shows in no error and no log line.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_imap::Client;
use async_imap::types::Fetch;
use futures_util::TryStreamExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{Handler, InboundError, Incoming, Recipient};
use crate::config::{BounceMailbox, Config};
use crate::delivery::smtp::{is_certificate_error, tls_connector};
use crate::error::StoreError;
use crate::scheduler::ScheduledJob;

/// The name the bounce mailbox's ticks are claimed under.
pub const MAILBOX_TICK: &str = "bounce-mailbox";

/// Why a poll of the bounce mailbox failed.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// NECMAIL_BOUNCE_MAILBOX is unset.
    #[error("NECMAIL_BOUNCE_MAILBOX is not set: there is no bounce mailbox to poll")]
    NotConfigured,
    /// A setting to fix: the TLS roots, a host name, refused credentials.
    #[error("the bounce mailbox {mailbox}: {why}")]
    Setting { mailbox: String, why: String },
    /// The server could not be reached, failed or was too slow: the next
    /// poll tries again.
    #[error("the bounce mailbox {mailbox}: {why}")]
    Network { mailbox: String, why: String },
    /// The database is down: the message is left unseen for the next poll.
    #[error("the bounce mailbox could not be handled: {0}")]
    Unavailable(#[from] StoreError),
}

impl MailboxError {
    /// True for a setting to fix rather than a failure to retry.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            MailboxError::NotConfigured | MailboxError::Setting { .. }
        )
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Polled {
    /// Messages handled, then deleted.
    pub handled: usize,
    /// Messages the handler could not read (or too large): left seen.
    pub rejected: usize,
    /// Unseen messages beyond `NECMAIL_BOUNCE_POLL_MAX`, left for the next poll.
    pub waiting: usize,
}

/// The bounce mailbox and the handler its messages go to.
pub struct Mailbox {
    handler: Handler,
    mailbox: BounceMailbox,
    /// `Some` for `imaps://`.
    tls: Option<TlsConnector>,
    timeout: Duration,
    max_bytes: usize,
    /// Messages one poll takes at most: `NECMAIL_BOUNCE_POLL_MAX`.
    max_per_poll: usize,
}

impl Mailbox {
    /// The mailbox NECMAIL_BOUNCE_MAILBOX names, whose messages go to
    /// `handler` (made with [`crate::feedback::EventSource::Mailbox`]).
    pub fn new(handler: Handler, config: &Config) -> Result<Self, MailboxError> {
        let mailbox = config
            .bounce_mailbox
            .clone()
            .ok_or(MailboxError::NotConfigured)?;
        let tls = if mailbox.tls {
            let connector = tls_connector(config.smtp_ca_file.as_deref()).map_err(|e| {
                MailboxError::Setting {
                    mailbox: mailbox.to_string(),
                    why: e.to_string(),
                }
            })?;
            Some(connector)
        } else {
            None
        };
        Ok(Mailbox {
            handler,
            mailbox,
            tls,
            timeout: config.inbound_timeout,
            max_bytes: config.inbound_max_bytes,
            max_per_poll: config.bounce_poll_max,
        })
    }

    /// Where the mailbox is, without the password.
    pub fn describe(&self) -> String {
        self.mailbox.to_string()
    }

    /// Takes the unseen messages, at most `NECMAIL_BOUNCE_POLL_MAX` of them,
    /// the oldest first, and handles each.
    #[tracing::instrument(name = "bounce_mailbox", skip_all, fields(mailbox = %self.mailbox))]
    pub async fn poll(&self) -> Result<Polled, MailboxError> {
        let host = self
            .mailbox
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        let tcp = self
            .timed("connecting", TcpStream::connect((host, self.mailbox.port)))
            .await?;
        let polled = match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| self.setting(format!("{host:?} is not a host name: {e}")))?;
                let stream = match self
                    .timed_raw("the TLS handshake", tls.connect(name, tcp))
                    .await?
                {
                    Ok(stream) => stream,
                    Err(e) if is_certificate_error(&e) => {
                        return Err(self.setting(format!(
                            "its certificate cannot be trusted ({e}); a private CA's \
                             certificate goes in NECMAIL_SMTP_CA_FILE"
                        )));
                    }
                    Err(e) => return Err(self.network(format!("the TLS handshake failed: {e}"))),
                };
                self.session(stream).await?
            }
            None => self.session(tcp).await?,
        };
        tracing::info!(
            handled = polled.handled,
            rejected = polled.rejected,
            waiting = polled.waiting,
            "polled the bounce mailbox"
        );
        Ok(polled)
    }

    async fn session<S>(&self, stream: S) -> Result<Polled, MailboxError>
    where
        S: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
    {
        let mut client = Client::new(stream);
        self.timed("the greeting", client.read_response())
            .await?
            .ok_or_else(|| self.network("the server closed the connection at once"))?;
        let mut session = match self
            .timed_raw(
                "LOGIN",
                client.login(
                    &self.mailbox.username,
                    self.mailbox.password.expose_secret(),
                ),
            )
            .await?
        {
            Ok(session) => session,
            Err((e, _)) => return Err(self.setting(format!("LOGIN was refused: {e}"))),
        };
        self.timed("SELECT", session.select(&self.mailbox.mailbox))
            .await?;
        let mut unseen: Vec<u32> = self
            .timed("SEARCH", session.uid_search("UNSEEN UNDELETED"))
            .await?
            .into_iter()
            .collect();
        unseen.sort_unstable();
        let mut polled = Polled {
            waiting: unseen.len().saturating_sub(self.max_per_poll),
            ..Polled::default()
        };
        unseen.truncate(self.max_per_poll);
        for uid in unseen {
            let partial = format!("(UID BODY.PEEK[]<0.{}>)", self.max_bytes + 1);
            let fetched = self
                .timed("FETCH", async {
                    let fetches = session.uid_fetch(uid.to_string(), &partial).await?;
                    fetches.try_collect::<Vec<Fetch>>().await
                })
                .await?;
            let Some(raw) = fetched
                .iter()
                .filter(|f| f.uid == Some(uid))
                .find_map(Fetch::body)
            else {
                tracing::info!(uid, "a message vanished before it was fetched");
                continue;
            };
            self.flag(&mut session, uid, "+FLAGS.SILENT (\\Seen)")
                .await?;
            match self.handle(raw).await {
                Ok(()) => {
                    self.flag(&mut session, uid, "+FLAGS.SILENT (\\Deleted)")
                        .await?;
                    polled.handled += 1;
                }
                Err(InboundError::Unavailable(e)) => {
                    self.flag(&mut session, uid, "-FLAGS.SILENT (\\Seen)")
                        .await?;
                    let _ = self.timed("LOGOUT", session.logout()).await;
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::warn!(
                        uid,
                        error = %e,
                        "a message in the bounce mailbox cannot be handled: left there, seen"
                    );
                    polled.rejected += 1;
                }
            }
        }
        if polled.handled > 0 {
            self.timed("EXPUNGE", async {
                let expunged = session.expunge().await?;
                expunged.try_collect::<Vec<_>>().await
            })
            .await?;
        }
        self.timed("LOGOUT", session.logout()).await?;
        Ok(polled)
    }

    /// Handles one message, as mail to the address of ours its
    /// Delivered-To or X-Original-To names, or to `bounces@`.
    async fn handle(&self, raw: &[u8]) -> Result<(), InboundError> {
        if raw.len() > self.max_bytes {
            return Err(InboundError::TooBig(self.max_bytes));
        }
        let incoming = Incoming::parse(raw, None)?;
        let mut to = Recipient::Bounces;
        for address in incoming.delivered_to() {
            match self.handler.recipient(address).await {
                Ok(ours) => {
                    to = ours;
                    break;
                }
                Err(InboundError::UnknownAddress(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.handler.deliver(&incoming, &to).await
    }

    async fn flag<S>(
        &self,
        session: &mut async_imap::Session<S>,
        uid: u32,
        change: &str,
    ) -> Result<(), MailboxError>
    where
        S: AsyncRead + AsyncWrite + Unpin + fmt::Debug + Send,
    {
        self.timed("STORE", async {
            let stored = session.uid_store(uid.to_string(), change).await?;
            stored.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(())
    }

    /// `step`, within the timeout; its error as a network error.
    async fn timed<T, E: fmt::Display>(
        &self,
        step: &str,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, MailboxError> {
        self.timed_raw(step, future)
            .await?
            .map_err(|e| self.network(format!("{step} failed: {e}")))
    }

    /// `step`, within the timeout.
    async fn timed_raw<T>(
        &self,
        step: &str,
        future: impl Future<Output = T>,
    ) -> Result<T, MailboxError> {
        tokio::time::timeout(self.timeout, future)
            .await
            .map_err(|_| self.network(format!("{step} took longer than {:?}", self.timeout)))
    }

    fn network(&self, why: impl Into<String>) -> MailboxError {
        MailboxError::Network {
            mailbox: self.mailbox.to_string(),
            why: self.scrub(why.into()),
        }
    }

    fn setting(&self, why: impl Into<String>) -> MailboxError {
        MailboxError::Setting {
            mailbox: self.mailbox.to_string(),
            why: self.scrub(why.into()),
        }
    }

    /// `why` without the password, should a server have echoed it.
    fn scrub(&self, why: String) -> String {
        why.replace(self.mailbox.password.expose_secret(), "REDACTED")
    }
}

/// `serve`'s scheduler polls the mailbox at each tick, and logs a failure.
impl ScheduledJob for Mailbox {
    fn run(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Err(e) = self.poll().await {
                tracing::error!(error = %e, "the bounce mailbox poll failed; it runs again at the next tick");
            }
        })
    }
}
