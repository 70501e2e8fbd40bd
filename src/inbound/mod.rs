//! Inbound mail: one handler for every message sent to necmail's addresses,
//! whichever way it comes in — the SMTP and LMTP listener of `necmail
//! serve` ([`listener`]), `necmail receive` (a Postfix `pipe(8)` transport,
//! `.forward` or procmail), or the bounce mailbox.
//!
//! The addresses, all at the domain of NECMAIL_FROM:
//! - `SLUG-join`: a confirmation email to the sender, as the web form sends;
//! - `SLUG-leave`: unsubscribes the sender from the list at once, and sends
//!   one notice that never tells whether the address was on it;
//! - `SLUG-request`: the words `subscribe`, `unsubscribe` and `help` in the
//!   Subject or the first lines;
//! - `leave+TOKEN`: the RFC 8058 mailto unsubscribe, silent, whatever the
//!   message says;
//! - `confirm+TOKEN`: a reply to a confirmation email confirms;
//! - `bounce+TOKEN` (VERP): a bounce, complaint or auto-reply about exactly
//!   that delivery;
//! - `bounces`: bounces and complaints without a usable token, matched
//!   through the message they enclose or the addresses they name.
//!
//! Nothing automatic is ever answered (see [`crate::feedback::is_automatic`]),
//! so loops cannot start; a token that does not verify is logged and the
//! message dropped.

pub mod listener;
pub mod mailbox;

use std::sync::Arc;

use chrono::Utc;
use mail_parser::Message;

use crate::config::Config;
use crate::delivery::notice::{Notice, send_notice};
use crate::delivery::{Sending, Transport};
use crate::error::StoreError;
use crate::feedback::{
    Bounce, BounceOutcome, Classified, Complaint, DeliveryRef, Enclosed, EventKind, EventSource,
    NewEvent, classify, is_automatic, parse,
};
use crate::lists::ListOption;
use crate::render::Templates;
use crate::store::Store;
use crate::subscribers::{
    Attributes, Consent, ConsentMethod, Signup, SignupOutcome, SubscriberEmail,
};
use crate::tokens::{Purpose, Signer};
use crate::web::CONFIRM_LIFETIME_DAYS;

/// Lines of a `SLUG-request` message's body searched for a command.
const COMMAND_LINES: usize = 5;

/// Why a message, or one of its recipients, was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// No such address here: SMTP 550, sysexits 67 (EX_NOUSER).
    #[error("there is no mailbox {0} here")]
    UnknownAddress(String),
    /// The message cannot be read: SMTP 554, sysexits 65 (EX_DATAERR).
    #[error("the message cannot be read: {0}")]
    Unparsable(&'static str),
    /// Larger than NECMAIL_INBOUND_MAX_BYTES: SMTP 552, sysexits 65.
    #[error("the message is larger than {0} bytes")]
    TooBig(usize),
    /// The database is down, say: SMTP 451, sysexits 75 (EX_TEMPFAIL);
    /// the sender tries again later.
    #[error("temporary failure, try again later: {0}")]
    Unavailable(#[from] StoreError),
}

impl InboundError {
    /// The exit code of `necmail receive`, from sysexits.h as Postfix reads it.
    pub fn sysexit(&self) -> u8 {
        match self {
            InboundError::UnknownAddress(_) => 67,
            InboundError::Unparsable(_) | InboundError::TooBig(_) => 65,
            InboundError::Unavailable(_) => 75,
        }
    }

    /// The SMTP reply: code, enhanced status and text.
    pub fn reply(&self) -> (u16, [u8; 3], &'static str) {
        match self {
            InboundError::UnknownAddress(_) => (550, [5, 1, 1], "No such mailbox here"),
            InboundError::Unparsable(_) => (554, [5, 6, 0], "The message cannot be read"),
            InboundError::TooBig(_) => (552, [5, 3, 4], "The message is too large"),
            InboundError::Unavailable(_) => (451, [4, 3, 0], "Temporary failure, try again later"),
        }
    }
}

/// What an address of ours is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Join(ListOption),
    Leave(ListOption),
    Request(ListOption),
    Unsubscribe(String),
    Confirm(String),
    Bounce(String),
    Bounces,
}

