//! Delivery: building each recipient's message and handing it to a
//! transport — an SMTP relay, or the outbox folder by default.

pub mod dkim;
pub mod engine;
pub mod message;
pub mod notice;
pub mod one_off;
mod outbox;
mod session;
mod signing;
pub mod smtp;
pub mod supervisor;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::render::{TemplateError, Templates};
use crate::store::Store;
use crate::subscribers::SubscriberEmail;
pub use message::{Addressing, ListRef};
pub use outbox::Outbox;
pub use signing::Signing;
pub use smtp::SmtpRelay;

/// The SMTP envelope of one message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// A name for the message that is unique and safe as a file name: the
    /// outbox names its file after it.
    pub id: &'a str,
    /// The return path (VERP for campaign mail).
    pub mail_from: &'a str,
    pub rcpt_to: &'a SubscriberEmail,
}

/// A message's bytes as a transport sends them: `head`, header fields the
/// transport layer puts in front (the DKIM signatures), then `message`, as
/// it was built. Kept apart so that signing never copies the message.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub head: &'a [u8],
    pub message: &'a [u8],
}

impl<'a> From<&'a [u8]> for Outgoing<'a> {
    fn from(message: &'a [u8]) -> Self {
        Outgoing { head: b"", message }
    }
}

impl Outgoing<'_> {
    /// The parts in the order they are sent, the empty ones left out.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        [self.head, self.message]
            .into_iter()
            .filter(|part| !part.is_empty())
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.message.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_ascii(&self) -> bool {
        self.head.is_ascii() && self.message.is_ascii()
    }
}

/// A message the transport took responsibility for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The server's reply, or where the outbox put the file.
    pub reply: String,
}

/// Why a message was not accepted. `Transient` and `Permanent` are about
/// this recipient or this message; the others are about the relay or this
/// machine, and say nothing of the recipient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A 4xx reply to the recipient or the message: try again later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// A 5xx reply to the recipient or the message: do not try again.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The relay refused to take mail at all: its greeting, EHLO, STARTTLS,
    /// a passing AUTH failure, or MAIL FROM. Nothing was sent; try again.
    #[error("the relay refused: {0}")]
    Relay(String),
    /// The connection failed before the message was handed over: try again.
    #[error("network error before the message was sent: {0}")]
    NetworkBeforeData(String),
    /// The connection failed after the message data was sent but before the
    /// reply: the message may or may not have arrived.
    #[error("connection lost after the message was sent, so it may have arrived: {0}")]
    Ambiguous(String),
    /// Something on this machine failed (a full disk, a bad configuration).
    #[error("{0}")]
    Local(String),
    /// The message cannot be signed with DKIM (it has no From): it is not
    /// sent, and would not be signed on another attempt either.
    #[error("DKIM signing failed: {0}")]
    Unsignable(String),
}

/// The transport the configuration names: the outbox folder unless an
/// SMTP relay is configured, behind DKIM signing when keys are configured.
/// Every kind of mail (campaigns, confirmations, notices, `send-test`) is
/// sent through the transport made here, so none can go out unsigned.
pub fn transport(config: &Config) -> Result<Arc<dyn Transport>, SetupError> {
    let carrier: Arc<dyn Transport> = match config.smtp {
        Some(_) => Arc::new(SmtpRelay::new(config).map_err(SetupError::Transport)?),
        None => Arc::new(Outbox::new(&config.outbox_dir).map_err(SetupError::Transport)?),
    };
    let signers = dkim::load_all(&config.dkim())?;
    if signers.is_empty() {
        return Ok(carrier);
    }
    if dkim::ed25519_only(&signers) {
        tracing::warn!(
            "the only DKIM key is Ed25519, which Gmail, Microsoft and Yahoo do not yet verify: \
             add an RSA key with NECMAIL_DKIM_SELECTOR_2 and NECMAIL_DKIM_KEY_FILE_2"
        );
    }
    Ok(Arc::new(Signing::new(carrier, signers)))
}

/// What sending mail needs, built once from the configuration: the
/// daemon's parts and `campaign send` share one.
pub struct Sending {
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    /// Signs with DKIM when keys are configured: see [`transport`].
    pub transport: Arc<dyn Transport>,
}

/// Why sending cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The templates in NECMAIL_TEMPLATES_DIR do not load: fix them.
    #[error(transparent)]
    Templates(#[from] TemplateError),
    /// The DKIM key cannot be used: fix the setting or the key.
    #[error(transparent)]
    Dkim(#[from] dkim::DkimError),
    /// The transport cannot be opened (the outbox folder, say).
    #[error(transparent)]
    Transport(SendError),
}

impl SetupError {
    /// True when the configuration must change, as opposed to the machine failing.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, SetupError::Transport(_))
    }
}

impl Sending {
    pub fn new(config: Arc<Config>) -> Result<Self, SetupError> {
        let templates = Arc::new(Templates::load(config.templates_dir.as_deref())?);
        let transport = transport(&config)?;
        Ok(Sending {
            config,
            templates,
            transport,
        })
    }

    /// The delivery engine for campaigns in `store`.
    pub fn engine(&self, store: &Arc<dyn Store>) -> engine::Engine {
        engine::Engine::new(Arc::clone(store) as _, Arc::clone(store) as _, self)
    }
}

/// Where messages go.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(
        &self,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
    ) -> Result<Accepted, SendError>;
    /// A line for logs and the CLI: where mail goes.
    fn describe(&self) -> String;
    /// Closes open connections (QUIT) once the sends in progress are done;
    /// the engine calls it on shutdown.
    async fn close(&self) {}
}
