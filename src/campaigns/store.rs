//! What campaigns and the delivery engine need from storage;
//! `crate::store` implements it. Claiming works for several necmail
//! instances sharing one campaign on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Campaign, CampaignState, DeliveryCounts, DeliveryRecord, DeliveryState, NewCampaign,
    RecentError, SentSince, Start, Tally,
};
use crate::error::StoreError;
use crate::lists::ListSlug;
use crate::subscribers::{Attributes, SubscriberEmail, SuppressionReason};

/// A delivery claimed for sending, with what the message needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub list_id: i64,
    pub list_slug: String,
    pub list_name: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub email: SubscriberEmail,
    pub name: Option<String>,
    pub attributes: Attributes,
    /// False when, since the campaign started, the subscriber left the list,
    /// was blocklisted or suppressed: the delivery is then skipped.
    pub eligible: bool,
    /// The campaign's other lists the subscriber is confirmed on, in the
    /// campaign's order: the one message comes through them too. Empty, and
    /// so no allocation, for someone on one of them.
    pub also: Vec<AlsoList>,
}

/// Another list a claimed delivery's message comes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlsoList {
    pub id: i64,
    pub slug: String,
    pub name: String,
}

/// Which deliveries a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFrom {
    /// Expired leases of other workers first (their outcome is unknown),
    /// then deferred deliveries that are due, then queued ones.
    Anywhere,
    /// Queued deliveries only: cheaper, for the claims between looks at the
    /// rest, which fall due rarely.
    Queue,
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    Deferred {
        error: String,
        retry_at: DateTime<Utc>,
        ambiguous: bool,
    },
    /// `hard_bounce` also suppresses the address.
    Failed {
        error: String,
        hard_bounce: bool,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub delivery_id: i64,
    pub outcome: Outcome,
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates a campaign: held when asked, else a draft, or scheduled when
    /// it has a start time.
    async fn create_campaign(&self, new: &NewCampaign) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    /// Up to `limit` campaigns with an id below `before` (any, without it),
    /// the newest first.
    async fn campaigns_page(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError>;
    /// How many people a campaign to `lists` with `filter` would go to if it
    /// started now: the confirmed, active, unsuppressed subscribers of the
    /// lists with every attribute value of the filter, each counted once.
    async fn audience(&self, lists: &[ListSlug], filter: &Attributes) -> Result<i64, StoreError>;
    async fn campaign(&self, id: i64) -> Result<Campaign, StoreError>;
    /// The first campaign, cancelled ones aside, that starts at `send_at`
    /// and sends a report imported from the feed at `feed_url`.
    async fn feed_campaign_at(
        &self,
        feed_url: &str,
        send_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    /// Starts a draft, scheduled or held campaign: fixes its recipients (one
    /// delivery per confirmed, active, unsuppressed subscriber of its lists
    /// that matches its filter) and moves it to sending, with how many
    /// recipients it has; starting a campaign that is already sending changes
    /// nothing. A campaign that would have no recipients is left as it was,
    /// and [`Start::NoRecipients`] says why.
    async fn start_campaign(&self, id: i64) -> Result<Start, StoreError>;
    /// Pauses, resumes, cancels or approves a campaign; a transition that
    /// makes no sense from its state is refused.
    async fn set_campaign_state(
        &self,
        id: i64,
        to: CampaignState,
        reason: Option<&str>,
    ) -> Result<Campaign, StoreError>;
    /// Changes whenever a campaign's state is changed through this store
    /// (a pause or cancel from this process): an engine running here hears
    /// of it at once, and of changes made elsewhere only when it asks.
    fn state_changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Approves a held campaign: it becomes scheduled, keeping its start time
    /// when that is after `now`, else starting at `now`. A campaign in any
    /// other state is refused.
    async fn approve_campaign(&self, id: i64, now: DateTime<Utc>) -> Result<Campaign, StoreError>;
    /// The scheduled campaigns whose start time is `now` or earlier, by start time.
    async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
    /// Re-queues deferred deliveries now, and failed ones too with `include_failed`.
    async fn retry_deliveries(&self, id: i64, include_failed: bool) -> Result<i64, StoreError>;
    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError>;
    /// How many of its deliveries were sent, failed, and there are.
    async fn tally(&self, id: i64) -> Result<Tally, StoreError>;
    async fn recent_errors(&self, id: i64, limit: i64) -> Result<Vec<RecentError>, StoreError>;
    /// Up to `limit` of a campaign's deliveries with an id above `after`,
    /// in id order; only those in `state` when it is given.
    async fn deliveries(
        &self,
        id: i64,
        state: Option<DeliveryState>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Up to `limit` of a campaign's deliveries to an address that starts
    /// with `prefix` (in any case), after the address whose key is `after`:
    /// in the order of the address's key (lower-case, byte by byte), each
    /// with that key; only those in `state` when it is given. An index
    /// answers it, as it does the subscriber search.
    async fn search_deliveries(
        &self,
        id: i64,
        state: Option<DeliveryState>,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, DeliveryRecord)>, StoreError>;
    /// Deliveries sent since `since`, for the current rate.
    async fn sent_since(&self, id: i64, since: DateTime<Utc>) -> Result<SentSince, StoreError>;
    /// Claims up to `limit` deliveries `from` where it says for `worker`
    /// under a lease. The claim is committed before anything is sent.
    /// Expired leases are claimed again only from other workers.
    async fn claim(
        &self,
        id: i64,
        worker: &str,
        limit: i64,
        lease: Duration,
        from: ClaimFrom,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Extends the lease on those of `ids` that `worker` still holds to
    /// `lease` from now; returns how many it holds.
    async fn renew(&self, worker: &str, ids: &[i64], lease: Duration) -> Result<u64, StoreError>;
    /// The workers holding leases on deliveries of campaign `id`, expired or not.
    async fn lease_holders(&self, id: i64) -> Result<Vec<String>, StoreError>;
    /// Ends the leases `worker` holds on deliveries of campaign `id` at
    /// once, and leaves them to nobody, so that they are claimed again as
    /// expired (their outcome is unknown), by any worker; for a worker known
    /// to have stopped. Returns how many.
    async fn take_back(&self, id: i64, worker: &str) -> Result<u64, StoreError>;
    /// The campaigns that are sending, by id.
    async fn sending_campaigns(&self) -> Result<Vec<i64>, StoreError>;
    /// Records outcomes of deliveries `worker` still holds, in one transaction.
    async fn record(&self, worker: &str, outcomes: &[Recorded]) -> Result<(), StoreError>;
    /// Gives claimed but unsent deliveries back to the queue.
    async fn release(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError>;
    /// Marks a sending campaign done when no delivery is left to send.
    async fn finish_if_complete(&self, id: i64) -> Result<bool, StoreError>;
    /// When the next deferred delivery, or lease held by another worker
    /// than `worker`, falls due: a worker's own leases never fall due for it.
    async fn next_due(&self, id: i64, worker: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Totals over every campaign and address, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Deliveries of every campaign, by state; states with none are left out.
    pub deliveries: Vec<(DeliveryState, i64)>,
    /// Suppressed addresses, by reason; reasons with none are left out.
    pub suppressions: Vec<(SuppressionReason, i64)>,
}

#[async_trait]
pub trait TotalsStore: Send + Sync {
    async fn totals(&self) -> Result<Totals, StoreError>;
}
