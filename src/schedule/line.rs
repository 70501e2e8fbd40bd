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
        let with_seconds = match fields {
            5 => format!("0 {line}"),
            6 => line.clone(),
            fields => return Err(ScheduleError::Fields { line, fields }),
        };
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
