//! Campaigns: one report sent to the confirmed subscribers of some lists.
//!
//! A campaign's recipients are fixed when it starts: one delivery row per
//! subscriber, however many of its lists they are on. Each delivery moves
//! `queued → sending → sent | deferred | failed | skipped`; the delivery
//! engine (`crate::delivery::engine`) claims, sends and records them.

mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::lists::ListSlug;
use crate::reports::ReportRef;
use crate::subscribers::{AttributePair, Attributes};

pub use store::{CampaignStore, ClaimFrom, Claimed, Outcome, Recorded, Totals, TotalsStore};

string_enum!(
    /// Where a campaign stands.
    CampaignState {
        Draft = "draft",
        Scheduled = "scheduled",
        Held = "held",
        Sending = "sending",
        Paused = "paused",
        Done = "done",
        Cancelled = "cancelled",
    }
);

string_enum!(
    /// Where one recipient's message stands.
    DeliveryState {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Deferred = "deferred",
        Failed = "failed",
        Skipped = "skipped",
    }
);

/// What an admin asks for.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub report: ReportRef,
    pub lists: Vec<ListSlug>,
    /// Only subscribers with all these attribute values.
    pub filter: Vec<AttributePair>,
    /// When to start; `None` leaves the campaign a draft until `campaign send`.
    pub send_at: Option<DateTime<Utc>>,
    /// Replaces the subject the template makes.
    pub subject: Option<String>,
    /// Creates the campaign held: it waits for `campaign approve`, which
    /// schedules it (keeping `send_at` when that is still to come).
    pub hold: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub report_id: i64,
    pub report_slug: String,
    pub report_title: String,
    pub lists: Vec<ListSlug>,
    pub filter: Attributes,
    pub subject: Option<String>,
    pub state: CampaignState,
    pub send_at: Option<DateTime<Utc>>,
    /// Why it paused itself, or who paused it.
    pub pause_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A campaign's deliveries counted by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Deliveries whose outcome was unknown at least once (a connection lost
    /// after the data, or a crash mid-send) and that were retried: each may
    /// have reached its recipient twice.
    pub ambiguous: i64,
}

impl DeliveryCounts {
    pub fn total(&self) -> i64 {
        self.queued + self.sending + self.sent + self.deferred + self.failed + self.skipped
    }

    /// Deliveries with nothing more to do.
    pub fn finished(&self) -> i64 {
        self.sent + self.failed + self.skipped
    }
}

/// One recipient of a campaign and what became of their message, for
/// `campaign deliveries`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// The delivery's id: the listing is in this order.
    pub id: i64,
    pub email: String,
    /// The list the recipient was sent the campaign as a member of.
    pub list: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// The relay's reply: its acceptance for a sent message, else the last
    /// error (a refusal, a timeout, why it was skipped).
    pub last_reply: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The messages of a campaign sent since some moment: how many, and when
/// the first and the last of them went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentSince {
    pub count: i64,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl SentSince {
    /// Messages per second over the time they were being sent: from the
    /// first to `until` (now, for a campaign still sending) or else to the
    /// last. `None` before there is a span to measure.
    pub fn rate(&self, until: Option<DateTime<Utc>>) -> Option<f64> {
        let span = until.or(self.last)? - self.first?;
        let seconds = span.num_microseconds()? as f64 / 1e6;
        (seconds > 0.0).then(|| self.count as f64 / seconds)
    }
}

/// One recent failure, for `campaign status`.
#[derive(Debug, Clone, Serialize)]
pub struct RecentError {
    pub email: String,
    pub state: DeliveryState,
    pub error: String,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + millis).unwrap()
    }

    #[test]
    fn the_rate_is_counted_over_the_time_messages_were_being_sent_not_the_whole_minute() {
        let burst = SentSince {
            count: 7,
            first: Some(at(0)),
            last: Some(at(260)),
        };
        let rate = burst.rate(None).unwrap();
        assert!((rate - 7.0 / 0.26).abs() < 1e-9, "{rate}");
        // Still sending: the time since the last message counts too.
        let rate = burst.rate(Some(at(1_000))).unwrap();
        assert!((rate - 7.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn there_is_no_rate_without_a_span_of_time_to_measure() {
        let none = SentSince {
            count: 0,
            first: None,
            last: None,
        };
        assert_eq!(none.rate(Some(at(0))), None);
        let one = SentSince {
            count: 1,
            first: Some(at(0)),
            last: Some(at(0)),
        };
        assert_eq!(one.rate(None), None);
    }
}
