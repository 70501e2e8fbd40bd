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

/// One recent failure, for `campaign status`.
#[derive(Debug, Clone, Serialize)]
pub struct RecentError {
    pub email: String,
    pub state: DeliveryState,
    pub error: String,
    pub at: DateTime<Utc>,
}
