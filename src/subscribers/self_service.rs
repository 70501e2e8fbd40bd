//! What people do for themselves through the web pages: sign up (double
//! opt-in), confirm, unsubscribe, and change their preferences. Each
//! operation names the subscriber by the id a signed token carried;
//! `crate::store` implements [`SelfServiceStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Attributes, Consent, Subscriber, SubscriberEmail, SubscriberName};
use crate::error::StoreError;
use crate::lists::ListSlug;

/// A sign-up from the subscribe form.
#[derive(Debug, Clone)]
pub struct Signup {
    pub email: SubscriberEmail,
    /// Used only when the address is new: a stranger's form must not rename
    /// an existing subscriber.
    pub name: Option<SubscriberName>,
    /// Used only when the address is new, like the name.
    pub attributes: Attributes,
    /// Public lists only; the caller checks.
    pub lists: Vec<ListSlug>,
    pub consent: Consent,
    /// Unix seconds: the version of the confirmation this sign-up asks for.
    /// It goes into the confirmation token, and only the latest one works.
    pub issued_at: i64,
}

/// What a sign-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupOutcome {
    /// The address is blocklisted, or suppressed for good (a hard bounce, a
    /// complaint, an erasure): nothing was stored or changed.
    Suppressed,
    Stored {
        subscriber_id: i64,
        /// Names of the lists now awaiting confirmation (unconfirmed, or
        /// re-joining after an unsubscribe), stamped with `issued_at`. A
        /// confirmation email is due when this is not empty.
        pending: Vec<String>,
        /// Names of single-opt-in lists joined at once.
        joined: Vec<String>,
        /// Names of lists the address was already confirmed on.
        already: Vec<String>,
    },
}

/// The subscriptions a confirmation token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub email: SubscriberEmail,
    /// List names.
    pub lists: Vec<String>,
}

/// A confirmation email taken from the queue to be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedConfirmation {
    pub subscriber_id: i64,
    /// The confirmation the sign-up asked for; [`SelfServiceStore::pending`]
    /// tells whether it still awaits (a later sign-up supersedes it).
    pub issued_at: i64,
}

/// What [`SelfServiceStore::take_confirmations`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationTurn {
    /// To be sent now, oldest first; each already counts against the limit.
    pub due: Vec<QueuedConfirmation>,
    /// When the limit allows the next one, if some are still waiting.
    pub next_slot: Option<DateTime<Utc>>,
}

/// A request to ask the unconfirmed members of a list to confirm: see
/// [`SelfServiceStore::ask_to_confirm`].
#[derive(Debug, Clone)]
pub struct AskToConfirm {
    pub list: ListSlug,
    /// Unix seconds: the confirmation each email asks for, as in [`Signup`].
    pub issued_at: i64,
    /// Unix seconds: a confirmation link issued at or after this still
    /// works, so its holder is not asked again.
    pub live_since: i64,
    /// The per-address limit: at most `per_address` confirmation emails to
    /// one address since `since`.
    pub since: DateTime<Utc>,
    pub per_address: u32,
}

/// What [`SelfServiceStore::ask_to_confirm`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// Confirmation emails queued.
    pub queued: u64,
    /// Members left alone: their confirmation link still works.
    pub awaiting: u64,
    /// Members passed over: their address had its confirmation emails for
    /// the day.
    pub over_limit: u64,
}

/// A change made on the preferences page.
#[derive(Debug, Clone)]
pub struct PreferenceChange {
    /// `Some(None)` clears the name; `None` leaves it.
    pub name: Option<Option<SubscriberName>>,
    /// Ids of (public) lists to be on: each is confirmed at once, since the
    /// signed link proves the address, and an unsubscribe-from-everything
    /// suppression is lifted (an erasure, bounce or complaint is not).
    pub on: Vec<i64>,
    /// Ids of (public) lists to leave.
    pub off: Vec<i64>,
    /// The `role` attribute (member or councillor): `Some(None)` removes
    /// it; `None` leaves it.
    pub role: Option<Option<String>>,
    pub consent: Consent,
}

