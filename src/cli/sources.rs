//! `necmail source …`: the feeds polled for new reports.

use std::io::Write;

use clap::{Args, Subcommand};
use url::Url;

use super::reports::imported_line;
use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::lists::ListSlug;
use crate::reports::feeds::{Fetcher, PollOutcome, SourcePoll, parse_url, poll_all};
use crate::reports::{NewSource, Source};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Add an RSS or Atom feed to poll for new reports.
    Add(AddArgs),
    /// List the sources, with when each was last checked and its last error.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop polling a source. The reports imported from it are kept.
    Rm { id: i64 },
    /// Poll every source now and import its new reports. A source that fails
    /// is reported and recorded, and does not stop the others.
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
}

fn parse_feed_url(s: &str) -> Result<Url, String> {
    parse_url(s).map_err(|e| e.to_string())
}

fn parse_category(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        Err("a category is a word or two, such as NEC".into())
    } else {
        Ok(s.to_owned())
    }
}

pub async fn run(command: SourceCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        SourceCommand::Add(args) => {
            let source = store
                .add_source(&NewSource {
                    url: args.url.to_string(),
                    category: args.category,
                    lists: args.lists,
                })
                .await?;
            println!("added source {} {}", source.id, describe(&source));
            Ok(())
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
            let fetcher =
                Fetcher::from_config(config).map_err(|e| CliError::Runtime(e.to_string()))?;
            let polled = poll_all(store, &fetcher).await?;
            let mut out = output::stdout();
            if polled.is_empty() {
                writeln!(
                    out,
                    "no sources to poll; add one with `necmail source add URL`"
                )?;
            }
            for poll in &polled {
                write_poll(&mut out, poll)?;
            }
            Ok(out.flush()?)
        }
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

fn write_poll(out: &mut impl Write, poll: &SourcePoll) -> std::io::Result<()> {
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
            }
            for item in &items.failed {
                let name = item.title.as_deref().unwrap_or(&item.guid);
                writeln!(out, "  failed item {name:?}: {}", item.reason)?;
            }
            Ok(())
        }
    }
}
