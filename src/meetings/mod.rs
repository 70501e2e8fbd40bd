//! NEC meetings: when they were held, and which report covers each. A
//! meeting with no report some days later is overdue and the admin is told.

mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

pub use store::MeetingStore;

/// The report that covers a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedReport {
    pub id: i64,
    pub slug: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meeting {
    pub id: i64,
    pub held_on: NaiveDate,
    pub title: Option<String>,
    pub report: Option<LinkedReport>,
    /// When the admin was told the report is overdue.
    pub overdue_notice_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
