//! NEC meetings: when they were held, and which report covers each. A
//! meeting with no report some days later is overdue and the admin is told.
//!
//! Reports are linked to meetings on evidence ([`assign`]), never by
//! guessing, and a link never changes the report's own meeting date.
//! Meetings can also be read from a published iCalendar file
//! ([`read_calendar`]).

mod calendar;
mod dates;
mod linking;
mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

pub use calendar::{CalendarError, MAX_CALENDAR_BYTES, MAX_EVENTS, MeetingCalendar, read_calendar};
pub use linking::{LinkRules, MeetingLink, OPENING_CHARS, ReportFacts, assign};
pub use store::{Imported, MeetingStore};

string_enum! {
    /// Why a meeting's report is linked to it, strongest first: linked by
    /// hand; the report's own meeting date; a date in its title; published
    /// soon after the meeting; a date in its opening lines.
    LinkBasis {
        Hand = "hand",
        MeetingDate = "meeting_date",
        Title = "title",
        Published = "published",
        OpeningLines = "opening_lines",
    }
}

impl LinkBasis {
    /// Why, in words: "published soon after".
    pub fn reason(self) -> &'static str {
        match self {
            LinkBasis::Hand => "linked by hand",
            LinkBasis::MeetingDate => "its own meeting date",
            LinkBasis::Title => "the date in its title",
            LinkBasis::Published => "published soon after",
            LinkBasis::OpeningLines => "a date in its opening lines",
        }
    }
}

/// The report that covers a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedReport {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub linked_by: LinkBasis,
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

/// A meeting to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    pub held_on: NaiveDate,
    pub title: Option<String>,
}
