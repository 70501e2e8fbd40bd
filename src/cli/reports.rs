//! `necmail report …`: import, list, show and remove reports.

use std::io::{self, Read, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::reports::feeds::{FetchError, Fetched, Fetcher, parse_feed, parse_url};
use crate::reports::import::{self, Format, ReportImportError};
use crate::reports::{Report, ReportDraft, ReportRef, ReportSource, Section, Stored};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Import a report from a file, stdin (-) or a URL (a page or a whole feed).
    Import(ImportArgs),
    /// List every report, newest first, with how many campaigns send it
    /// (0: never sent, such as a new feed report held for its source's
    /// newer one).
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show one report: its details and each section's Markdown.
    Show {
        /// The report's id or slug.
        report: ReportRef,
        #[arg(long)]
        json: bool,
    },
    /// Delete a report. Refused while a campaign uses it, unless --force,
    /// which deletes those campaigns too.
    Rm {
        /// The report's id or slug.
        report: ReportRef,
        #[arg(long)]
        force: bool,
    },
    /// Write preview.html, preview.txt and preview.eml: one recipient's
    /// message, exactly as a campaign builds it.
    Preview(super::preview::PreviewArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A Markdown, text or HTML file (its absolute path is kept as the
    /// report's source); - to read stdin; or an http(s) URL of a page, or of
    /// an RSS or Atom feed whose items are all imported.
    input: String,
    /// md, text or html. Unset: a feed's items are imported one by one, and
    /// anything else is guessed from its name and content.
    #[arg(long)]
    format: Option<Format>,
}

pub async fn run(command: ReportCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        ReportCommand::Import(args) => {
            let drafts = read_drafts(&args, config).await?;
            let mut out = output::stdout();
            for draft in &drafts {
                let stored = store.insert_report(draft).await?;
                writeln!(out, "{}", stored_line(&stored))?;
            }
            Ok(out.flush()?)
        }
        ReportCommand::Ls { json } => {
            let reports = store.reports().await?;
            let campaigns = store.campaigns().await?;
            let rows: Vec<ListedReport> = reports
                .iter()
                .map(|r| {
                    let sending = campaigns.iter().filter(|c| c.report_id == r.id).count();
                    ListedReport::new(r, sending)
                })
                .collect();
            if json {
                return Ok(output::json(&rows)?);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.slug.to_owned(),
                        r.title.to_owned(),
                        r.meeting_date.map(|d| d.to_string()).unwrap_or_default(),
                        output::local_time(r.published_at, config.timezone),
                        r.sections.to_string(),
                        r.campaigns.to_string(),
                    ]
                })
                .collect();
            Ok(output::table(
                &[
                    "ID",
                    "SLUG",
                    "TITLE",
                    "MEETING",
                    "PUBLISHED",
                    "SECTIONS",
                    "CAMPAIGNS",
                ],
                &cells,
            )?)
        }
        ReportCommand::Show { report, json } => {
            let report = store.report(&report).await?;
            if json {
                Ok(output::json(&[ShownReport::from(&report)])?)
            } else {
                Ok(show(&report)?)
            }
        }
        ReportCommand::Rm { report, force } => {
            let deleted = store.delete_report(&report, force).await?;
            println!("deleted report {} {}", deleted.id, deleted.slug);
            Ok(())
        }
        ReportCommand::Preview(args) => super::preview::preview(args, store, config).await,
    }
}

/// The line `report import` prints for each stored draft.
fn stored_line(stored: &Stored) -> String {
    match stored {
        Stored::New(r) => imported_line(r),
        Stored::Duplicate(r) => format!("already stored as report {} {}", r.id, r.slug),
    }
}

/// `imported report 3 <slug>: <title> (N sections)`, as `report import` and
/// `source poll` print it.
pub(super) fn imported_line(r: &Report) -> String {
    format!(
        "imported report {} {}: {} ({} sections)",
        r.id,
        r.slug,
        r.title,
        r.sections().sections.len()
    )
}

/// Reads and parses the input; every draft is ready to store, or nothing is.
async fn read_drafts(args: &ImportArgs, config: &Config) -> Result<Vec<ReportDraft>, CliError> {
    let input = args.input.as_str();
    let (name, content, source) = if input == "-" {
        let mut content = Vec::new();
        io::stdin()
            .read_to_end(&mut content)
            .map_err(|e| CliError::Runtime(format!("reading stdin failed: {e}")))?;
        (None, content, ReportSource::Paste)
    } else if input.contains("://") {
        let url = parse_url(input).map_err(fetch_error)?;
        let fetcher = Fetcher::from_config(config).map_err(fetch_error)?;
        let page = match fetcher
            .fetch(&url, &Default::default())
            .await
            .map_err(fetch_error)?
        {
            Fetched::Page(page) => page,
            Fetched::NotModified => {
                return Err(CliError::Runtime(format!(
                    "{url} answered 304 Not Modified to a plain GET"
                )));
            }
        };
        let feed = match args.format {
            None => parse_feed(&page.body, Some(page.url.as_str())).ok(),
            Some(_) => None,
        };
        if let Some(items) = feed {
            return feed_drafts(url.as_str(), &items);
        }
        let name = page.url.path().rsplit('/').next().map(str::to_owned);
        let source = ReportSource::Url {
            url: url.to_string(),
        };
        (name, page.body, source)
    } else {
        let path = Path::new(input);
        let content = std::fs::read(path)
            .map_err(|e| CliError::BadInput(format!("cannot read {input}: {e}")))?;
        let stored_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let source = ReportSource::File {
            path: stored_path.display().to_string(),
        };
        (name, content, source)
    };
    let format = args
        .format
        .unwrap_or_else(|| import::guess_format(name.as_deref(), &content));
    let drafts = import::parse(&content, format).map_err(|e| import_error(input, e))?;
    if drafts.is_empty() {
        return Err(CliError::BadInput(format!(
            "cannot import {input}: it holds no report"
        )));
    }
    Ok(drafts
        .into_iter()
        .map(|d| ReportDraft {
            source: source.clone(),
            ..d
        })
        .collect())
}

