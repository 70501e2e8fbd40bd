//! `necmail report …`: import, list, show, correct and remove reports.

use std::io::{self, Read, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::editor::{self, EditorError};
use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::reports::feeds::{FetchError, Fetcher, parse_url};
use crate::reports::import::{self, Format};
use crate::reports::intake::{self, IntakeError};
use crate::reports::{
    ImageCopier, ImportOptions, Report, ReportDraft, ReportHistory, ReportRef, ReportSource,
    Revised, SamePost, Section, Stored, parse_slug,
};
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
    /// Correct a report in $EDITOR (else $VISUAL, else vi): its Markdown,
    /// with its title, meeting date and summary as front matter, as `import`
    /// reads it. Its slug and source stay; its old text is kept as an
    /// earlier version.
    Edit {
        /// The report's id or slug.
        report: ReportRef,
        /// Correct it even though a campaign has sent it.
        #[arg(long)]
        after_send: bool,
    },
    /// Replace a report's text with a file's, stdin's (-) or a page's, in
    /// any format `import` reads. Its slug and source stay; its old text is
    /// kept as an earlier version.
    Replace(ReplaceArgs),
    /// Delete a report. Refused while a campaign uses it, unless --force,
    /// which deletes those campaigns too; never once a campaign has sent it,
    /// as its deliveries are the record of who got it.
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
    /// The new report's slug, its web address, instead of one made from its
    /// title: lower-case letters, digits and single hyphens.
    #[arg(long, value_parser = parse_slug)]
    slug: Option<String>,
    /// Update a stored post even though a campaign has sent it. (An unsent
    /// one is updated anyway: the same feed item, or the same title from the
    /// same file, URL or stdin.)
    #[arg(long)]
    after_send: bool,
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The report's id or slug.
    report: ReportRef,
    /// A Markdown, text or HTML file; - to read stdin; or a page's http(s) URL.
    input: String,
    /// md, text or html. Unset: guessed from its name and content.
    #[arg(long)]
    format: Option<Format>,
    /// Replace it even though a campaign has sent it.
    #[arg(long)]
    after_send: bool,
}

pub async fn run(command: ReportCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        ReportCommand::Import(args) => import(&args, store, config).await,
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
                        if r.excerpt { "excerpt" } else { "" }.to_owned(),
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
                    "EXCERPT",
                ],
                &cells,
            )?)
        }
        ReportCommand::Show { report, json } => {
            let history = store.report_history(&report).await?;
            if json {
                Ok(output::json(&[ShownReport::from(&history)])?)
            } else {
                Ok(show(&history)?)
            }
        }
        ReportCommand::Edit { report, after_send } => {
            edit(store, config, &report, after_send).await
        }
        ReportCommand::Replace(args) => replace(&args, store, config).await,
        ReportCommand::Rm { report, force } => {
            let deleted = store.delete_report(&report, force).await?;
            println!("deleted report {} {}", deleted.id, deleted.slug);
            Ok(())
        }
        ReportCommand::Preview(args) => super::preview::preview(args, store, config).await,
    }
}

async fn import(args: &ImportArgs, store: &dyn Store, config: &Config) -> CliResult {
    let drafts = read_drafts(&args.input, args.format, store, config).await?;
    if args.slug.is_some() && drafts.len() > 1 {
        return Err(CliError::BadInput(format!(
            "--slug names one report, and {} holds {}",
            args.input,
            drafts.len()
        )));
    }
    let options = ImportOptions {
        slug: args.slug.clone(),
        same_post: SamePost::Update {
            after_send: args.after_send,
        },
    };
    let mut out = output::stdout();
    for draft in &drafts {
        let line = match store.insert_report(draft, &options).await? {
            Stored::New(r) => imported_line(&r),
            Stored::Duplicate(r) if draft.excerpt.is_some() && !r.excerpt => format!(
                "{:?} is an excerpt of report {} {}, stored complete already",
                draft.title, r.id, r.slug
            ),
            Stored::Duplicate(r) => format!("already stored as report {} {}", r.id, r.slug),
            Stored::Updated(r) => described("updated", &r),
        };
        writeln!(out, "{line}")?;
    }
    Ok(out.flush()?)
}

/// `report edit`: the report's Markdown file in the editor, stored again
/// when it changed and still imports, its images copied into the media
/// store as an import's are. Whatever goes wrong once the admin has edited
/// it, the edited file is kept and named.
async fn edit(
    store: &dyn Store,
    config: &Config,
    which: &ReportRef,
    after_send: bool,
) -> CliResult {
    let ReportHistory {
        report, sent_by, ..
    } = store.report_history(which).await?;
    if let Some(sent_by) = sent_by.filter(|_| !after_send) {
        return Err(CliError::BadInput(sent_by.refusal(&report)));
    }
    let images = ImageCopier::from_config(config).map_err(fetch_error)?;
    let original = import::markdown_file(&report);
    let edited = editor::edit(&format!("necmail-report-{}", report.id), &original).map_err(
        |e: EditorError| {
            let message = format!("{e}; report {} is unchanged", report.id);
            if e.is_bad_input() {
                CliError::BadInput(message)
            } else {
                CliError::Runtime(message)
            }
        },
    )?;
    if edited.text == original.as_bytes() {
        println!("{}", revised_line(&Revised::Unchanged(report)));
        return Ok(());
    }
    let draft = match import::parse_markdown(&edited.text) {
        Ok(draft) => draft,
        Err(e) => {
            return Err(CliError::BadInput(format!(
                "the edited report cannot be stored: {e}; report {} is unchanged, \
                 and the edited text is kept in {}",
                report.id,
                edited.keep().display()
            )));
        }
    };
    let revised = match intake::with_images(&images, store, draft).await {
        Ok((draft, warnings)) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            store
                .revise_report(&ReportRef::Id(report.id), &draft, after_send)
                .await
        }
        Err(e) => Err(e),
    };
    match revised {
        Ok(revised) => {
            println!("{}", revised_line(&revised));
            Ok(())
        }
        Err(e) => {
            let kept = format!("; the edited text is kept in {}", edited.keep().display());
            Err(match CliError::from(e) {
                CliError::BadInput(message) => CliError::BadInput(message + &kept),
                CliError::Runtime(message) => CliError::Runtime(message + &kept),
                other => other,
            })
        }
    }
}