#[async_trait]
pub trait SelfServiceStore: Send + Sync {
    /// Stores a sign-up: new subscriptions start unconfirmed on double-opt-in
    /// lists and confirmed on single-opt-in ones; an unconfirmed or
    /// unsubscribed subscription is (re)stamped with the new consent and
    /// `issued_at`; a confirmed one is left alone. When some subscription
    /// awaits confirmation, its confirmation email is queued in the same
    /// transaction (see [`SelfServiceStore::take_confirmations`]).
    ///
    /// Someone who unsubscribed from everything may come back: every list
    /// they ask for, single opt-in too, awaits confirmation, and their
    /// suppression stands until they confirm.
    async fn sign_up(&self, signup: &Signup) -> Result<SignupOutcome, StoreError>;
    /// The subscriptions awaiting the confirmation stamped `issued_at`, or
    /// `None` when there are none (already confirmed, superseded, or gone).
    async fn pending(
        &self,
        subscriber_id: i64,
        issued_at: i64,
    ) -> Result<Option<Pending>, StoreError>;
    /// Confirms the subscriptions awaiting confirmation `issued_at`, once:
    /// a second call returns `None`. Confirming proves the address, so it
    /// lifts an unsubscribe-from-everything suppression (never a hard
    /// bounce, a complaint or an erasure).
    async fn confirm(
        &self,
        subscriber_id: i64,
        issued_at: i64,
    ) -> Result<Option<Pending>, StoreError>;
    /// Counts confirmation emails to `email` since `since` and, when fewer
    /// than `limit`, records one more and returns true. The count survives
    /// restarts and is shared by every instance.
    async fn allow_confirmation_email(
        &self,
        email: &SubscriberEmail,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError>;
    /// Takes the oldest queued confirmation emails that the limit of `limit`
    /// per hour allows now, counting those taken since `since` (an hour
    /// ago), and stamps them taken: each is handed out once.
    async fn take_confirmations(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<ConfirmationTurn, StoreError>;
    /// How many confirmation emails wait for the hourly limit.
    async fn confirmations_waiting(&self) -> Result<i64, StoreError>;
    /// Queues a confirmation email, as a sign-up does, to each unconfirmed
    /// member of `ask.list` who can be mailed (active, not suppressed) and
    /// holds no confirmation link issued since `ask.live_since`, within the
    /// per-address limit (each counts against it). The subscription to that
    /// list is stamped with `ask.issued_at`; the consent it was added with
    /// is kept. The confirmation sender sends them within the hourly limit.
    async fn ask_to_confirm(&self, ask: &AskToConfirm) -> Result<Asked, StoreError>;
    /// A subscriber with every subscription.
    async fn subscriber_by_id(&self, id: i64) -> Result<Subscriber, StoreError>;
    /// Unsubscribes from the lists `list_ids` (those one message came
    /// through), or from everything (which also suppresses the address) with
    /// `None`. Cheap: one statement. Returns false when there is no such
    /// subscriber.
    async fn unsubscribe_by_id(
        &self,
        subscriber_id: i64,
        list_ids: Option<&[i64]>,
    ) -> Result<bool, StoreError>;
    /// Unsubscribes each `(subscriber id, list id)` in one statement, and
    /// tells for each whether the subscriber exists: the RFC 8058 endpoint
    /// writes the one-clicks that arrive together with one commit.
    async fn unsubscribe_from_lists(&self, targets: &[(i64, i64)])
    -> Result<Vec<bool>, StoreError>;
    /// Applies a change from the preferences page in one transaction.
    async fn change_preferences(
        &self,
        subscriber_id: i64,
        change: &PreferenceChange,
    ) -> Result<Subscriber, StoreError>;
}