impl Recipient {
    /// The kind of address, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::Join(_) => "join",
            Recipient::Leave(_) => "leave",
            Recipient::Request(_) => "request",
            Recipient::Unsubscribe(_) => "leave+token",
            Recipient::Confirm(_) => "confirm+token",
            Recipient::Bounce(_) => "bounce+token",
            Recipient::Bounces => "bounces",
        }
    }
}

/// A message as it arrived: parsed, with its envelope sender.
pub struct Incoming<'a> {
    message: Message<'a>,
    /// Empty for a bounce (`MAIL FROM:<>`).
    sender: String,
}

impl<'a> Incoming<'a> {
    /// Parses `raw`, sent by `sender`, or when that is not known by the
    /// message's Return-Path. A message with NUL bytes, or without a
    /// header, is [`InboundError::Unparsable`].
    pub fn parse(raw: &'a [u8], sender: Option<&str>) -> Result<Self, InboundError> {
        if memchr::memchr(0, raw).is_some() {
            return Err(InboundError::Unparsable("it holds NUL bytes"));
        }
        let message = parse(raw)
            .filter(|m| !m.headers().is_empty())
            .ok_or(InboundError::Unparsable("it has no header"))?;
        let sender = match sender {
            Some(sender) => sender.to_owned(),
            None => message.return_address().unwrap_or_default().to_owned(),
        };
        Ok(Incoming { message, sender })
    }

    /// The addresses its Delivered-To and X-Original-To headers name: where
    /// a mailbox's delivery agent records the envelope recipient.
    pub fn delivered_to(&self) -> impl Iterator<Item = &str> {
        self.message
            .headers_raw()
            .filter(|(name, _)| {
                name.eq_ignore_ascii_case("Delivered-To")
                    || name.eq_ignore_ascii_case("X-Original-To")
            })
            .map(|(_, value)| value.trim().trim_matches(['<', '>']))
    }
}

/// The handler: what each address does.
pub struct Handler {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    signer: Signer,
    source: EventSource,
}

impl Handler {
    /// A handler that records its events as coming from `source`.
    pub fn new(store: Arc<dyn Store>, sending: &Sending, source: EventSource) -> Self {
        Handler {
            store,
            signer: sending.config.signer(),
            config: Arc::clone(&sending.config),
            templates: Arc::clone(&sending.templates),
            transport: Arc::clone(&sending.transport),
            source,
        }
    }

    /// What `address` is for, or [`InboundError::UnknownAddress`]: the
    /// listener answers 550 at RCPT for it. Tokens are checked later, with
    /// the message, so a forged one is dropped without telling.
    pub async fn recipient(&self, address: &str) -> Result<Recipient, InboundError> {
        let unknown = || InboundError::UnknownAddress(address.chars().take(256).collect());
        let email = SubscriberEmail::parse(address).map_err(|_| unknown())?;
        if !email
            .domain()
            .eq_ignore_ascii_case(self.config.from.domain())
        {
            return Err(unknown());
        }
        let local = email.local_part();
        let lower = local.to_ascii_lowercase();
        for (prefix, make) in [
            ("leave+", Recipient::Unsubscribe as fn(String) -> Recipient),
            ("confirm+", Recipient::Confirm),
            ("bounce+", Recipient::Bounce),
        ] {
            if lower.starts_with(prefix) && local.len() > prefix.len() {
                return Ok(make(local[prefix.len()..].to_owned()));
            }
        }
        if lower == "bounces" {
            return Ok(Recipient::Bounces);
        }
        let (slug, kind) = lower.rsplit_once('-').ok_or_else(unknown)?;
        let list = self
            .store
            .list_options()
            .await?
            .into_iter()
            .find(|l| l.slug.as_str() == slug)
            .ok_or_else(unknown)?;
        match kind {
            "leave" => Ok(Recipient::Leave(list)),
            "join" if list.public => Ok(Recipient::Join(list)),
            "request" if list.public => Ok(Recipient::Request(list)),
            _ => Err(unknown()),
        }
    }

