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
use memchr::memmem;

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
/// transport layer puts in front (the DKIM signatures), then the message as
/// it was built, whole or in pieces: a campaign's messages share the
/// report's encoded body rather than each holding a copy. Kept apart so
/// that the SMTP client writes it without copying it (DKIM hashes a copy).
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub head: &'a [u8],
    message: Pieces<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Pieces<'a> {
    Whole(&'a [u8]),
    Split(&'a [Piece<'a>]),
}

impl<'a> From<&'a [u8]> for Outgoing<'a> {
    fn from(message: &'a [u8]) -> Self {
        Outgoing {
            head: b"",
            message: Pieces::Whole(message),
        }
    }
}

impl<'a> Outgoing<'a> {
    /// The message made of `pieces`, one after another.
    pub fn in_pieces(pieces: &'a [Piece<'a>]) -> Self {
        Outgoing {
            head: b"",
            message: Pieces::Split(pieces),
        }
    }

    /// The same message behind another head.
    pub fn with_head<'b>(&self, head: &'b [u8]) -> Outgoing<'b>
    where
        'a: 'b,
    {
        Outgoing { head, ..*self }
    }

    /// The message's pieces, without the head.
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'a>> + use<'a> {
        let (whole, split) = match self.message {
            Pieces::Whole(bytes) => (Some(Piece::new(bytes)), &[][..]),
            Pieces::Split(pieces) => (None, pieces),
        };
        whole.into_iter().chain(split.iter().copied())
    }

    /// The head and the pieces in the order they are sent, the empty ones
    /// left out.
    pub fn parts(&self) -> impl Iterator<Item = Piece<'a>> + use<'a> {
        std::iter::once(Piece::new(self.head))
            .chain(self.pieces())
            .filter(|part| !part.bytes.is_empty())
    }

    pub fn len(&self) -> usize {
        self.parts().map(|part| part.bytes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_ascii(&self) -> bool {
        self.parts().all(|part| part.safe || part.bytes.is_ascii())
    }
}

/// Bytes of a message, and whether they are known to be safe in SMTP DATA
/// as they are: ASCII, with no line that starts with a dot. The SMTP client
/// neither checks such bytes for 8-bit content nor looks for dots to stuff.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    bytes: &'a [u8],
    safe: bool,
}

impl<'a> Piece<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Piece { bytes, safe: false }
    }

    /// Bytes that [`Piece::is_data_safe`] said are safe; a campaign checks
    /// the report's body once rather than in every message.
    pub fn checked(bytes: &'a [u8]) -> Self {
        debug_assert!(Piece::is_data_safe(bytes));
        Piece { bytes, safe: true }
    }

    /// Whether `bytes` are ASCII and no line in them starts with a dot,
    /// wherever they begin: the first is not a dot either.
    pub fn is_data_safe(bytes: &[u8]) -> bool {
        bytes.is_ascii() && bytes.first() != Some(&b'.') && memmem::find(bytes, b"\n.").is_none()
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn is_safe(&self) -> bool {
        self.safe
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_safe_in_data_only_when_ascii_with_no_line_that_starts_with_a_dot() {
        for safe in [
            &b""[..],
            b"a.b\r\nc.\r\n",
            b"=2E at the start\r\n",
            b"x\r\n",
        ] {
            assert!(Piece::is_data_safe(safe), "{safe:?}");
        }
        for unsafe_ in [&b".a"[..], b"a\r\n.b", b"a\n.", b"caf\xc3\xa9\r\n"] {
            assert!(!Piece::is_data_safe(unsafe_), "{unsafe_:?}");
        }
    }

    #[test]
    fn a_message_in_pieces_is_its_head_then_its_pieces_in_order() {
        let pieces = [
            Piece::new(b"Subject: x\r\n\r\n"),
            Piece::checked(b"body\r\n"),
            Piece::new(b""),
            Piece::new(b"caf\xc3\xa9\r\n"),
        ];
        let outgoing = Outgoing::in_pieces(&pieces).with_head(b"H: v\r\n");
        let parts: Vec<&[u8]> = outgoing.parts().map(|p| p.bytes).collect();
        assert_eq!(
            parts,
            [
                &b"H: v\r\n"[..],
                b"Subject: x\r\n\r\n",
                b"body\r\n",
                b"caf\xc3\xa9\r\n"
            ]
        );
        assert_eq!(outgoing.len(), 33);
        assert!(!outgoing.is_ascii());
        assert!(Outgoing::in_pieces(&pieces[..3]).is_ascii());
        assert_eq!(outgoing.pieces().count(), 4);
    }
}
