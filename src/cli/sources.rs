//! `necmail source …`: the feeds polled for new reports.

use std::io::Write;

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use url::Url;

use super::meetings::parse_date;
use super::reports::imported_line;
use super::{CliError, CliResult, output};
use crate::campaigns::{Campaign, CampaignState, parse_at};
use crate::config::Config;
use crate::lists::ListSlug;
use crate::reports::feeds::{
    AddError, Added, Existing, Fetcher, PollOutcome, SourcePoll, add_source, parse_category,
    parse_url,
};
use crate::reports::{NewSource, Source};
use crate::scheduler::{Polled, TickError, poll_sources};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Add an RSS or Atom feed to poll for new reports. The feed is read
    /// once, and the items it has now are recorded as seen: only items
    /// published later are mailed, unless --since or --send-existing.
    Add(AddArgs),
    /// List the sources, with when each was last checked and its last error.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop polling a source. The reports imported from it are kept.
    Rm { id: i64 },
    /// Poll every source now, import its new reports and make their
    /// campaigns, as the daemon's poll does: one per source for the next
    /// dispatch window, for its newest new report, the others held. A
    /// source that fails is reported and recorded, and does not stop the
    /// others.
    Poll,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The feed's http:// or https:// URL, e.g. https://rep.example.org/feed/.
    #[arg(value_parser = parse_feed_url)]
    url: Url,
    /// Import only the items in this category (in any case), e.g. "NEC report".
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// A list that new reports from this feed go to; repeat for several.
    #[arg(long = "list")]
    lists: Vec<ListSlug>,
    /// Take the items published on or after this day (YYYY-MM-DD, in
    /// NECMAIL_TIMEZONE) for new: the next poll imports and mails them.
    #[arg(long, value_parser = parse_date)]
    since: Option<NaiveDate>,
    /// Take every item the feed has now for new: the next poll imports and
    /// mails them.
    #[arg(long, conflicts_with = "since")]
    send_existing: bool,
}

fn parse_feed_url(s: &str) -> Result<Url, String> {
    parse_url(s).map_err(|e| e.to_string())
}

pub async fn run(command: SourceCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        SourceCommand::Add(AddArgs {
            url,
            category,
            lists,
            since,
            send_existing,
        }) => {
            let existing = match (send_existing, since) {
                (true, _) => Existing::New,
                (false, Some(day)) => {
                    let midnight = format!("{day} 00:00");
                    Existing::Since(
                        parse_at(&midnight, config.timezone).map_err(CliError::BadInput)?,
                    )
                }
                (false, None) => Existing::Seen,
            };
            let fetcher =
                Fetcher::from_config(config).map_err(|e| CliError::Runtime(e.to_string()))?;
            let new = NewSource {
                url: url.to_string(),
                category,
                lists,
            };
            let added = add_source(store, &fetcher, &new, existing)
                .await
                .map_err(add_error)?;
            let mut out = output::stdout();
            writeln!(
                out,
                "added source {} {}",
                added.source.id,
                describe(&added.source)
            )?;
            writeln!(out, "{}", baseline(&added, existing, since))?;
            Ok(out.flush()?)
        }
        SourceCommand::Ls { json } => {
            let sources = store.sources().await?;
            if json {
                return Ok(output::json(&sources)?);
            }
            let rows: Vec<Vec<String>> = sources
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.url.clone(),
                        s.category.clone().unwrap_or_default(),
                        lists_text(s),
                        s.last_checked_at
                            .map(|at| output::local_time(at, config.timezone))
                            .unwrap_or_else(|| "never".into()),
                        s.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Ok(output::table(
                &["ID", "URL", "CATEGORY", "LISTS", "CHECKED", "LAST ERROR"],
                &rows,
            )?)
        }
        SourceCommand::Rm { id } => {
            let source = store.remove_source(id).await?;
            println!(
                "removed source {} {}; its reports are kept",
                source.id, source.url
            );
            Ok(())
        }
        SourceCommand::Poll => {
            let polled = poll_sources(store, config, Utc::now())
                .await
                .map_err(|e| match e {
                    TickError::Store(e) => e.into(),
                    TickError::Fetcher(e) => CliError::Runtime(e.to_string()),
                })?;
            let mut out = output::stdout();
            if polled.sources.is_empty() {
                writeln!(
                    out,
                    "no sources to poll; add one with `necmail source add URL`"
                )?;
            }
            for poll in &polled.sources {
                write_poll(&mut out, poll, &polled, config)?;
            }
            Ok(out.flush()?)
        }
    }
}