    /// Handles `incoming` for one of its recipients.
    #[tracing::instrument(name = "inbound", skip_all, fields(to = to.kind()))]
    pub async fn deliver(
        &self,
        incoming: &Incoming<'_>,
        to: &Recipient,
    ) -> Result<(), InboundError> {
        let automatic = is_automatic(&incoming.message, &incoming.sender);
        match to {
            Recipient::Join(list) if !automatic => self.join(incoming, list).await,
            Recipient::Leave(list) => self.leave(incoming, list, !automatic).await,
            Recipient::Request(list) if !automatic => self.request(incoming, list).await,
            Recipient::Unsubscribe(token) => self.unsubscribe(token).await,
            Recipient::Confirm(token) if !automatic => self.confirm(token).await,
            Recipient::Bounce(token) => self.bounce(incoming, token).await,
            Recipient::Bounces => self.bounces(incoming).await,
            Recipient::Join(_) | Recipient::Request(_) | Recipient::Confirm(_) => {
                tracing::info!("an automatic message is never answered: dropped");
                Ok(())
            }
        }
    }

    /// The envelope sender as an address we may write to.
    fn sender(incoming: &Incoming<'_>) -> Option<SubscriberEmail> {
        SubscriberEmail::parse(incoming.sender.trim_matches(['<', '>'])).ok()
    }

    async fn join(&self, incoming: &Incoming<'_>, list: &ListOption) -> Result<(), InboundError> {
        let Some(email) = Self::sender(incoming) else {
            tracing::info!("a join without a usable sender: dropped");
            return Ok(());
        };
        let now = Utc::now();
        if !self
            .store
            .allow_confirmation_email(
                &email,
                now - chrono::Duration::hours(24),
                self.config.confirmations_per_address_per_day,
            )
            .await?
        {
            tracing::info!("join ignored: the address had its confirmation emails for today");
            return Ok(());
        }
        let signup = Signup {
            email: email.clone(),
            name: None,
            attributes: Attributes::new(),
            lists: vec![list.slug.clone()],
            consent: Consent {
                at: now,
                method: ConsentMethod::Email,
                ip: None,
                wording: format!("email to {}-join", list.slug),
            },
            issued_at: now.timestamp(),
        };
        match self.store.sign_up(&signup).await? {
            SignupOutcome::Suppressed => tracing::info!("join ignored: the address is suppressed"),
            SignupOutcome::Stored { subscriber_id, .. } => {
                tracing::info!(subscriber_id, "join by email stored");
                self.event(EventKind::Join, &email, Some(list.id), "")
                    .await?;
            }
        }
        Ok(())
    }

    async fn leave(
        &self,
        incoming: &Incoming<'_>,
        list: &ListOption,
        answer: bool,
    ) -> Result<(), InboundError> {
        let Some(email) = Self::sender(incoming) else {
            tracing::info!("a leave without a usable sender: dropped");
            return Ok(());
        };
        match self.store.unsubscribe(&email, Some(&list.slug)).await {
            Ok(subscriber) => {
                tracing::info!(subscriber_id = subscriber.id, "left a list by email");
                self.event(EventKind::Leave, &email, Some(list.id), "")
                    .await?;
            }
            Err(e) if e.is_bad_input() => tracing::info!("leave: the address was not on the list"),
            Err(e) => return Err(e.into()),
        }
        if answer {
            self.answer(&email, "left", list).await?;
        }
        Ok(())
    }

