//! What meetings need from storage; `crate::store` implements it.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

use super::{LinkRules, Meeting, NewMeeting};
use crate::error::StoreError;

/// What recording a calendar's meetings did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// Meetings recorded now.
    pub added: usize,
    /// Meetings whose day was recorded already, left as they were.
    pub known: usize,
}

#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Records a meeting; a second meeting on the same date is refused (Conflict).
    async fn add_meeting(
        &self,
        held_on: NaiveDate,
        title: Option<&str>,
    ) -> Result<Meeting, StoreError>;
    /// Records each meeting whose day is not recorded yet, all or none.
    async fn import_meetings(&self, meetings: &[NewMeeting]) -> Result<Imported, StoreError>;
    /// Every meeting, the most recent first.
    async fn meetings(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Deletes the meeting held on `held_on` and returns it (NotFound when
    /// there is none). Its report is kept.
    async fn remove_meeting(&self, held_on: NaiveDate) -> Result<Meeting, StoreError>;
    /// Links report `report` to the meeting held on `held_on` by hand,
    /// replacing the meeting's link and taking the report from a meeting it
    /// was linked to on evidence. A report linked by hand to another meeting
    /// is refused (Conflict); an unknown meeting or report is NotFound.
    async fn link_report(&self, held_on: NaiveDate, report: i64) -> Result<Meeting, StoreError>;
    /// Unlinks the report of the meeting held on `held_on`, which is then
    /// never linked to that meeting again on evidence, and returns the
    /// meeting as it was. A meeting with no report is refused (Refused).
    async fn unlink_report(&self, held_on: NaiveDate) -> Result<Meeting, StoreError>;
    /// Links reports to meetings on evidence, by [`super::assign`]: links
    /// made by hand stay, the others are worked out afresh. A report's own
    /// meeting date is never changed. Returns the meetings that got a report
    /// they did not have.
    async fn link_reports(&self, rules: LinkRules) -> Result<Vec<Meeting>, StoreError>;
    /// Meetings held on or before `held_by` that still have no report and
    /// whose overdue notice was not sent yet.
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError>;
    /// Records that the overdue notice for meeting `id` was sent.
    async fn mark_overdue_notified(&self, id: i64) -> Result<(), StoreError>;
}
