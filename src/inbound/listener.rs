//! The SMTP and LMTP listener: `necmail serve` takes inbound mail on
//! NECMAIL_INBOUND_ADDR and hands each message to the [`Handler`].
//!
//! One port speaks both: a session that opens with LHLO is LMTP, and gets
//! one reply per recipient after the message; EHLO or HELO is SMTP. smtp-proto
//! parses the commands and un-stuffs the message; its replies are written
//! with smtp-proto's `Response`. The limits: NECMAIL_INBOUND_MAX_BYTES per
//! message (552, the rest is read and dropped), NECMAIL_INBOUND_MAX_RECIPIENTS
//! per message (452), NECMAIL_INBOUND_MAX_CONNECTIONS at once (more wait to
//! be accepted), and NECMAIL_INBOUND_TIMEOUT_SECS for each read and write
//! (then 421 and the connection is closed). It offers no STARTTLS or AUTH:
//! it is for the local MTA, on loopback by default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{
    EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EhloResponse, Request,
    Response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Handler, InboundError, Incoming, Recipient};
use crate::config::Config;

/// How long sessions in progress get to finish when the daemon stops.
const DRAIN: Duration = Duration::from_secs(5);

/// The limits of every session.
#[derive(Debug, Clone)]
struct Limits {
    max_bytes: usize,
    max_recipients: usize,
    timeout: Duration,
    hostname: String,
}

/// The listener, bound and ready.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    handler: Arc<Handler>,
    limits: Arc<Limits>,
    connections: Arc<Semaphore>,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen on {addr} (NECMAIL_INBOUND_ADDR): {source}; is another program, or another \
     necmail, using that port? off turns the inbound listener off"
)]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

