//! Campaigns: one report sent to the confirmed subscribers of some lists.
//!
//! A campaign's recipients are fixed when it starts: one delivery row per
//! subscriber, however many of its lists they are on. Each delivery moves
//! `queued → sending → sent | deferred | failed | skipped`; the delivery
//! engine (`crate::delivery::engine`) claims, sends and records them. A
//! campaign with nobody to send to does not start: [`Start::NoRecipients`]
//! says why, so that it is never done, nor in the archive, having sent nothing.

mod prepare;
mod progress;
mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::lists::ListSlug;
use crate::reports::ReportRef;
use crate::subscribers::{AttributePair, Attributes};

pub use prepare::{CreateError, MAX_SUBJECT, create, parse_at};
pub use progress::{Progress, human_duration, progress};
pub use store::{
    AlsoList, CampaignStore, ClaimFrom, Claimed, Outcome, Recorded, Totals, TotalsStore,
};

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
    /// Lets it send a report that is only an excerpt of its post.
    pub allow_excerpt: bool,
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
    /// True when its report is only an excerpt of its post.
    pub report_excerpt: bool,
    /// True when it was created to send an excerpt all the same.
    pub allow_excerpt: bool,
}

impl Campaign {
    /// Why it may not start: its report is only an excerpt of its post, and
    /// it was not allowed to send one.
    pub fn excerpt_refusal(&self) -> Option<String> {
        (self.report_excerpt && !self.allow_excerpt).then(|| {
            excerpt_refusal(
                &self.report_slug,
                &format!(
                    "cancel campaign {} and create it again with --allow-excerpt",
                    self.id
                ),
            )
        })
    }
}

/// Why a campaign of the excerpt `slug` is refused, ending with how else
/// to send the excerpt as it is (`otherwise`).
pub fn excerpt_refusal(slug: &str, otherwise: &str) -> String {
    format!(
        "report {slug} is only an excerpt of its post, which would go out cut off: give it the \
         full post with `necmail report replace {slug} URL-OR-FILE`, or {otherwise} to send \
         the excerpt as it is"
    )
}

/// What starting a campaign did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// It is sending to this many recipients.
    Sending(i64),
    /// Nobody would get it, so it was left as it was.
    NoRecipients(NoRecipients),
}

/// Who is on one target list of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReach {
    pub slug: ListSlug,
    pub confirmed: i64,
    pub unconfirmed: i64,
}

/// Why a campaign has nobody to send to: its target lists, in order, and
/// its filter. Displayed, it is the reason for the admin, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRecipients {
    pub lists: Vec<ListReach>,
    pub filter: Attributes,
}

impl std::fmt::Display for NoRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let confirmed: i64 = self.lists.iter().map(|l| l.confirmed).sum();
        let slugs = |lists: Vec<&ListReach>| {
            let slugs: Vec<&str> = lists.iter().map(|l| l.slug.as_str()).collect();
            slugs.join(" or ")
        };
        if confirmed > 0 {
            let on = slugs(self.lists.iter().filter(|l| l.confirmed > 0).collect());
            let filter: Vec<String> = self
                .filter
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let filter = filter.join(" ");
            return match (confirmed, filter.is_empty()) {
                (1, true) => write!(
                    f,
                    "the 1 confirmed subscriber on {on} is blocked or suppressed"
                ),
                (n, true) => write!(
                    f,
                    "the {n} confirmed subscribers on {on} are all blocked or suppressed"
                ),
                (1, false) => write!(
                    f,
                    "the 1 confirmed subscriber on {on} does not match {filter}, or is blocked \
                     or suppressed"
                ),
                (n, false) => write!(
                    f,
                    "none of the {n} confirmed subscribers on {on} matches {filter}, or those \
                     who do are blocked or suppressed"
                ),
            };
        }
        let waiting: Vec<&ListReach> = self.lists.iter().filter(|l| l.unconfirmed > 0).collect();
        if waiting.is_empty() {
            return write!(f, "nobody is on {}", slugs(self.lists.iter().collect()));
        }
        let unconfirmed: i64 = waiting.iter().map(|l| l.unconfirmed).sum();
        let commands: Vec<String> = waiting
            .iter()
            .map(|l| format!("`necmail list confirm-pending {}`", l.slug))
            .collect();
        write!(
            f,
            "nobody on {} is confirmed: {unconfirmed} {} unconfirmed; send them a confirmation \
             with {}",
            slugs(self.lists.iter().collect()),
            if unconfirmed == 1 { "is" } else { "are" },
            commands.join(" and ")
        )
    }
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
    /// Sent deliveries that bounced for good (inbound mail), soft bounces
    /// apart.
    pub bounced: i64,
    /// Sent deliveries whose recipient complained (an ARF abuse report).
    pub complained: i64,
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

/// A campaign's deliveries counted by state alone, which an index answers:
/// cheap enough for every campaign of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub sent: i64,
    pub failed: i64,
    pub total: i64,
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

    fn reach(slug: &str, confirmed: i64, unconfirmed: i64) -> ListReach {
        ListReach {
            slug: ListSlug::parse(slug).unwrap(),
            confirmed,
            unconfirmed,
        }
    }

    #[test]
    fn no_recipients_says_who_is_missing_and_what_to_do() {
        let why = |lists, filter: &[&str]| {
            NoRecipients {
                lists,
                filter: filter.iter().map(|a| a.parse().unwrap()).collect(),
            }
            .to_string()
        };
        assert_eq!(
            why(vec![reach("members", 0, 6)], &[]),
            "nobody on members is confirmed: 6 are unconfirmed; send them a confirmation with \
             `necmail list confirm-pending members`"
        );
        assert_eq!(
            why(vec![reach("members", 0, 1), reach("staff", 0, 0)], &[]),
            "nobody on members or staff is confirmed: 1 is unconfirmed; send them a \
             confirmation with `necmail list confirm-pending members`"
        );
        assert_eq!(
            why(vec![reach("members", 0, 0)], &[]),
            "nobody is on members"
        );
        assert_eq!(
            why(vec![reach("members", 2, 0)], &[]),
            "the 2 confirmed subscribers on members are all blocked or suppressed"
        );
        assert_eq!(
            why(vec![reach("members", 3, 1)], &["role=councillor"]),
            "none of the 3 confirmed subscribers on members matches role=councillor, or those \
             who do are blocked or suppressed"
        );
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
