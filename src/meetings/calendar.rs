//! Meetings read from an iCalendar file (RFC 5545), as a party publishes
//! its calendar: each event's start day is a meeting and its SUMMARY the
//! meeting's title. Cancelled events are left out, and a day with several
//! events is one meeting, titled by the first. A file is read only within
//! limits: its size, how deep its components nest, how many events it has.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use icalendar::{CalendarDateTime, Component, DatePerhapsTime, EventStatus};

use super::NewMeeting;

/// The largest calendar read, in bytes.
pub const MAX_CALENDAR_BYTES: usize = 2 * 1024 * 1024;
/// The most events a calendar may hold.
pub const MAX_EVENTS: usize = 1000;
/// How deep components may nest: a calendar, its events, their alarms.
const MAX_DEPTH: usize = 8;
/// The longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// Why a calendar cannot be read: always the file's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("it is larger than {MAX_CALENDAR_BYTES} bytes")]
    TooLarge,
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it is not an iCalendar file (there is no BEGIN:VCALENDAR)")]
    NotACalendar,
    #[error("it is not valid iCalendar (line {line})")]
    Malformed { line: usize },
    #[error("its components nest more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error("it holds more than {MAX_EVENTS} events")]
    TooManyEvents,
    #[error("its event {event:?} has no start date (DTSTART)")]
    NoStart { event: String },
}

/// The meetings of a calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingCalendar {
    /// One a day, in order of date.
    pub meetings: Vec<NewMeeting>,
    /// How many events were left out as cancelled.
    pub cancelled: usize,
}

/// Reads the meetings of the iCalendar file `content`. An event's time is
/// its day where it is held: in its own time zone, or when given in UTC, in
/// `timezone`.
pub fn read_calendar(content: &[u8], timezone: Tz) -> Result<MeetingCalendar, CalendarError> {
    if content.len() > MAX_CALENDAR_BYTES {
        return Err(CalendarError::TooLarge);
    }
    let text = std::str::from_utf8(content).map_err(|_| CalendarError::NotUtf8)?;
    let unfolded = icalendar::parser::unfold(text.strip_prefix('\u{feff}').unwrap_or(text));
    check_shape(&unfolded)?;
    let mut roots = icalendar::parser::read_calendar_simple(&unfolded).map_err(|e| {
        let read = unfolded.len().saturating_sub(e.input.len());
        let line = unfolded.get(..read).map_or(0, |s| s.matches('\n').count()) + 1;
        CalendarError::Malformed { line }
    })?;
    let root = match roots.pop() {
        Some(root) if roots.is_empty() && root.name.as_str().eq_ignore_ascii_case("VCALENDAR") => {
            root
        }
        _ => return Err(CalendarError::NotACalendar),
    };
    let calendar = icalendar::Calendar::from(icalendar::parser::Calendar {
        properties: root.properties,
        components: root.components,
    });
    let mut days: BTreeMap<NaiveDate, Option<String>> = BTreeMap::new();
    let mut cancelled = 0;
    for event in calendar.events() {
        if event.get_status() == Some(EventStatus::Cancelled) {
            cancelled += 1;
            continue;
        }
        let held_on = match event.get_start() {
            Some(DatePerhapsTime::Date(day)) => day,
            Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at))) => {
                at.with_timezone(&timezone).date_naive()
            }
            Some(DatePerhapsTime::DateTime(CalendarDateTime::Floating(at))) => at.date(),
            Some(DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone {
                date_time, ..
            })) => date_time.date(),
            None => {
                let name = event.get_summary().or(event.get_uid()).unwrap_or_default();
                return Err(CalendarError::NoStart {
                    event: one_line(name),
                });
            }
        };
        days.entry(held_on)
            .or_insert_with(|| Some(one_line(event.get_summary()?)).filter(|t| !t.is_empty()));
    }
    Ok(MeetingCalendar {
        meetings: days
            .into_iter()
            .map(|(held_on, title)| NewMeeting { held_on, title })
            .collect(),
        cancelled,
    })
}

