//! `necmail meeting …`: record NEC meetings and see which have a report.

use std::io::Read;

use chrono::{NaiveDate, Utc};
use clap::Subcommand;

use super::reports::fetch_error;
use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::meetings::{MAX_CALENDAR_BYTES, Meeting, read_calendar};
use crate::reports::ReportRef;
use crate::reports::feeds::{Fetched, Fetcher, parse_url};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum MeetingCommand {
    /// Record a meeting, so that `serve` warns when its report is late.
    Add {
        /// The day it was held, as YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        date: NaiveDate,
        /// A name for it, e.g. "Emergency meeting".
        #[arg(long)]
        title: Option<String>,
    },
    /// Record the meetings of an iCalendar file or URL (.ics): each event's
    /// day is a meeting, its summary the title. Days already recorded are
    /// left as they are, so importing again adds only new meetings.
    Import {
        /// A file, or an http(s) URL of the published calendar.
        input: String,
    },
    /// Show every meeting, the latest first, with the report that covers it
    /// and why it was linked.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Forget a meeting. Its report is kept.
    Rm {
        /// The day it was held, as YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        date: NaiveDate,
    },
    /// Link a report to a meeting by hand, in place of any report linked to
    /// it on evidence.
    Link {
        /// The day the meeting was held, as YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        meeting: NaiveDate,
        /// The report's id or slug.
        report: ReportRef,
    },
    /// Unlink a meeting's report; it is never linked to that meeting again
    /// unless by `meeting link`.
    Unlink {
        /// The day the meeting was held, as YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        meeting: NaiveDate,
    },
}

pub(super) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date like 2026-03-21"))
}

pub async fn run(command: MeetingCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        MeetingCommand::Add { date, title } => {
            let title = title.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
            if title
                .as_deref()
                .is_some_and(|t| t.chars().any(char::is_control))
            {
                return Err(CliError::BadInput("the title must be one line".into()));
            }
            let meeting = store.add_meeting(date, title.as_deref()).await?;
            println!("recorded the meeting of {date}");
            link_and_tell(store, config, Some(meeting.id)).await
        }
        MeetingCommand::Import { input } => {
            let content = read_input(&input, config).await?;
            let calendar = read_calendar(&content, config.timezone)
                .map_err(|e| CliError::BadInput(format!("cannot import {input}: {e}")))?;
            let imported = store.import_meetings(&calendar.meetings).await?;
            let cancelled = match calendar.cancelled {
                0 => String::new(),
                n => format!("; {} left out as cancelled", count(n, "event")),
            };
            println!(
                "imported {input}: added {}, {} already known{cancelled}",
                count(imported.added, "meeting"),
                imported.known
            );
            link_and_tell(store, config, None).await
        }
        MeetingCommand::Ls { json } => {
            store.link_reports(config.link_rules()).await?;
            let meetings = store.meetings().await?;
            if json {
                return Ok(output::json(&meetings)?);
            }
            let overdue_by = Utc::now().with_timezone(&config.timezone).date_naive()
                - chrono::Days::new(u64::from(config.report_overdue_days));
            let rows: Vec<Vec<String>> = meetings
                .iter()
                .map(|m| {
                    let (report, linked_by) = match &m.report {
                        Some(report) => (report.slug.clone(), report.linked_by.to_string()),
                        None if m.held_on <= overdue_by => ("overdue".to_owned(), String::new()),
                        None => ("no report yet".to_owned(), String::new()),
                    };
                    vec![
                        m.held_on.to_string(),
                        m.title.clone().unwrap_or_default(),
                        report,
                        linked_by,
                    ]
                })
                .collect();
            Ok(output::table(
                &["DATE", "TITLE", "REPORT", "LINKED BY"],
                &rows,
            )?)
        }
        MeetingCommand::Rm { date } => {
            let removed = store.remove_meeting(date).await?;
            match removed.report {
                Some(report) => println!(
                    "removed the meeting of {date}; its report {} is kept",
                    report.slug
                ),
                None => println!("removed the meeting of {date}"),
            }
            Ok(())
        }
        MeetingCommand::Link { meeting, report } => {
            let report = store.report(&report).await?;
            store.link_report(meeting, report.id).await?;
            println!("linked report {} to the meeting of {meeting}", report.slug);
            link_and_tell(store, config, None).await
        }
        MeetingCommand::Unlink { meeting } => {
            let was = store.unlink_report(meeting).await?;
            if let Some(report) = &was.report {
                println!(
                    "unlinked report {} from the meeting of {meeting}",
                    report.slug
                );
            }
            link_and_tell(store, config, None).await
        }
    }
}

/// Links reports to meetings on evidence and says which meetings got a
/// report; of those, only meeting `only` when given.
async fn link_and_tell(store: &dyn Store, config: &Config, only: Option<i64>) -> CliResult {
    let linked = store.link_reports(config.link_rules()).await?;
    for meeting in linked.iter().filter(|m| only.is_none_or(|id| m.id == id)) {
        if let Meeting {
            report: Some(report),
            ..
        } = meeting
        {
            println!(
                "linked report {} to the meeting of {}: {}",
                report.slug,
                meeting.held_on,
                report.linked_by.reason()
            );
        }
    }
    Ok(())
}

/// The calendar file, or the body fetched from the URL, within the size
/// limit of a calendar.
async fn read_input(input: &str, config: &Config) -> Result<Vec<u8>, CliError> {
    if input.contains("://") {
        let url = parse_url(input).map_err(fetch_error)?;
        let fetcher = Fetcher::from_config(config).map_err(fetch_error)?;
        return match fetcher
            .fetch(&url, &Default::default())
            .await
            .map_err(fetch_error)?
        {
            Fetched::Page(page) => Ok(page.body),
            Fetched::NotModified => Err(CliError::Runtime(format!(
                "{url} answered 304 Not Modified to a plain GET"
            ))),
        };
    }
    let cannot_read = |e: std::io::Error| CliError::BadInput(format!("cannot read {input}: {e}"));
    let file = std::fs::File::open(input).map_err(cannot_read)?;
    let mut content = Vec::new();
    // One byte more than the limit, so that a larger file is refused.
    file.take(MAX_CALENDAR_BYTES as u64 + 1)
        .read_to_end(&mut content)
        .map_err(cannot_read)?;
    Ok(content)
}

/// `1 meeting`, `3 meetings`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
