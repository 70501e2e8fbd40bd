//! DKIM signing as a transport decorator: [`Signing`] signs every message
//! handed to it and passes it on to the transport it wraps.
//! [`super::transport`] puts it in front of the relay or the outbox whenever
//! keys are configured, so campaigns, confirmation emails, notices and
//! `send-test` are all signed the same way, and none can skip it.
//!
//! The signatures go to the wrapped transport as the head of the
//! [`Outgoing`] message, in front of the message's own bytes.
//!
//! Signing runs on tokio's blocking threads, at most one message per core
//! at a time: an RSA signature takes most of a millisecond, and the
//! runtime's own threads meanwhile go on sending the messages signed
//! before. The blocking thread gets a copy of the message to hash.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::dkim::{DkimSigner, SIGNATURE_ROOM, sign_with};
use super::{Accepted, Envelope, Outgoing, SendError, Transport};

/// A transport that signs each message with every key it holds (RFC 8463:
/// one RSA and one Ed25519 key side by side) before the one it wraps sends it.
pub struct Signing {
    inner: Arc<dyn Transport>,
    signers: Arc<[DkimSigner]>,
    /// One permit per core: the messages being signed at once.
    cores: Semaphore,
}

impl Signing {
    pub fn new(inner: Arc<dyn Transport>, signers: Vec<DkimSigner>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Signing {
            inner,
            signers: signers.into(),
            cores: Semaphore::new(cores),
        }
    }
}

#[async_trait]
impl Transport for Signing {
    /// Signs the message and puts the signatures first, before any head a
    /// decorator in front of this one added.
    async fn send(
        &self,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
    ) -> Result<Accepted, SendError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let room = SIGNATURE_ROOM * self.signers.len() + message.head.len();
        let core = self
            .cores
            .acquire()
            .await
            .map_err(|_| SendError::Local("signing has stopped".into()))?;
        let signers = Arc::clone(&self.signers);
        let mut copy = Vec::with_capacity(message.len());
        for piece in message.pieces() {
            copy.extend_from_slice(piece.bytes());
        }
        let signed = tokio::task::spawn_blocking(move || {
            let mut head = String::with_capacity(room);
            sign_with(&signers, &copy, now, &mut head).map(|()| head)
        })
        .await;
        drop(core);
        let head = signed
            .map_err(|e| SendError::Local(format!("signing stopped: {e}")))?
            .map_err(|e| SendError::Unsignable(e.to_string()))?;
        let mut head = head.into_bytes();
        head.extend_from_slice(message.head);
        self.inner.send(envelope, message.with_head(&head)).await
    }

    fn describe(&self) -> String {
        let algorithms: Vec<&str> = self.signers.iter().map(DkimSigner::algorithm).collect();
        format!(
            "{}, signed with DKIM ({})",
            self.inner.describe(),
            algorithms.join(" and ")
        )
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
