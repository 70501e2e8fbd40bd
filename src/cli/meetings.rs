//! `necmail meeting …`: record NEC meetings and see which have a report.

use chrono::{NaiveDate, Utc};
use clap::Subcommand;

use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::meetings::Meeting;
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
    /// Show every meeting, the latest first, with the report that covers it.
    Ls {
        #[arg(long)]
        json: bool,
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
            let linked = store.link_reports().await?;
            match linked.iter().find(|m| m.id == meeting.id) {
                Some(Meeting {
                    report: Some(report),
                    ..
                }) => println!(
                    "recorded the meeting of {date}; its report is {}",
                    report.slug
                ),
                _ => println!("recorded the meeting of {date}"),
            }
            Ok(())
        }
        MeetingCommand::Ls { json } => {
            store.link_reports().await?;
            let meetings = store.meetings().await?;
            if json {
                return Ok(output::json(&meetings)?);
            }
            let overdue_by = Utc::now().with_timezone(&config.timezone).date_naive()
                - chrono::Days::new(u64::from(config.report_overdue_days));
            let rows: Vec<Vec<String>> = meetings
                .iter()
                .map(|m| {
                    let report = match &m.report {
                        Some(report) => report.slug.clone(),
                        None if m.held_on <= overdue_by => "overdue".to_owned(),
                        None => "no report yet".to_owned(),
                    };
                    vec![
                        m.held_on.to_string(),
                        m.title.clone().unwrap_or_default(),
                        report,
                    ]
                })
                .collect();
            Ok(output::table(&["DATE", "TITLE", "REPORT"], &rows)?)
        }
    }
}
