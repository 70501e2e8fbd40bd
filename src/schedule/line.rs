//! Cron schedules: the usual 5-field crontab lines (minute hour day month
//! weekday), or 6 fields with seconds first, evaluated in one time zone.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Why a line is not a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "{line:?} has {fields} fields; a schedule has 5 (minute hour day month weekday), \
         or 6 with seconds first"
    )]
    Fields { line: String, fields: usize },
    #[error("{line:?} is not a cron schedule: {reason}")]
    NotCron { line: String, reason: String },
    #[error("{line:?} never fires")]
    NeverFires { line: String },
}

/// A parsed cron line and the time zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    line: String,
    cron: cron::Schedule,
    timezone: Tz,
}

/// The names of the days, from crontab's day 0.
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A weekday field as crontab reads it (0 to 7, 0 and 7 both Sunday), in
/// the `cron` crate's terms, which number the days 1 (Sunday) to 7: every
/// number, range and step of numbers becomes the list of the days' names.
/// `*`, `*/2` and names mean the same to both, and are kept.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let day = |text: &str| match text.parse::<usize>() {
        Ok(n) if n <= 7 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a weekday: use 0 to 7 (0 and 7 are Sunday) or SUN to SAT"
        )),
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if range == "*" || range == "?" || !range.starts_with(|c: char| c.is_ascii_digit()) {
            items.push(item.to_owned());
            continue;
        }
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (day(first)?, day(last)?),
            None if step.is_some() => (day(range)?, 6),
            None => (day(range)?, day(range)?),
        };
        let step = match step {
            Some(step) => step
                .parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{step:?} is not a step"))?,
            None => 1,
        };
        if first > last {
            return Err(format!("the weekdays {range:?} run backwards"));
        }
        items.extend(
            (first..=last)
                .step_by(step)
                .map(|n| WEEKDAYS[n % 7].to_owned()),
        );
    }
    let mut kept: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    Ok(kept.join(","))
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line && self.timezone == other.timezone
    }
}

impl Schedule {
    /// Parses `line`: 5 fields (`0 9 * * *`) or 6 with seconds (`*/5 * * * * *`).
    pub fn parse(line: &str, timezone: Tz) -> Result<Self, ScheduleError> {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = line.split(' ').filter(|f| !f.is_empty()).count();
        let mut cron_fields: Vec<String> = match fields {
            5 => std::iter::once("0")
                .chain(line.split(' '))
                .map(str::to_owned)
                .collect(),
            6 => line.split(' ').map(str::to_owned).collect(),
            fields => return Err(ScheduleError::Fields { line, fields }),
        };
        cron_fields[5] = match crontab_weekdays(&cron_fields[5]) {
            Ok(weekdays) => weekdays,
            Err(reason) => return Err(ScheduleError::NotCron { line, reason }),
        };
        let with_seconds = cron_fields.join(" ");
        let cron = match cron::Schedule::from_str(&with_seconds) {
            Ok(cron) => cron,
            Err(e) => {
                let reason = e.to_string();
                return Err(ScheduleError::NotCron { line, reason });
            }
        };
        if cron.upcoming(timezone).next().is_none() {
            return Err(ScheduleError::NeverFires { line });
        }
        Ok(Schedule {
            line,
            cron,
            timezone,
        })
    }

