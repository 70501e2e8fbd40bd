//! What people do for themselves through the web pages: sign up (double
//! opt-in), confirm, unsubscribe, and change their preferences. Each
//! operation names the subscriber by the id a signed token carried, and
//! shares its SQL between the backends through [`impl_self_service_store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Attributes, Consent, Subscriber, SubscriberEmail, SubscriberName};
use crate::lists::ListSlug;
use crate::store::StoreError;

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
    /// The address is suppressed: nothing was stored or changed.
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
    pub consent: Consent,
}

#[async_trait]
pub trait SelfServiceStore: Send + Sync {
    /// Stores a sign-up: new subscriptions start unconfirmed on double-opt-in
    /// lists and confirmed on single-opt-in ones; an unconfirmed or
    /// unsubscribed subscription is (re)stamped with the new consent and
    /// `issued_at`; a confirmed one is left alone.
    async fn sign_up(&self, signup: &Signup) -> Result<SignupOutcome, StoreError>;
    /// The subscriptions awaiting the confirmation stamped `issued_at`, or
    /// `None` when there are none (already confirmed, superseded, or gone).
    async fn pending(&self, subscriber_id: i64, issued_at: i64)
    -> Result<Option<Pending>, StoreError>;
    /// Confirms the subscriptions awaiting confirmation `issued_at`, once:
    /// a second call returns `None`.
    async fn confirm(&self, subscriber_id: i64, issued_at: i64)
    -> Result<Option<Pending>, StoreError>;
    /// Counts confirmation emails to `email` since `since` and, when fewer
    /// than `limit`, records one more and returns true. The count survives
    /// restarts and is shared by every instance.
    async fn allow_confirmation_email(
        &self,
        email: &SubscriberEmail,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError>;
    /// A subscriber with every subscription.
    async fn subscriber_by_id(&self, id: i64) -> Result<Subscriber, StoreError>;
    /// Unsubscribes from list `list_id`, or from everything (which also
    /// suppresses the address) with `None`. Cheap: the RFC 8058 one-click
    /// endpoint calls it. Returns false when there is no such subscriber.
    async fn unsubscribe_by_id(
        &self,
        subscriber_id: i64,
        list_id: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Applies a change from the preferences page in one transaction.
    async fn change_preferences(
        &self,
        subscriber_id: i64,
        change: &PreferenceChange,
    ) -> Result<Subscriber, StoreError>;
}

/// Implements [`SelfServiceStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>` and which implements [`crate::store::Dialect`].
macro_rules! impl_self_service_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::subscribers::SelfServiceStore for $store {
            async fn sign_up(
                &self,
                _signup: &$crate::subscribers::Signup,
            ) -> Result<$crate::subscribers::SignupOutcome, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn pending(
                &self,
                _subscriber_id: i64,
                _issued_at: i64,
            ) -> Result<Option<$crate::subscribers::Pending>, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn confirm(
                &self,
                _subscriber_id: i64,
                _issued_at: i64,
            ) -> Result<Option<$crate::subscribers::Pending>, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn allow_confirmation_email(
                &self,
                _email: &$crate::subscribers::SubscriberEmail,
                _since: chrono::DateTime<chrono::Utc>,
                _limit: u32,
            ) -> Result<bool, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn subscriber_by_id(
                &self,
                _id: i64,
            ) -> Result<$crate::subscribers::Subscriber, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn unsubscribe_by_id(
                &self,
                _subscriber_id: i64,
                _list_id: Option<i64>,
            ) -> Result<bool, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn change_preferences(
                &self,
                _subscriber_id: i64,
                _change: &$crate::subscribers::PreferenceChange,
            ) -> Result<$crate::subscribers::Subscriber, $crate::store::StoreError> {
                todo!("SKELETON")
            }
        }
    };
}

pub(crate) use impl_self_service_store;
