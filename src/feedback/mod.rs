//! What mail sent back to necmail says about its deliveries: bounces (RFC
//! 3464 delivery status notifications, and the common texts that are not),
//! complaints (RFC 5965 ARF reports) and auto-replies; and the record of
//! what happened to each address (the events) with the store that keeps it.
//!
//! [`classify`] reads a parsed message and tells which it is; `crate::inbound`
//! decides what to do about it, and `crate::store` implements
//! [`FeedbackStore`].

mod classify;
mod office;

pub use classify::{BouncedRecipient, Classified, Enclosed, classify, is_automatic, parse};
pub use office::Office;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::StoreError;
use crate::subscribers::{SubscriberEmail, SuppressionReason};

string_enum!(
    /// What happened to an address.
    EventKind {
        Join = "join",
        Confirm = "confirm",
        Leave = "leave",
        Bounce = "bounce",
        SoftBounce = "soft-bounce",
        Complaint = "complaint",
        Suppress = "suppress",
        Unsuppress = "unsuppress",
        AutoReply = "auto-reply",
    }
);

string_enum!(
    /// Where an event came from: the public pages, mail to necmail, the
    /// bounce mailbox, the web admin or the command line.
    EventSource {
        Web = "web",
        Email = "email",
        Mailbox = "mailbox",
        Admin = "admin",
        Cli = "cli",
    }
);

/// One delivery of a campaign, as a VERP token or a Message-ID names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRef {
    pub id: i64,
    pub campaign_id: i64,
    pub list_id: i64,
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub source: EventSource,
    pub email: &'a SubscriberEmail,
    pub list_id: Option<i64>,
    pub delivery: Option<&'a DeliveryRef>,
    /// The enhanced status code of a bounce.
    pub status: Option<&'a str>,
    /// A short reason, in words.
    pub reason: &'a str,
}

/// A recorded event, as `events ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub source: EventSource,
    /// `None` once the subscriber was removed.
    pub email: Option<String>,
    pub subscriber_id: Option<i64>,
    pub list_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub delivery_id: Option<i64>,
    pub status: Option<String>,
    pub reason: String,
}

/// Which events to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub email: Option<SubscriberEmail>,
    pub kinds: Vec<EventKind>,
    pub since: Option<DateTime<Utc>>,
    pub campaign_id: Option<i64>,
    /// Only events older than this one (by id): the next page.
    pub before: Option<i64>,
    /// At most this many, the newest.
    pub limit: i64,
}

/// A bounce to record for an address.
#[derive(Debug, Clone)]
pub struct Bounce<'a> {
    pub email: &'a SubscriberEmail,
    pub delivery: Option<&'a DeliveryRef>,
    /// 5.x.x: the address is suppressed at once.
    pub hard: bool,
    pub status: &'a str,
    pub reason: &'a str,
    pub source: EventSource,
    /// Soft bounces at or after `soft_since` that suppress the address.
    pub soft_limit: u32,
    pub soft_since: DateTime<Utc>,
}

/// What recording a bounce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceOutcome {
    /// No subscriber has the address: nothing was recorded.
    Unknown,
    /// Recorded; the address is not suppressed (yet).
    Counted,
    /// Recorded, and the address is now suppressed.
    Suppressed,
}

/// A complaint to record for a subscriber.
#[derive(Debug, Clone)]
pub struct Complaint<'a> {
    pub subscriber_id: i64,
    pub delivery: Option<&'a DeliveryRef>,
    pub reason: &'a str,
    pub source: EventSource,
}

/// A suppressed address, as `suppression ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuppressionEntry {
    /// `None` when no subscriber has the address any more: only its hash is kept.
    pub email: Option<String>,
    pub email_hash: String,
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// The delivery with id `id`, if there is one.
    async fn delivery_ref(&self, id: i64) -> Result<Option<DeliveryRef>, StoreError>;
    /// Records an event.
    async fn record_event(&self, event: &NewEvent<'_>) -> Result<(), StoreError>;
    /// Records a bounce in one transaction: marks the delivery, records the
    /// event and, for a hard bounce or the `soft_limit`th soft one since
    /// `soft_since`, suppresses the address (and records that too).
    async fn record_bounce(&self, bounce: &Bounce<'_>) -> Result<BounceOutcome, StoreError>;
    /// Records a complaint in one transaction: unsubscribes the subscriber
    /// from everything, suppresses the address with the reason complaint,
    /// marks the delivery and records the event. False when there is no
    /// such subscriber.
    async fn record_complaint(&self, complaint: &Complaint<'_>) -> Result<bool, StoreError>;
    /// The newest events that match, newest first.
    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError>;
    /// Suppressions, newest first: at most `limit`, after `before` (the
    /// time and address hash of the last one of the page before).
    async fn suppressions(
        &self,
        before: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<SuppressionEntry>, StoreError>;
    /// Suppresses an address by an admin's word, with `note` as the reason
    /// recorded and `source` (the web admin or the command line) as where it
    /// came from. An unsubscribe never weakens a stronger suppression.
    async fn add_suppression(
        &self,
        email: &SubscriberEmail,
        reason: SuppressionReason,
        note: &str,
        source: EventSource,
    ) -> Result<(), StoreError>;
    /// Lifts an address's suppression by an admin's word, recording `note`
    /// and `source`; false when it was not suppressed.
    async fn remove_suppression(
        &self,
        email: &SubscriberEmail,
        note: &str,
        source: EventSource,
    ) -> Result<bool, StoreError>;
}