    /// The line as written (whitespace normalised), for logs.
    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first time the schedule fires strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&t.with_timezone(&self.timezone))
            .next()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The latest time the schedule fired after `since` and no later than
    /// `now`: the one tick to run after downtime, however many were missed.
    pub fn latest_between(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        // cron looks strictly before the time it is given: a nanosecond
        // later makes a tick at `now` itself count.
        let tz_now = (now + chrono::Duration::nanoseconds(1)).with_timezone(&self.timezone);
        let since = since.with_timezone(&self.timezone);
        self.cron
            .after(&tz_now)
            .next_back()
            .filter(|t| *t > since)
            .map(|t| t.with_timezone(&Utc))
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.line, self.timezone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_field_lines_fire_on_the_minute_in_the_schedules_time_zone() {
        let s = Schedule::parse("0 9 * * *", chrono_tz::Europe::London).unwrap();
        // 9:00 in London is 8:00 UTC in summer and 9:00 UTC in winter.
        assert_eq!(
            s.next_after(at("2026-07-01T10:00:00Z")),
            Some(at("2026-07-02T08:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-12-01T10:00:00Z")),
            Some(at("2026-12-02T09:00:00Z"))
        );
    }

    #[test]
    fn six_field_lines_have_seconds_first() {
        let s = Schedule::parse("*/5 * * * * *", chrono_tz::UTC).unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:01Z")),
            Some(at("2026-01-01T00:00:05Z"))
        );
    }

    #[test]
    fn weekdays_are_numbered_as_crontab_numbers_them() {
        let next = |line: &str, after: &str| {
            Schedule::parse(line, chrono_tz::UTC)
                .unwrap()
                .next_after(at(after))
                .unwrap()
        };
        // 2 December 2026 is a Wednesday.
        let wednesday = "2026-12-02T10:00:00Z";
        assert_eq!(
            next("0 9 * * 1", wednesday),
            at("2026-12-07T09:00:00Z"),
            "Monday"
        );
        assert_eq!(next("0 9 * * MON", wednesday), at("2026-12-07T09:00:00Z"));
        assert_eq!(
            next("0 9 * * 0", wednesday),
            at("2026-12-06T09:00:00Z"),
            "Sunday"
        );
        assert_eq!(
            next("0 9 * * 7", wednesday),
            at("2026-12-06T09:00:00Z"),
            "Sunday"
        );
        assert_eq!(
            next("0 9 * * 6", wednesday),
            at("2026-12-05T09:00:00Z"),
            "Saturday"
        );
        assert_eq!(
            next("0 0 9 * * 3", wednesday),
            at("2026-12-09T09:00:00Z"),
            "6 fields"
        );
        let friday = "2026-12-04T10:00:00Z";
        assert_eq!(
            next("0 9 * * 1-5", friday),
            at("2026-12-07T09:00:00Z"),
            "weekdays"
        );
        assert_eq!(next("0 9 * * 5-7", friday), at("2026-12-05T09:00:00Z"));
        assert_eq!(next("0 9 * * 0,6", wednesday), at("2026-12-05T09:00:00Z"));
        assert_eq!(next("0 9 * * 1-5/2", wednesday), at("2026-12-04T09:00:00Z"));
        assert_eq!(
            next("0 9 * * */2", wednesday),
            at("2026-12-03T09:00:00Z"),
            "Sun Tue Thu Sat"
        );
    }

    #[test]
    fn weekdays_outside_0_to_7_are_refused() {
        for bad in ["0 9 * * 8", "0 9 * * 5-2", "0 9 * * 1/0"] {
            let err = Schedule::parse(bad, chrono_tz::UTC).unwrap_err();
            assert!(matches!(err, ScheduleError::NotCron { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn lines_that_are_not_schedules_are_refused_with_the_reason() {
        for bad in ["", "every day", "0 9 * *", "61 * * * *", "0 9 * * * * * *"] {
            let err = Schedule::parse(bad, chrono_tz::UTC).unwrap_err();
            assert!(
                matches!(
                    err,
                    ScheduleError::Fields { .. } | ScheduleError::NotCron { .. }
                ),
                "{bad}: {err}"
            );
            assert!(err.to_string().starts_with(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn after_downtime_only_the_latest_missed_tick_is_due() {
        let s = Schedule::parse("*/15 * * * *", chrono_tz::UTC).unwrap();
        let since = at("2026-01-01T00:00:00Z");
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 2, 7, 0).unwrap();
        assert_eq!(
            s.latest_between(since, now),
            Some(at("2026-01-01T02:00:00Z"))
        );
        assert_eq!(s.latest_between(at("2026-01-01T02:00:00Z"), now), None);
    }

    #[test]
    fn a_tick_at_the_very_moment_asked_about_is_due() {
        let s = Schedule::parse("0 9 * * *", chrono_tz::UTC).unwrap();
        let since = at("2026-01-01T09:00:00Z");
        assert_eq!(
            s.latest_between(since, at("2026-01-02T09:00:00Z")),
            Some(at("2026-01-02T09:00:00Z"))
        );
        assert_eq!(
            s.latest_between(since, at("2026-01-02T08:59:59.999Z")),
            None
        );
    }
}
