//! What the office does to a person by hand, from the web admin or the
//! command line, and the event each leaves in the record, so that a person's
//! history reads the same whichever way the office worked.

use super::{EventKind, EventSource, FeedbackStore, NewEvent};
use crate::error::StoreError;
use crate::lists::{ListSlug, ListStore};
use crate::subscribers::{Subscriber, SubscriberEmail, SubscriberStore};

/// The stores an admin's action touches, and where the action came from:
/// [`EventSource::Admin`] for the web admin, [`EventSource::Cli`] for
/// `necmail …`.
pub struct Office<'a> {
    pub subscribers: &'a dyn SubscriberStore,
    pub lists: &'a dyn ListStore,
    pub feedback: &'a dyn FeedbackStore,
    pub source: EventSource,
}

impl Office<'_> {
    /// Unsubscribes `email` from `list`, or from every list (which also
    /// suppresses the address), and records the leave.
    pub async fn unsubscribe(
        &self,
        email: &SubscriberEmail,
        list: Option<&ListSlug>,
    ) -> Result<Subscriber, StoreError> {
        let subscriber = self.subscribers.unsubscribe(email, list).await?;
        let list_id = match list {
            Some(slug) => Some(self.lists.list(slug).await?.id),
            None => None,
        };
        let reason = match self.source {
            EventSource::Cli => "unsubscribed on the command line",
            _ => "unsubscribed by the office",
        };
        self.record(EventKind::Leave, &subscriber.email, list_id, reason)
            .await?;
        Ok(subscriber)
    }

    /// Records that `subscriber`, who had unsubscribed from everything, was
    /// added again to `lists` at their request: a join for each list.
    pub async fn resubscribed(
        &self,
        subscriber: &Subscriber,
        lists: &[ListSlug],
    ) -> Result<(), StoreError> {
        for slug in lists {
            let list_id = self.lists.list(slug).await?.id;
            let reason = "added again at their request";
            self.record(EventKind::Join, &subscriber.email, Some(list_id), reason)
                .await?;
        }
        Ok(())
    }

    async fn record(
        &self,
        kind: EventKind,
        email: &SubscriberEmail,
        list_id: Option<i64>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let event = NewEvent {
            kind,
            source: self.source,
            email,
            list_id,
            delivery: None,
            status: None,
            reason,
        };
        self.feedback.record_event(&event).await
    }
}