    async fn request(
        &self,
        incoming: &Incoming<'_>,
        list: &ListOption,
    ) -> Result<(), InboundError> {
        match command(&incoming.message).as_deref() {
            Some("subscribe" | "join") => self.join(incoming, list).await,
            Some("unsubscribe" | "leave" | "remove") => self.leave(incoming, list, true).await,
            _ => match Self::sender(incoming) {
                Some(email) => self.answer(&email, "help", list).await,
                None => Ok(()),
            },
        }
    }

    /// Sends the notice `email/NAME.*.tera` about `list` to `email`, within
    /// the per-address limit of confirmation emails, so that forged mail
    /// cannot turn necmail against an address.
    async fn answer(
        &self,
        email: &SubscriberEmail,
        name: &str,
        list: &ListOption,
    ) -> Result<(), InboundError> {
        if !self
            .store
            .allow_confirmation_email(
                email,
                Utc::now() - chrono::Duration::hours(24),
                self.config.confirmations_per_address_per_day,
            )
            .await?
        {
            tracing::info!(name, "no answer: the address had its emails for today");
            return Ok(());
        }
        let domain = self.config.from.domain();
        let mut ctx = tera::Context::new();
        ctx.insert("site_name", &self.config.site_name);
        ctx.insert("list", &list.name);
        ctx.insert("subscribe_url", &self.config.public_link("subscribe"));
        for kind in ["join", "leave", "request"] {
            ctx.insert(kind, &format!("{}-{kind}@{domain}", list.slug));
        }
        let render = |part: &str| {
            self.templates
                .render(&format!("email/{name}.{part}.tera"), &ctx)
        };
        let (subject, text) = match (render("subject"), render("txt")) {
            (Ok(subject), Ok(text)) => (subject, text),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "the answer cannot be rendered");
                return Ok(());
            }
        };
        let notice = Notice {
            to: email,
            to_name: None,
            subject: subject.trim(),
            text: &text,
            html: None,
            reply_to: None,
        };
        if let Err(e) = send_notice(self.transport.as_ref(), &self.config, &notice).await {
            tracing::warn!(error = %e, name, "the answer was not sent");
        }
        Ok(())
    }

    /// A `leave+TOKEN@` message: leaves every list the token names (those
    /// its message came through).
    async fn unsubscribe(&self, token: &str) -> Result<(), InboundError> {
        let (subscriber_id, list_ids) = match self.signer.unsubscribe(token) {
            Ok(target) => target,
            Err(e) => {
                tracing::info!(reason = %e, "a bad unsubscribe token: message dropped");
                return Ok(());
            }
        };
        let subscriber = match self.store.subscriber_by_id(subscriber_id).await {
            Ok(s) => s,
            Err(e) if e.is_bad_input() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if self
            .store
            .unsubscribe_by_id(subscriber_id, Some(&list_ids))
            .await?
        {
            tracing::info!(subscriber_id, "mailto unsubscribe");
            for list_id in list_ids {
                self.event(
                    EventKind::Leave,
                    &subscriber.email,
                    Some(list_id),
                    "mailto unsubscribe",
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn confirm(&self, token: &str) -> Result<(), InboundError> {
        let Some([subscriber_id, issued]) = self.ids(Purpose::Confirm, token) else {
            return Ok(());
        };
        if Utc::now().timestamp().saturating_sub(issued) > CONFIRM_LIFETIME_DAYS * 86_400 {
            tracing::info!(subscriber_id, "a reply to an expired confirmation: dropped");
            return Ok(());
        }
        if let Some(confirmed) = self.store.confirm(subscriber_id, issued).await? {
            tracing::info!(subscriber_id, "confirmed by reply");
            self.event(EventKind::Confirm, &confirmed.email, None, "by reply")
                .await?;
        }
        Ok(())
    }

    /// The two ids a valid token of `purpose` carries; a bad token is
    /// logged and gives `None`.
    fn ids(&self, purpose: Purpose, token: &str) -> Option<[i64; 2]> {
        let values = self
            .signer
            .verify(purpose, token)
            .map_err(|e| tracing::info!(reason = %e, ?purpose, "a bad token: message dropped"))
            .ok()?;
        let [a, b] = values[..] else {
            tracing::info!(?purpose, "a token of the wrong shape: message dropped");
            return None;
        };
        Some([i64::try_from(a).ok()?, i64::try_from(b).ok()?])
    }

    /// The delivery a VERP token names, if it verifies and the delivery exists.
    async fn verp(&self, token: &str) -> Result<Option<DeliveryRef>, InboundError> {
        let values = match self.signer.verify(Purpose::Delivery, token) {
            Ok(values) => values,
            Err(e) => {
                tracing::info!(reason = %e, "a VERP token that does not verify: message dropped");
                return Ok(None);
            }
        };
        let id = match values[..] {
            [id] => i64::try_from(id).unwrap_or(0),
            // A test message (`send-test`): no delivery.
            _ => 0,
        };
        if id == 0 {
            tracing::info!("feedback on a test message: dropped");
            return Ok(None);
        }
        Ok(self.store.delivery_ref(id).await?)
    }

    async fn bounce(&self, incoming: &Incoming<'_>, token: &str) -> Result<(), InboundError> {
        let Some(delivery) = self.verp(token).await? else {
            return Ok(());
        };
        match classify(&incoming.message) {
            Classified::Bounce { recipients, .. } => {
                let worst = recipients.iter().find(|r| r.hard).or(recipients.first());
                match worst {
                    Some(worst) => {
                        self.record_bounce(&delivery.email, Some(&delivery), worst)
                            .await
                    }
                    None => Ok(()),
                }
            }
            Classified::Complaint { .. } => {
                self.complaint(delivery.subscriber_id, Some(&delivery))
                    .await
            }
            Classified::AutoReply => {
                self.event(
                    EventKind::AutoReply,
                    &delivery.email,
                    None,
                    "an automatic reply",
                )
                .await
            }
            Classified::Delayed => {
                tracing::info!(delivery = delivery.id, "a delay notice: not a bounce");
                Ok(())
            }
            Classified::Other => {
                tracing::info!(
                    delivery = delivery.id,
                    "mail to a VERP address that is no bounce: dropped"
                );
                Ok(())
            }
        }
    }

    async fn bounces(&self, incoming: &Incoming<'_>) -> Result<(), InboundError> {
        match classify(&incoming.message) {
            Classified::Bounce {
                recipients,
                enclosed,
            } => {
                let delivery = self.enclosed_delivery(&enclosed).await?;
                for recipient in &recipients {
                    let Some(email) = recipient
                        .address
                        .as_deref()
                        .and_then(|a| SubscriberEmail::parse(a).ok())
                    else {
                        continue;
                    };
                    let delivery = delivery.as_ref().filter(|d| d.email.key() == email.key());
                    self.record_bounce(&email, delivery, recipient).await?;
                }
                Ok(())
            }
            Classified::Complaint {
                recipient,
                enclosed,
                ..
            } => {
                let delivery = self.enclosed_delivery(&enclosed).await?;
                let subscriber = match &delivery {
                    Some(d) => Some(d.subscriber_id),
                    None => {
                        self.enclosed_subscriber(&enclosed, recipient.as_deref())
                            .await?
                    }
                };
                match subscriber {
                    Some(id) => self.complaint(id, delivery.as_ref()).await,
                    None => {
                        tracing::info!("a complaint about no subscriber of ours: dropped");
                        Ok(())
                    }
                }
            }
            Classified::Delayed | Classified::AutoReply | Classified::Other => {
                tracing::info!("mail to bounces@ that is neither bounce nor complaint: dropped");
                Ok(())
            }
        }
    }

    /// The delivery the enclosed original names: its Message-ID
    /// (`CAMPAIGN.TOKEN@DOMAIN`) or its return path (`bounce+TOKEN@DOMAIN`).
    async fn enclosed_delivery(
        &self,
        enclosed: &Enclosed,
    ) -> Result<Option<DeliveryRef>, InboundError> {
        let from_id = enclosed
            .message_id
            .as_deref()
            .and_then(|id| id.split_once('@'))
            .and_then(|(local, _)| local.split_once('.'))
            .map(|(_, token)| token);
        let from_path = enclosed
            .return_path
            .as_deref()
            .and_then(|p| p.split_once('@'))
            .and_then(|(local, _)| local.strip_prefix("bounce+"));
        for token in from_id.into_iter().chain(from_path) {
            if let Ok(values) = self.signer.verify(Purpose::Delivery, token)
                && let [id] = values[..]
                && let Ok(id) = i64::try_from(id)
                && let Some(delivery) = self.store.delivery_ref(id).await?
            {
                return Ok(Some(delivery));
            }
        }
        Ok(None)
    }

    /// The subscriber the enclosed original's List-Unsubscribe token names,
    /// or the one with the complaining address.
    async fn enclosed_subscriber(
        &self,
        enclosed: &Enclosed,
        recipient: Option<&str>,
    ) -> Result<Option<i64>, InboundError> {
        let token = enclosed
            .list_unsubscribe
            .as_deref()
            .and_then(|v| v.split_once("mailto:leave+"))
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(token, _)| token);
        if let Some(token) = token
            && let Ok((id, _)) = self.signer.unsubscribe(token)
        {
            return Ok(Some(id));
        }
        let Some(email) = recipient.and_then(|r| SubscriberEmail::parse(r).ok()) else {
            return Ok(None);
        };
        match self.store.subscriber(&email).await {
            Ok(s) => Ok(Some(s.id)),
            Err(e) if e.is_bad_input() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn record_bounce(
        &self,
        email: &SubscriberEmail,
        delivery: Option<&DeliveryRef>,
        recipient: &crate::feedback::BouncedRecipient,
    ) -> Result<(), InboundError> {
        let outcome = self
            .store
            .record_bounce(&Bounce {
                email,
                delivery,
                hard: recipient.hard,
                status: &recipient.status,
                reason: &recipient.diagnostic,
                source: self.source,
                soft_limit: self.config.soft_bounce_limit,
                soft_since: Utc::now()
                    - chrono::Duration::days(i64::from(self.config.soft_bounce_days)),
            })
            .await?;
        tracing::info!(
            hard = recipient.hard,
            status = %recipient.status,
            outcome = ?outcome,
            "bounce"
        );
        if outcome == BounceOutcome::Unknown {
            tracing::info!("a bounce for an address of no subscriber: dropped");
        }
        Ok(())
    }

    async fn complaint(
        &self,
        subscriber_id: i64,
        delivery: Option<&DeliveryRef>,
    ) -> Result<(), InboundError> {
        let recorded = self
            .store
            .record_complaint(&Complaint {
                subscriber_id,
                delivery,
                reason: "an abuse report",
                source: self.source,
            })
            .await?;
        tracing::info!(subscriber_id, recorded, "complaint");
        Ok(())
    }

    async fn event(
        &self,
        kind: EventKind,
        email: &SubscriberEmail,
        list_id: Option<i64>,
        reason: &str,
    ) -> Result<(), InboundError> {
        self.store
            .record_event(&NewEvent::about(kind, self.source, email, list_id, reason))
            .await?;
        Ok(())
    }
}

/// The command of a `SLUG-request` message: the first word of the Subject,
/// or of one of the first lines of the text, that is a command; lower case.
fn command(message: &Message<'_>) -> Option<String> {
    const COMMANDS: &[&str] = &[
        "subscribe",
        "join",
        "unsubscribe",
        "leave",
        "remove",
        "help",
    ];
    let first_word = |line: &str| {
        line.split_whitespace()
            .next()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| COMMANDS.contains(&w.as_str()))
    };
    if let Some(word) = message.subject().and_then(first_word) {
        return Some(word);
    }
    let text = message.body_text(0)?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(COMMAND_LINES)
        .find_map(first_word)
}