/// Refuses a calendar whose components nest too deep or that has too many
/// events, before it is parsed.
fn check_shape(unfolded: &str) -> Result<(), CalendarError> {
    let mut depth = 0usize;
    let mut events = 0usize;
    for line in unfolded.lines() {
        let line = line.trim_start();
        let starts = |tag: &str| {
            line.get(..tag.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(tag))
        };
        if starts("BEGIN:") {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(CalendarError::TooDeep);
            }
            if starts("BEGIN:VEVENT") {
                events += 1;
                if events > MAX_EVENTS {
                    return Err(CalendarError::TooManyEvents);
                }
            }
        } else if starts("END:") {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

/// A title on one line: runs of white space and control characters are one
/// space, and it is cut at [`MAX_TITLE_CHARS`].
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONDON: Tz = chrono_tz::Europe::London;

    fn calendar(events: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Party//NEC//EN\r\n{events}END:VCALENDAR\r\n"
        )
    }

    fn event(lines: &str) -> String {
        format!(
            "BEGIN:VEVENT\r\nUID:{}\r\n{lines}END:VEVENT\r\n",
            lines.len()
        )
    }

    fn meeting(day: &str, title: Option<&str>) -> NewMeeting {
        NewMeeting {
            held_on: day.parse().unwrap(),
            title: title.map(str::to_owned),
        }
    }

    #[test]
    fn each_events_day_is_a_meeting_titled_by_its_summary() {
        let ics = calendar(
            &[
                event("DTSTART;VALUE=DATE:20260915\r\nSUMMARY:NEC meeting\\, Brighton\r\n"),
                event("DTSTART;TZID=Europe/London:20260714T103000\r\nSUMMARY:NEC\r\n"),
                // 23:30 UTC is half past midnight the next day in London.
                event("DTSTART:20260622T233000Z\r\nSUMMARY:Away\r\n  day\r\n"),
                event("DTSTART:20261110T100000\r\n"),
            ]
            .concat(),
        );
        let read = read_calendar(ics.as_bytes(), LONDON).unwrap();
        assert_eq!(
            read.meetings,
            [
                meeting("2026-06-23", Some("Away day")),
                meeting("2026-07-14", Some("NEC")),
                meeting("2026-09-15", Some("NEC meeting, Brighton")),
                meeting("2026-11-10", None),
            ]
        );
        assert_eq!(read.cancelled, 0);
    }

    #[test]
    fn cancelled_events_are_left_out_and_a_day_counts_once() {
        let ics = calendar(
            &[
                event("DTSTART;VALUE=DATE:20260915\r\nSUMMARY:NEC\r\n"),
                event("DTSTART;VALUE=DATE:20260915\r\nSUMMARY:Dinner\r\n"),
                event("DTSTART;VALUE=DATE:20261001\r\nSTATUS:CANCELLED\r\n"),
            ]
            .concat(),
        );
        let read = read_calendar(ics.as_bytes(), LONDON).unwrap();
        assert_eq!(read.meetings, [meeting("2026-09-15", Some("NEC"))]);
        assert_eq!(read.cancelled, 1);
    }

    #[test]
    fn what_is_not_a_calendar_is_refused_with_the_reason() {
        let refused = |content: &[u8]| read_calendar(content, LONDON).unwrap_err();
        assert!(matches!(
            refused(b"<html>not a calendar</html>"),
            CalendarError::Malformed { .. }
        ));
        assert_eq!(
            refused(b"BEGIN:VCARD\r\nFN:Jo\r\nEND:VCARD\r\n"),
            CalendarError::NotACalendar
        );
        assert_eq!(refused(b"BEGIN:VCALENDAR\xff\r\n"), CalendarError::NotUtf8);
        let unended = refused(calendar("BEGIN:VEVENT\r\nSUMMARY:x\r\n").as_bytes());
        assert!(
            matches!(unended, CalendarError::Malformed { .. }),
            "{unended:?}"
        );
        assert_eq!(
            refused(calendar(&event("SUMMARY:Undated\r\n")).as_bytes()),
            CalendarError::NoStart {
                event: "Undated".into()
            }
        );
    }

    #[test]
    fn a_calendar_is_read_only_within_its_limits() {
        let refused = |content: &str| read_calendar(content.as_bytes(), LONDON).unwrap_err();
        let big = calendar(&format!("X-PAD:{}\r\n", "x".repeat(MAX_CALENDAR_BYTES)));
        assert_eq!(refused(&big), CalendarError::TooLarge);
        let deep = "BEGIN:X\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(refused(&deep), CalendarError::TooDeep);
        let many = calendar(&event("DTSTART;VALUE=DATE:20260915\r\n").repeat(MAX_EVENTS + 1));
        assert_eq!(refused(&many), CalendarError::TooManyEvents);
        let most = calendar(&event("DTSTART;VALUE=DATE:20260915\r\n").repeat(MAX_EVENTS));
        assert_eq!(
            read_calendar(most.as_bytes(), LONDON)
                .unwrap()
                .meetings
                .len(),
            1
        );
    }
}