impl Listener {
    /// Binds `addr` (port 0 allowed).
    pub async fn bind(
        addr: SocketAddr,
        handler: Handler,
        config: &Config,
    ) -> Result<Listener, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        Ok(Listener {
            listener,
            addr,
            handler: Arc::new(handler),
            limits: Arc::new(Limits {
                max_bytes: config.inbound_max_bytes,
                max_recipients: config.inbound_max_recipients,
                timeout: config.inbound_timeout,
                hostname: config.helo_name.clone(),
            }),
            connections: Arc::new(Semaphore::new(config.inbound_max_connections)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop`; then stops taking connections and gives those
    /// open [`DRAIN`] to finish.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut sessions = JoinSet::new();
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&self.connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "an inbound connection failed to open");
                        continue;
                    }
                },
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let handler = Arc::clone(&self.handler);
            let limits = Arc::clone(&self.limits);
            sessions.spawn(async move {
                let span = tracing::info_span!("inbound_session", %peer);
                let _ = tracing::Instrument::instrument(
                    Session::new(stream, handler, limits).run(),
                    span,
                )
                .await;
                drop(permit);
            });
            while sessions.try_join_next().is_some() {}
        }
        drop(self.listener);
        if tokio::time::timeout(DRAIN, async {
            while sessions.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            sessions.shutdown().await;
        }
    }
}

/// What the session is reading.
enum Mode {
    Command,
    Data(DataReceiver),
    /// The rest of a message that is too large, read and dropped.
    Discard(DummyDataReceiver),
}

/// One connection.
struct Session {
    stream: TcpStream,
    handler: Arc<Handler>,
    limits: Arc<Limits>,
    /// `Some(true)` after LHLO, `Some(false)` after EHLO or HELO.
    lmtp: Option<bool>,
    sender: Option<String>,
    recipients: Vec<Recipient>,
    message: Vec<u8>,
    out: Vec<u8>,
}

/// Why a session ended early.
enum Closed {
    /// The client left, or the network failed.
    Gone,
    /// QUIT.
    Quit,
}

impl Session {
    fn new(stream: TcpStream, handler: Arc<Handler>, limits: Arc<Limits>) -> Self {
        Session {
            stream,
            handler,
            limits,
            lmtp: None,
            sender: None,
            recipients: Vec::new(),
            message: Vec::new(),
            out: Vec::new(),
        }
    }

    fn reply(&mut self, code: u16, esc: [u8; 3], text: &str) {
        let _ = Response::new(code, esc[0], esc[1], esc[2], text).write(&mut self.out);
    }

    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
        self.message = Vec::new();
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written =
            tokio::time::timeout(self.limits.timeout, self.stream.write_all(&self.out)).await;
        self.out.clear();
        match written {
            Ok(Ok(())) => Ok(()),
            _ => Err(Closed::Gone),
        }
    }

    async fn run(mut self) -> Result<(), Closed> {
        let greeting = format!("{} necmail ready", self.limits.hostname);
        self.reply(220, [2, 0, 0], &greeting);
        self.flush().await?;
        let mut receiver = RequestReceiver::default();
        let mut mode = Mode::Command;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let read =
                tokio::time::timeout(self.limits.timeout, self.stream.read(&mut chunk)).await;
            let n = match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Closed::Gone),
                Ok(Ok(n)) => n,
                Err(_) => {
                    tracing::info!("inbound client too slow: closed");
                    self.reply(421, [4, 4, 2], "Timeout, closing the connection");
                    let _ = self.flush().await;
                    return Err(Closed::Gone);
                }
            };
            let mut bytes = chunk[..n].iter();
            while !bytes.as_slice().is_empty() {
                match &mut mode {
                    Mode::Command => {
                        let request = match receiver.ingest(&mut bytes) {
                            Ok(request) => request.into_owned(),
                            Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                            Err(e) => {
                                self.refuse(&e);
                                continue;
                            }
                        };
                        match self.command(request).await {
                            Ok(Some(data)) => mode = data,
                            Ok(None) => {}
                            Err(Closed::Quit) => {
                                let _ = self.flush().await;
                                return Ok(());
                            }
                            Err(gone) => return Err(gone),
                        }
                    }
                    Mode::Data(data) => {
                        let done = data.ingest(&mut bytes, &mut self.message);
                        if done {
                            self.end_of_data().await;
                            mode = Mode::Command;
                        } else if self.message.len() > self.limits.max_bytes {
                            self.message = Vec::new();
                            mode = Mode::Discard(DummyDataReceiver::new_data(data));
                        }
                    }
                    Mode::Discard(discard) => {
                        if discard.ingest(&mut bytes) {
                            let error = InboundError::TooBig(self.limits.max_bytes);
                            tracing::info!("{error}: refused");
                            self.reply_each(&error);
                            self.reset();
                            mode = Mode::Command;
                        }
                    }
                }
            }
            self.flush().await?;
        }
    }

    /// The reply to a command smtp-proto could not parse.
    fn refuse(&mut self, error: &smtp_proto::Error) {
        match error {
            smtp_proto::Error::UnknownCommand => self.reply(500, [5, 5, 1], "Unknown command"),
            smtp_proto::Error::InvalidSenderAddress => {
                self.reply(501, [5, 1, 7], "Bad sender address")
            }
            smtp_proto::Error::InvalidRecipientAddress => {
                self.reply(501, [5, 1, 3], "Bad recipient address")
            }
            smtp_proto::Error::SyntaxError { syntax } => {
                let text = format!("Syntax: {syntax}");
                self.reply(501, [5, 5, 4], &text)
            }
            smtp_proto::Error::ResponseTooLong => self.reply(500, [5, 5, 2], "Line too long"),
            _ => self.reply(501, [5, 5, 4], "Bad parameter"),
        }
    }

    /// Answers one command; `Some(mode)` when the message follows.
    async fn command(&mut self, request: Request<String>) -> Result<Option<Mode>, Closed> {
        match request {
            Request::Ehlo { .. } | Request::Lhlo { .. } => {
                self.lmtp = Some(matches!(request, Request::Lhlo { .. }));
                self.reset();
                let mut ehlo = EhloResponse::new(self.limits.hostname.as_str());
                ehlo.capabilities =
                    EXT_8BIT_MIME | EXT_ENHANCED_STATUS_CODES | EXT_PIPELINING | EXT_SIZE;
                ehlo.size = self.limits.max_bytes;
                let _ = ehlo.write(&mut self.out);
            }
            Request::Helo { .. } => {
                self.lmtp = Some(false);
                self.reset();
                let hostname = self.limits.hostname.clone();
                self.reply(250, [2, 0, 0], &hostname);
            }
            Request::Mail { from } => {
                if self.lmtp.is_none() {
                    self.reply(503, [5, 5, 1], "Say hello first");
                } else if self.sender.is_some() {
                    self.reply(503, [5, 5, 1], "A message is already under way");
                } else if from.size > self.limits.max_bytes {
                    self.reply(552, [5, 3, 4], "The message is too large");
                } else {
                    self.sender = Some(from.address);
                    self.reply(250, [2, 1, 0], "OK");
                }
            }
            Request::Rcpt { to } => {
                if self.sender.is_none() {
                    self.reply(503, [5, 5, 1], "MAIL first");
                } else if self.recipients.len() >= self.limits.max_recipients {
                    self.reply(452, [4, 5, 3], "Too many recipients");
                } else {
                    match self.handler.recipient(&to.address).await {
                        Ok(recipient) => {
                            self.recipients.push(recipient);
                            self.reply(250, [2, 1, 5], "OK");
                        }
                        Err(e) => {
                            let (code, esc, text) = e.reply();
                            self.reply(code, esc, text);
                        }
                    }
                }
            }
            Request::Data => {
                if self.recipients.is_empty() {
                    self.reply(503, [5, 5, 1], "RCPT first");
                } else {
                    self.reply(354, [2, 0, 0], "End the message with a line of one dot");
                    return Ok(Some(Mode::Data(DataReceiver::new())));
                }
            }
            Request::Rset => {
                self.reset();
                self.reply(250, [2, 0, 0], "OK");
            }
            Request::Noop { .. } => self.reply(250, [2, 0, 0], "OK"),
            Request::Vrfy { .. } => self.reply(252, [2, 5, 0], "Send some mail and see"),
            Request::Help { .. } => self.reply(214, [2, 0, 0], "See RFC 5321 and RFC 2033"),
            Request::Quit => {
                self.reply(221, [2, 0, 0], "Bye");
                return Err(Closed::Quit);
            }
            Request::StartTls
            | Request::Auth { .. }
            | Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.reply(502, [5, 5, 1], "Not offered here"),
        }
        Ok(None)
    }

    /// The reply to a whole message: once in SMTP, once per recipient in LMTP.
    fn reply_each(&mut self, error: &InboundError) {
        let (code, esc, text) = error.reply();
        let times = if self.lmtp == Some(true) {
            self.recipients.len()
        } else {
            1
        };
        for _ in 0..times {
            self.reply(code, esc, text);
        }
    }

    /// Hands the message to the handler for each recipient and replies.
    async fn end_of_data(&mut self) {
        let message = std::mem::take(&mut self.message);
        let sender = self.sender.take().unwrap_or_default();
        let recipients = std::mem::take(&mut self.recipients);
        let incoming = match Incoming::parse(&message, Some(&sender)) {
            Ok(incoming) => incoming,
            Err(e) => {
                tracing::info!("{e}: refused");
                self.recipients = recipients;
                self.reply_each(&e);
                self.reset();
                return;
            }
        };
        let mut results = Vec::with_capacity(recipients.len());
        for recipient in &recipients {
            results.push(self.handler.deliver(&incoming, recipient).await);
        }
        if self.lmtp == Some(true) {
            for result in results {
                match result {
                    Ok(()) => self.reply(250, [2, 0, 0], "Delivered"),
                    Err(e) => {
                        tracing::warn!(error = %e, "an inbound message failed for a recipient");
                        let (code, esc, text) = e.reply();
                        self.reply(code, esc, text);
                    }
                }
            }
        } else {
            match results.into_iter().find_map(Result::err) {
                None => self.reply(250, [2, 0, 0], "Delivered"),
                Some(e) => {
                    tracing::warn!(error = %e, "an inbound message failed");
                    let (code, esc, text) = e.reply();
                    self.reply(code, esc, text);
                }
            }
        }
        self.reset();
    }
}
