//! Which report covers which meeting, decided on evidence alone.
//!
//! A report is linked to a meeting when:
//! - its own meeting date (a Markdown file's front matter) is the meeting's;
//!   a report with a meeting date covers that meeting or none;
//! - its title names the meeting's day or month ("NEC Report – March 2017");
//! - it was published on the meeting's day or within the overdue days after
//!   it, and before the next recorded meeting;
//! - or its opening lines name the meeting's day ("The NEC met on 14 July").
//!
//! The evidence is ranked in that order, and the strongest links are made
//! first, each report covering one meeting at most. Links made by hand stay
//! as they are, and a report unlinked by hand from a meeting is never linked
//! to it again on evidence. Every other link is worked out afresh each time,
//! so a report moves to a meeting recorded later that it fits better.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use super::LinkBasis;
use super::dates::{Mention, mentions};

/// How much of a report's body is read for its opening lines, in characters.
pub const OPENING_CHARS: i32 = 600;

/// How many of a report's first lines with text are read for dates.
const OPENING_LINES: usize = 5;

/// What linking takes as given: a report is linked by its publication when
/// published within `within_days` after a meeting (NECMAIL_REPORT_OVERDUE_DAYS),
/// and days are days in `timezone`.
#[derive(Debug, Clone, Copy)]
pub struct LinkRules {
    pub within_days: u32,
    pub timezone: Tz,
}

/// What linking reads of a report.
#[derive(Debug, Clone)]
pub struct ReportFacts {
    pub id: i64,
    pub title: String,
    /// Its own meeting date, as imported.
    pub meeting_date: Option<NaiveDate>,
    /// The start of its body: [`OPENING_CHARS`] characters at most.
    pub opening: String,
    pub published_at: DateTime<Utc>,
}

/// A meeting and the report linked to it now, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingLink {
    pub id: i64,
    pub held_on: NaiveDate,
    pub report: Option<(i64, LinkBasis)>,
}

/// A report's evidence, read once.
struct Evidence {
    id: i64,
    meeting_date: Option<NaiveDate>,
    title: Vec<Mention>,
    opening: Vec<Mention>,
    published: NaiveDate,
}

impl Evidence {
    fn read(report: &ReportFacts, rules: LinkRules) -> Evidence {
        let published = report
            .published_at
            .with_timezone(&rules.timezone)
            .date_naive();
        let opening: Vec<&str> = report
            .opening
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(OPENING_LINES)
            .collect();
        Evidence {
            id: report.id,
            meeting_date: report.meeting_date,
            title: mentions(&report.title, published, true),
            opening: mentions(&opening.join("\n"), published, false),
            published,
        }
    }

    /// Why this report covers the meeting held on `held_on`, if it does;
    /// `next` is the next recorded meeting's day.
    fn basis(&self, held_on: NaiveDate, next: Option<NaiveDate>, within: u32) -> Option<LinkBasis> {
        if let Some(own) = self.meeting_date {
            return (own == held_on).then_some(LinkBasis::MeetingDate);
        }
        if self.title.iter().any(|m| m.covers(held_on)) {
            return Some(LinkBasis::Title);
        }
        let last_day = held_on.checked_add_days(Days::new(u64::from(within)));
        if self.published >= held_on
            && last_day.is_some_and(|last| self.published <= last)
            && next.is_none_or(|next| self.published < next)
        {
            return Some(LinkBasis::Published);
        }
        self.opening
            .iter()
            .any(|m| m.covers(held_on))
            .then_some(LinkBasis::OpeningLines)
    }
}

/// The strongest evidence first.
fn rank(basis: LinkBasis) -> u8 {
    match basis {
        LinkBasis::Hand => 0,
        LinkBasis::MeetingDate => 1,
        LinkBasis::Title => 2,
        LinkBasis::Published => 3,
        LinkBasis::OpeningLines => 4,
    }
}