/// `report replace`: the report's text from one report's input.
async fn replace(args: &ReplaceArgs, store: &dyn Store, config: &Config) -> CliResult {
    let report = store.report(&args.report).await?;
    let drafts = read_drafts(&args.input, args.format, store, config).await?;
    let [draft] = <[ReportDraft; 1]>::try_from(drafts).map_err(|drafts| {
        CliError::BadInput(format!(
            "cannot replace report {} with {}: it holds {} reports",
            report.id,
            args.input,
            drafts.len()
        ))
    })?;
    let text = draft.keeping_details_of(&report);
    let revised = store
        .revise_report(&ReportRef::Id(report.id), &text, args.after_send)
        .await?;
    println!("{}", revised_line(&revised));
    Ok(())
}

/// The line `report edit` and `report replace` print.
fn revised_line(revised: &Revised) -> String {
    match revised {
        Revised::Updated(r) => described("updated", r),
        Revised::Unchanged(r) => format!("report {} {} is unchanged", r.id, r.slug),
    }
}

/// `imported report 3 <slug>: <title> (N sections)`, as `report import` and
/// `source poll` print it.
pub(super) fn imported_line(r: &Report) -> String {
    described("imported", r)
}

/// `VERB report 3 <slug>: <title> (N sections)`, and `, an excerpt only`
/// for an excerpt.
fn described(verb: &str, r: &Report) -> String {
    format!(
        "{verb} report {} {}: {} ({} sections{})",
        r.id,
        r.slug,
        r.title,
        r.sections().sections.len(),
        if r.excerpt { ", an excerpt only" } else { "" }
    )
}

/// Reads and parses the input; every draft is ready to store, or nothing is.
/// An excerpt gets its full post from its link; when it cannot, it stays an
/// excerpt, with a warning that says why. Images are copied into the media
/// store; one that cannot be is left out, with a warning.
async fn read_drafts(
    input: &str,
    format: Option<Format>,
    store: &dyn Store,
    config: &Config,
) -> Result<Vec<ReportDraft>, CliError> {
    let fetcher = Fetcher::from_config(config).map_err(fetch_error)?;
    let drafts = parse_input(input, format, &fetcher).await?;
    let (complete, warnings) =
        intake::complete(store, &fetcher, &config.public_url, drafts).await?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(complete)
}

/// Reads and parses the input as it is.
async fn parse_input(
    input: &str,
    format: Option<Format>,
    fetcher: &Fetcher,
) -> Result<Vec<ReportDraft>, CliError> {
    if input == "-" {
        let mut content = Vec::new();
        io::stdin()
            .read_to_end(&mut content)
            .map_err(|e| CliError::Runtime(format!("reading stdin failed: {e}")))?;
        return intake::read_content(input, None, &content, format, &ReportSource::Paste)
            .map_err(intake_error);
    }
    if input.contains("://") {
        let url = parse_url(input).map_err(fetch_error)?;
        return intake::read_url(fetcher, &url, format)
            .await
            .map_err(intake_error);
    }
    let path = Path::new(input);
    let content =
        std::fs::read(path).map_err(|e| CliError::BadInput(format!("cannot read {input}: {e}")))?;
    let stored_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let source = ReportSource::File {
        path: stored_path.display().to_string(),
    };
    intake::read_content(input, name.as_deref(), &content, format, &source).map_err(intake_error)
}

fn intake_error(e: IntakeError) -> CliError {
    if e.is_bad_input() {
        CliError::BadInput(e.to_string())
    } else {
        CliError::Runtime(e.to_string())
    }
}

pub(super) fn fetch_error(e: FetchError) -> CliError {
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
    /// True when it holds only the opening of its post.
    excerpt: bool,
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
            excerpt: r.excerpt,
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
    /// True when it holds only the opening of its post.
    excerpt: bool,
    /// How many texts it had before its current one.
    earlier_versions: i64,
    intro: String,
    sections: Vec<Section>,
}

impl<'a> From<&'a ReportHistory> for ShownReport<'a> {
    fn from(history: &'a ReportHistory) -> Self {
        let r = &history.report;
        let sections = r.sections();
        ShownReport {
            id: r.id,
            slug: &r.slug,
            title: &r.title,
            meeting_date: r.meeting_date,
            published_at: r.published_at,
            summary: r.summary.as_deref(),
            source: &r.source,
            excerpt: r.excerpt,
            earlier_versions: history.earlier_versions,
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

fn show(history: &ReportHistory) -> io::Result<()> {
    let report = &history.report;
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
    writeln!(out, "versions:   {} earlier", history.earlier_versions)?;
    if report.excerpt {
        writeln!(
            out,
            "excerpt:    yes: only the opening of its post, cut off; a campaign sends it only \
             with --allow-excerpt; give it the full post with `necmail report replace {} \
             URL-OR-FILE`",
            report.slug
        )?;
    }
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
