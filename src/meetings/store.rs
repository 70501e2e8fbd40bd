//! What meetings need from storage; `crate::store` implements it.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::Meeting;
use crate::error::StoreError;

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
    /// with no meeting date published on or after the meeting — for a pasted
    /// report, when it was imported), and gives that report the meeting's
    /// date when it had none. A report covers one meeting at most. Returns
    /// the meetings linked by this call.
    async fn link_reports(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Meetings held on or before `held_by` that still have no report and
    /// whose overdue notice was not sent yet.
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError>;
    /// Records that the overdue notice for meeting `id` was sent.
    async fn mark_overdue_notified(&self, id: i64) -> Result<(), StoreError>;
}
