//! What subscribers, subscriptions and suppressions need from storage;
//! `crate::store` implements it.

use async_trait::async_trait;

use super::import::{ImportBatch, ImportCounts, ImportJob};
use super::{
    NewSubscriber, SearchCursor, Subscriber, SubscriberEmail, SubscriberFilter, SubscriberUpdate,
    Suppression,
};
use crate::error::StoreError;
use crate::lists::ListSlug;

#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Adds a subscriber to lists, or adds an existing one to more lists and
    /// merges the name and attributes given. A suppressed address is refused.
    async fn add_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber, StoreError>;
    async fn subscriber(&self, email: &SubscriberEmail) -> Result<Subscriber, StoreError>;
    /// One page of the subscribers that match, in id order, after `after_id`.
    async fn subscribers(
        &self,
        filter: &SubscriberFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError>;
    /// One page of the subscribers whose address or name starts with
    /// `prefix` (in any case) and who match `filter`, after `after`: in the
    /// order of the text that matched (lower-cased, byte by byte), then of
    /// id, each with its place in that order. One whose address and name
    /// both match comes twice. An index answers it.
    async fn search_subscribers(
        &self,
        prefix: &str,
        filter: &SubscriberFilter,
        after: Option<&SearchCursor>,
        limit: i64,
    ) -> Result<Vec<(SearchCursor, Subscriber)>, StoreError>;
    async fn update_subscriber(
        &self,
        email: &SubscriberEmail,
        update: &SubscriberUpdate,
    ) -> Result<Subscriber, StoreError>;
    /// Unsubscribes from one list, or from every list and suppresses the
    /// address so that no import adds it again.
    async fn unsubscribe(
        &self,
        email: &SubscriberEmail,
        list: Option<&ListSlug>,
    ) -> Result<Subscriber, StoreError>;
    async fn set_blocklisted(
        &self,
        email: &SubscriberEmail,
        blocklisted: bool,
    ) -> Result<Subscriber, StoreError>;
    /// Deletes a subscriber. With `erase`, the address's suppression hash is
    /// kept (even when no subscriber was stored) so it is never added again.
    /// Returns whether a subscriber was deleted.
    async fn remove_subscriber(
        &self,
        email: &SubscriberEmail,
        erase: bool,
    ) -> Result<bool, StoreError>;
    async fn suppression(&self, email: &SubscriberEmail)
    -> Result<Option<Suppression>, StoreError>;
    /// Every attribute key that any subscriber has, sorted.
    async fn attribute_keys(&self) -> Result<Vec<String>, StoreError>;
    /// Writes one batch of imported rows in one transaction.
    async fn import_batch(&self, batch: &ImportBatch) -> Result<ImportCounts, StoreError>;
}

/// The web admin's imports of spooled uploads, recorded so that the daemon
/// resumes one a restart interrupted. A batch advances its import's record
/// through [`SubscriberStore::import_batch`].
#[async_trait]
pub trait ImportJobStore: Send + Sync {
    /// Records `job` as running; false, recording nothing, when another
    /// import is running.
    async fn start_import(&self, job: &ImportJob) -> Result<bool, StoreError>;
    async fn import_job(&self, token: &str) -> Result<Option<ImportJob>, StoreError>;
    /// The imports still running, or left running by a process that stopped.
    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError>;
    /// Hands a running import from the process `from` to `to`; false when
    /// `from` no longer has it.
    async fn take_over_import(&self, token: &str, from: &str, to: &str)
    -> Result<bool, StoreError>;
    /// Marks a running import done, or failed with `error`.
    async fn finish_import(&self, token: &str, error: Option<&str>) -> Result<(), StoreError>;
    /// Forgets the finished imports but the newest `keep`, returning them
    /// (so that their files can be deleted).
    async fn forget_imports(&self, keep: i64) -> Result<Vec<ImportJob>, StoreError>;
}