/// The links there should be, by meeting id: those made by hand, and for
/// the other meetings the best-evidenced reports, never a pair in `refused`
/// (meeting id, report id).
pub fn assign(
    meetings: &[MeetingLink],
    reports: &[ReportFacts],
    refused: &HashSet<(i64, i64)>,
    rules: LinkRules,
) -> HashMap<i64, (i64, LinkBasis)> {
    let mut links: HashMap<i64, (i64, LinkBasis)> = meetings
        .iter()
        .filter_map(|m| match m.report {
            Some((report, LinkBasis::Hand)) => Some((m.id, (report, LinkBasis::Hand))),
            _ => None,
        })
        .collect();
    let mut taken: HashSet<i64> = links.values().map(|(report, _)| *report).collect();
    let evidence: Vec<Evidence> = reports
        .iter()
        .filter(|r| !taken.contains(&r.id))
        .map(|r| Evidence::read(r, rules))
        .collect();
    let mut days: Vec<NaiveDate> = meetings.iter().map(|m| m.held_on).collect();
    days.sort_unstable();
    let mut candidates = Vec::new();
    for meeting in meetings.iter().filter(|m| !links.contains_key(&m.id)) {
        let next = days.iter().copied().find(|d| *d > meeting.held_on);
        for report in &evidence {
            if refused.contains(&(meeting.id, report.id)) {
                continue;
            }
            if let Some(basis) = report.basis(meeting.held_on, next, rules.within_days) {
                let distance = (report.published - meeting.held_on).num_days().abs();
                candidates.push((
                    rank(basis),
                    distance,
                    meeting.held_on,
                    report.id,
                    meeting.id,
                    basis,
                ));
            }
        }
    }
    candidates.sort_unstable_by_key(|&(rank, distance, held_on, report, meeting, _)| {
        (rank, distance, held_on, report, meeting)
    });
    for (_, _, _, report, meeting, basis) in candidates {
        if !links.contains_key(&meeting) && !taken.contains(&report) {
            links.insert(meeting, (report, basis));
            taken.insert(report);
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: LinkRules = LinkRules {
        within_days: 14,
        timezone: chrono_tz::Europe::London,
    };

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn meeting(id: i64, held_on: &str) -> MeetingLink {
        MeetingLink {
            id,
            held_on: date(held_on),
            report: None,
        }
    }

    /// An undated report with no date in its title or text, published at
    /// noon on `published`.
    fn report(id: i64, published: &str) -> ReportFacts {
        ReportFacts {
            id,
            title: "Notes from the NEC".into(),
            meeting_date: None,
            opening: "## Leader's Report\n\nThe leader spoke.\n".into(),
            published_at: date(published).and_hms_opt(12, 0, 0).unwrap().and_utc(),
        }
    }

    fn links(meetings: &[MeetingLink], reports: &[ReportFacts]) -> Vec<(i64, i64, LinkBasis)> {
        let mut found: Vec<_> = assign(meetings, reports, &HashSet::new(), RULES)
            .into_iter()
            .map(|(m, (r, basis))| (m, r, basis))
            .collect();
        found.sort_unstable_by_key(|&(m, r, _)| (m, r));
        found
    }

    #[test]
    fn an_undated_report_covers_only_the_meeting_it_was_published_soon_after() {
        let meetings = [meeting(1, "2026-06-16"), meeting(2, "2026-07-14")];
        let reports = [report(10, "2026-06-23"), report(20, "2026-09-22")];
        assert_eq!(links(&meetings, &reports), [(1, 10, LinkBasis::Published)]);

        let with_september = [
            meetings[0].clone(),
            meetings[1].clone(),
            meeting(3, "2026-09-15"),
        ];
        assert_eq!(
            links(&with_september, &reports),
            [(1, 10, LinkBasis::Published), (3, 20, LinkBasis::Published)]
        );
    }

    #[test]
    fn a_report_published_after_the_next_meeting_is_not_the_earlier_ones() {
        let meetings = [meeting(1, "2026-07-14"), meeting(2, "2026-07-20")];
        assert_eq!(
            links(&meetings, &[report(10, "2026-07-22")]),
            [(2, 10, LinkBasis::Published)]
        );
        assert!(
            links(&meetings[..1], &[report(10, "2026-07-29")]).is_empty(),
            "15 days on"
        );
        assert!(
            links(&meetings[..1], &[report(10, "2026-07-13")]).is_empty(),
            "before it"
        );
    }

    #[test]
    fn a_reports_own_meeting_date_links_it_to_that_meeting_or_to_none() {
        let meetings = [meeting(1, "2026-07-14"), meeting(2, "2026-09-15")];
        let dated = ReportFacts {
            meeting_date: Some(date("2026-09-15")),
            ..report(10, "2026-07-20")
        };
        assert_eq!(
            links(&meetings, std::slice::from_ref(&dated)),
            [(2, 10, LinkBasis::MeetingDate)]
        );
        assert!(links(&meetings[..1], &[dated]).is_empty());
    }

    #[test]
    fn a_date_in_the_title_outranks_publication_and_publication_outranks_opening_lines() {
        let meetings = [meeting(1, "2026-07-14"), meeting(2, "2026-09-15")];
        let late_july = ReportFacts {
            title: "NEC Report – July 2026".into(),
            ..report(10, "2026-09-20")
        };
        let september = ReportFacts {
            opening: "Since our meeting on 14 July the party has grown.\n".into(),
            ..report(20, "2026-09-22")
        };
        assert_eq!(
            links(&meetings, &[late_july.clone(), september.clone()]),
            [(1, 10, LinkBasis::Title), (2, 20, LinkBasis::Published)]
        );
        assert_eq!(
            links(&meetings, std::slice::from_ref(&september)),
            [(2, 20, LinkBasis::Published)],
            "the earlier meeting it mentions is not its own"
        );
        assert_eq!(
            links(&meetings[..1], &[september]),
            [(1, 20, LinkBasis::OpeningLines)],
            "until its own meeting is recorded"
        );
    }

    #[test]
    fn links_by_hand_stay_and_refused_pairs_are_never_made() {
        let mut meetings = [meeting(1, "2026-06-16"), meeting(2, "2026-07-14")];
        meetings[1].report = Some((10, LinkBasis::Hand));
        let reports = [report(10, "2026-06-23"), report(20, "2026-06-24")];
        assert_eq!(
            links(&meetings, &reports),
            [(1, 20, LinkBasis::Published), (2, 10, LinkBasis::Hand)]
        );

        let refused = HashSet::from([(1, 20)]);
        let found = assign(&meetings, &reports, &refused, RULES);
        assert_eq!(found.len(), 1);
        assert_eq!(found[&2], (10, LinkBasis::Hand));
    }
}