fn add_error(e: AddError) -> CliError {
    if e.is_bad_input() {
        CliError::BadInput(e.to_string())
    } else {
        CliError::Runtime(e.to_string())
    }
}

/// What became of the feed's items when it was added, `since` the day of
/// [`Existing::Since`].
fn baseline(added: &Added, existing: Existing, since: Option<NaiveDate>) -> String {
    match (existing, since) {
        (Existing::New, _) => format!(
            "recorded none of the feed's items as seen: the next poll imports all {}",
            added.new
        ),
        (Existing::Since(_), Some(day)) => format!(
            "recorded the feed's {} items published before {day} as seen; \
             the next poll imports the {} others",
            added.seen, added.new
        ),
        _ => format!(
            "recorded the feed's {} items as seen: they will not be mailed",
            added.seen
        ),
    }
}

fn lists_text(source: &Source) -> String {
    source
        .lists
        .iter()
        .map(ListSlug::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn describe(source: &Source) -> String {
    let category = match &source.category {
        Some(c) => format!("items in category {c}"),
        None => "every item".to_owned(),
    };
    let lists = match source.lists.as_slice() {
        [] => "no lists yet".to_owned(),
        _ => format!("for {}", lists_text(source)),
    };
    format!("{} ({category}, {lists})", source.url)
}

fn write_poll(
    out: &mut impl Write,
    poll: &SourcePoll,
    polled: &Polled,
    config: &Config,
) -> std::io::Result<()> {
    let source = &poll.source;
    write!(out, "source {} {}: ", source.id, source.url)?;
    match &poll.outcome {
        PollOutcome::NotModified => writeln!(out, "not modified"),
        PollOutcome::Failed(error) => writeln!(out, "failed: {error}"),
        PollOutcome::Fetched(items) => {
            write!(
                out,
                "{} new, {} already stored, ",
                items.new.len(),
                items.duplicates.len()
            )?;
            if items.seen > 0 {
                write!(out, "{} seen when added, ", items.seen)?;
            }
            if let Some(category) = &source.category {
                write!(
                    out,
                    "{} not in category {category}, ",
                    items.skipped_by_category
                )?;
            }
            writeln!(out, "{} failed", items.failed.len())?;
            for report in &items.new {
                writeln!(out, "  {}", imported_line(report))?;
                let campaign = polled.campaigns.iter().find(|c| c.report_id == report.id);
                let unsent = polled.unsent.iter().find(|u| u.report.id == report.id);
                if let Some(campaign) = campaign {
                    writeln!(out, "    {}", campaign_made(campaign, config))?;
                } else if let Some(unsent) = unsent {
                    writeln!(out, "    {}", unsent.why)?;
                }
            }
            for item in &items.failed {
                let name = item.title.as_deref().unwrap_or(&item.guid);
                writeln!(out, "  failed item {name:?}: {}", item.reason)?;
            }
            Ok(())
        }
    }
}

/// `campaign 4 to members, scheduled for 2026-03-03 09:00`, or held, or a draft.
fn campaign_made(c: &Campaign, config: &Config) -> String {
    let lists: Vec<&str> = c.lists.iter().map(ListSlug::as_str).collect();
    let made = format!("campaign {} to {}", c.id, lists.join(","));
    match (c.state, c.send_at) {
        (CampaignState::Held, _) => format!(
            "{made}, held until `necmail campaign approve {}` (NECMAIL_AUTO_DISPATCH=hold)",
            c.id
        ),
        (_, Some(at)) => format!(
            "{made}, scheduled for {}",
            output::local_time(at, config.timezone)
        ),
        (_, None) => format!(
            "{made}, a draft: start it with `necmail campaign send {}`",
            c.id
        ),
    }
}