/// Every item of a feed as a draft; the first item that cannot be imported
/// refuses the whole feed.
fn feed_drafts(
    feed_url: &str,
    items: &[crate::reports::feeds::FeedItem],
) -> Result<Vec<ReportDraft>, CliError> {
    if items.is_empty() {
        return Err(CliError::BadInput(format!(
            "cannot import {feed_url}: the feed has no items"
        )));
    }
    items
        .iter()
        .map(|item| {
            item.to_draft(feed_url).map_err(|e| {
                CliError::BadInput(format!(
                    "cannot import {feed_url}: its item {:?} {e}",
                    item.name()
                ))
            })
        })
        .collect()
}

/// Every importer error is the user's bad input.
fn import_error(input: &str, e: ReportImportError) -> CliError {
    CliError::BadInput(format!("cannot import {input}: {e}"))
}

fn fetch_error(e: FetchError) -> CliError {
    if e.is_bad_input() {
        CliError::BadInput(e.to_string())
    } else {
        CliError::Runtime(e.to_string())
    }
}

/// One row of `report ls`.
#[derive(Debug, Serialize)]
struct ListedReport<'a> {
    id: i64,
    slug: &'a str,
    title: &'a str,
    meeting_date: Option<NaiveDate>,
    published_at: DateTime<Utc>,
    sections: usize,
    /// How many campaigns send it, in any state.
    campaigns: usize,
}

impl<'a> ListedReport<'a> {
    fn new(r: &'a Report, campaigns: usize) -> Self {
        ListedReport {
            id: r.id,
            slug: &r.slug,
            title: &r.title,
            meeting_date: r.meeting_date,
            published_at: r.published_at,
            sections: r.sections().sections.len(),
            campaigns,
        }
    }
}

/// `report show --json`.
#[derive(Debug, Serialize)]
struct ShownReport<'a> {
    id: i64,
    slug: &'a str,
    title: &'a str,
    meeting_date: Option<NaiveDate>,
    published_at: DateTime<Utc>,
    summary: Option<&'a str>,
    source: &'a ReportSource,
    intro: String,
    sections: Vec<Section>,
}

impl<'a> From<&'a Report> for ShownReport<'a> {
    fn from(r: &'a Report) -> Self {
        let sections = r.sections();
        ShownReport {
            id: r.id,
            slug: &r.slug,
            title: &r.title,
            meeting_date: r.meeting_date,
            published_at: r.published_at,
            summary: r.summary.as_deref(),
            source: &r.source,
            intro: sections.intro,
            sections: sections.sections,
        }
    }
}

fn source_text(source: &ReportSource) -> String {
    match source {
        ReportSource::File { path } => format!("file {path}"),
        ReportSource::Paste => "pasted on stdin".to_owned(),
        ReportSource::Url { url } => format!("page {url}"),
        ReportSource::Feed { feed_url, guid, .. } => format!("feed {feed_url}, item {guid}"),
    }
}

fn show(report: &Report) -> io::Result<()> {
    let mut out = output::stdout();
    let sections = report.sections();
    writeln!(out, "report {}: {}", report.id, report.slug)?;
    writeln!(out, "title:      {}", report.title)?;
    let meeting = report.meeting_date.map(|d| d.to_string());
    writeln!(
        out,
        "meeting:    {}",
        meeting.as_deref().unwrap_or("(not given)")
    )?;
    writeln!(out, "published:  {}", report.published_at.to_rfc3339())?;
    writeln!(out, "source:     {}", source_text(&report.source))?;
    writeln!(
        out,
        "summary:    {}",
        report.summary.as_deref().unwrap_or("(none)")
    )?;
    writeln!(out, "sections:   {}", sections.sections.len())?;
    if !sections.intro.is_empty() {
        writeln!(out, "\n{}", sections.intro)?;
    }
    for section in &sections.sections {
        writeln!(
            out,
            "\n## {}  {{#{}}}\n\n{}",
            section.heading, section.anchor, section.markdown
        )?;
    }
    out.flush()
}
