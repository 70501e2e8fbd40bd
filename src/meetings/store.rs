//! Storage of meetings, shared by both backends through [`impl_meeting_store`].

use async_trait::async_trait;
use chrono::NaiveDate;

use super::Meeting;
use crate::store::StoreError;

#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Records a meeting; a second meeting on the same date is refused (Conflict).
    async fn add_meeting(
        &self,
        held_on: NaiveDate,
        title: Option<&str>,
    ) -> Result<Meeting, StoreError>;
    /// Every meeting, the most recent first.
    async fn meetings(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Links meetings that have no report to the report that covers them (a
    /// report whose meeting date is the meeting's; otherwise the first report
    /// imported on or after the meeting), and gives that report the meeting's
    /// date when it had none. Returns the meetings linked by this call.
    async fn link_reports(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Meetings held on or before `held_by` that still have no report and
    /// whose overdue notice was not sent yet.
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError>;
    /// Records that the overdue notice for meeting `id` was sent.
    async fn mark_overdue_notified(&self, id: i64) -> Result<(), StoreError>;
}

/// Implements [`MeetingStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>`.
macro_rules! impl_meeting_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::meetings::MeetingStore for $store {
            async fn add_meeting(
                &self,
                _held_on: chrono::NaiveDate,
                _title: Option<&str>,
            ) -> Result<$crate::meetings::Meeting, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn meetings(&self) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn link_reports(&self) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn overdue_meetings(
                &self,
                _held_by: chrono::NaiveDate,
            ) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                todo!("SKELETON")
            }

            async fn mark_overdue_notified(&self, _id: i64) -> Result<(), $crate::store::StoreError> {
                todo!("SKELETON")
            }
        }
    };
}

pub(crate) use impl_meeting_store;
