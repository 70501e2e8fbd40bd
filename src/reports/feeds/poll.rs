//! Polling sources: fetch (conditionally), parse, keep the source's category,
//! leave out the items recorded as seen when the source was added, import
//! each other item as a report, and record how it went on the source.
//!
//! Nothing a feed does can lose a stored report or stop the other sources:
//! a fetch that fails, or a response that is not a feed, is recorded as the
//! source's last error and the poll moves on. An item that cannot be imported
//! is skipped, and recorded too; the source's validators are then left as
//! they were, so the next poll reads the whole feed again and retries it.
//! Only the database failing is an error.

use std::collections::HashSet;

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::Mutex;
use url::Url;

use super::{
    FeedItem, FetchError, Fetched, Fetcher, NotAFeed, Validators, parse_feed, parse_url,
    with_full_post,
};
use crate::error::StoreError;
use crate::reports::{FetchRecord, ImportOptions, Report, Source, Stored};
use crate::reports::{ReportStore, SourceStore};

/// How many sources [`poll_all`] fetches at once.
pub const POLL_CONCURRENCY: usize = 4;

/// What polling one source did.
#[derive(Debug, Clone)]
pub struct SourcePoll {
    /// The source as it was before the poll (its lists say where new reports go).
    pub source: Source,
    pub outcome: PollOutcome,
}

#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// The server answered 304: nothing changed since the last poll.
    NotModified,
    /// The feed was read and its items imported, skipped or refused.
    Fetched(ItemsImported),
    /// The feed could not be fetched, or was not a feed; nothing was imported.
    Failed(String),
}

/// What became of a feed's items.
#[derive(Debug, Clone, Default)]
pub struct ItemsImported {
    /// Reports stored by this poll, oldest first.
    pub new: Vec<Report>,
    /// Items stored before (by guid or by content).
    pub duplicates: Vec<Report>,
    /// Items without the source's category.
    pub skipped_by_category: usize,
    /// Items recorded as seen when the source was added: not imported.
    pub seen: usize,
    pub failed: Vec<FailedItem>,
}

/// An item that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedItem {
    pub guid: String,
    pub title: Option<String>,
    pub reason: String,
}

/// Polls every stored source and returns one summary per source, in the
/// order of their ids. A few sources are fetched at once; their reports are
/// stored one source at a time, since SQLite has one writer at a time.
#[tracing::instrument(skip_all)]
pub async fn poll_all<S: ReportStore + SourceStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
) -> Result<Vec<SourcePoll>, StoreError> {
    let sources = store.sources().await?;
    let writes = Mutex::new(());
    // The futures are made up front (they do nothing until polled): a
    // closure in `StreamExt::map` would make the whole future lose `Send`.
    let polls: Vec<_> = sources
        .iter()
        .map(|source| poll_one(store, fetcher, source, &writes))
        .collect();
    stream::iter(polls)
        .buffered(POLL_CONCURRENCY)
        .try_collect()
        .await
}

/// Polls one source: see the module's documentation.
pub async fn poll_source<S: ReportStore + SourceStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
    source: &Source,
) -> Result<SourcePoll, StoreError> {
    poll_one(store, fetcher, source, &Mutex::new(())).await
}

/// Why a feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url} answered, but {error}")]
    NotAFeed { url: String, error: NotAFeed },
    #[error("{0} answered 304 Not Modified to a plain GET")]
    NotModified(Url),
}

impl ReadError {
    /// True when the URL is at fault (see [`FetchError::is_bad_input`]), or
    /// what it serves is not a feed.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ReadError::Fetch(e) => e.is_bad_input(),
            ReadError::NotAFeed { .. } => true,
            ReadError::NotModified(_) => false,
        }
    }
}

/// Fetches the feed at `url` (a plain GET) and parses its items.
pub(super) async fn read_feed(fetcher: &Fetcher, url: &Url) -> Result<Vec<FeedItem>, ReadError> {
    match read(fetcher, url.as_str(), &Validators::default()).await? {
        Some((items, _)) => Ok(items),
        None => Err(ReadError::NotModified(url.clone())),
    }
}

#[tracing::instrument(skip_all, fields(source.id = source.id, source.url = %source.url))]
async fn poll_one<S: ReportStore + SourceStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
    source: &Source,
    writes: &Mutex<()>,
) -> Result<SourcePoll, StoreError> {
    let validators = Validators {
        etag: source.etag.clone(),
        last_modified: source.last_modified.clone(),
    };
    let read = read(fetcher, &source.url, &validators).await;
    let _turn = writes.lock().await;
    let outcome = match read {
        Ok(None) => {
            let record = FetchRecord {
                etag: source.etag.clone(),
                last_modified: source.last_modified.clone(),
                error: None,
            };
            store.record_fetch(source.id, &record).await?;
            PollOutcome::NotModified
        }
        Err(error) => {
            let error = error.to_string();
            tracing::warn!(
                source.id = source.id,
                source.url = %source.url,
                %error,
                "polling a source failed",
            );
            let record = FetchRecord {
                error: Some(error.clone()),
                ..FetchRecord::default()
            };
            store.record_fetch(source.id, &record).await?;
            PollOutcome::Failed(error)
        }
        Ok(Some((items, validators))) => {
            let seen: HashSet<String> = store.seen_items(source.id).await?.into_iter().collect();
            let imported = import_items(store, fetcher, source, items, &seen).await?;
            let record = match imported.failed.as_slice() {
                [] => FetchRecord {
                    etag: validators.etag,
                    last_modified: validators.last_modified,
                    error: None,
                },
                [first, ..] => FetchRecord {
                    error: Some(format!(
                        "{} of the feed's items could not be imported; the first, {:?}: {}",
                        imported.failed.len(),
                        first.title.as_deref().unwrap_or(&first.guid),
                        first.reason
                    )),
                    ..FetchRecord::default()
                },
            };
            store.record_fetch(source.id, &record).await?;
            tracing::info!(
                new = imported.new.len(),
                duplicates = imported.duplicates.len(),
                skipped = imported.skipped_by_category,
                seen = imported.seen,
                failed = imported.failed.len(),
                "polled"
            );
            PollOutcome::Fetched(imported)
        }
    };
    Ok(SourcePoll {
        source: source.clone(),
        outcome,
    })
}

/// Fetches `url` with `validators` and parses what comes back: `None` when
/// the server answered that nothing changed.
async fn read(
    fetcher: &Fetcher,
    url: &str,
    validators: &Validators,
) -> Result<Option<(Vec<FeedItem>, Validators)>, ReadError> {
    match fetcher.fetch(&parse_url(url)?, validators).await? {
        Fetched::NotModified => Ok(None),
        Fetched::Page(page) => match parse_feed(&page.body, Some(page.url.as_str())) {
            Ok(items) => Ok(Some((items, page.validators))),
            Err(error) => Err(ReadError::NotAFeed {
                url: url.to_owned(),
                error,
            }),
        },
    }
}

/// Imports a source's items, oldest first, keeping only those in its
/// category when it has one and leaving out those in `seen`. Items published
/// at the same time are taken to be listed newest first, as feeds list them.
/// An item the importer refuses is recorded and skipped. An item that is
/// an excerpt gets its full post from its link, unless its report is stored
/// complete already; when the full post cannot be had, the excerpt is
/// stored marked as such, and its full post is tried again at the next poll.
async fn import_items<S: ReportStore + SourceStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
    source: &Source,
    items: Vec<FeedItem>,
    seen: &HashSet<String>,
) -> Result<ItemsImported, StoreError> {
    let feed_url = source.url.as_str();
    let mut imported = ItemsImported::default();
    let mut items: Vec<(usize, FeedItem)> = items.into_iter().enumerate().collect();
    items.sort_by_key(|(listed, item)| (item.published, std::cmp::Reverse(*listed)));
    for (_, item) in items {
        if source
            .category
            .as_deref()
            .is_some_and(|c| !item.has_category(c))
        {
            imported.skipped_by_category += 1;
            continue;
        }
        if seen.contains(&item.guid) {
            imported.seen += 1;
            continue;
        }
        let refused = |reason: String| {
            tracing::warn!(
                feed.url = feed_url,
                item.guid = item.guid,
                %reason,
                "a feed item cannot be imported",
            );
            FailedItem {
                guid: item.guid.clone(),
                title: item.title.clone(),
                reason,
            }
        };
        let draft = match item.to_draft(feed_url) {
            Ok(draft) => draft,
            Err(e) => {
                imported.failed.push(refused(e.to_string()));
                continue;
            }
        };
        let draft = if draft.excerpt.is_some() {
            match store.feed_item_report(feed_url, &item.guid).await? {
                Some(report) if !report.excerpt => {
                    imported.duplicates.push(report);
                    continue;
                }
                _ => with_full_post(fetcher, draft).await.0,
            }
        } else {
            draft
        };
        // A stored item is kept as it is, so that a correction made in necmail stands.
        match store.insert_report(&draft, &ImportOptions::default()).await {
            Ok(Stored::New(report)) => imported.new.push(report),
            Ok(Stored::Duplicate(report) | Stored::Updated(report)) => {
                imported.duplicates.push(report)
            }
            Err(e) if e.is_bad_input() => imported.failed.push(refused(e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_runs_on_a_spawned_task_as_the_scheduler_will_run_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = crate::store::connect(&url, &Default::default())
            .await
            .unwrap();
        let fetcher = Fetcher::new(
            "necmail-test",
            std::time::Duration::from_secs(1),
            1024,
            Default::default(),
        )
        .unwrap();
        let polled = tokio::spawn(async move { poll_all(store.as_ref(), &fetcher).await })
            .await
            .unwrap()
            .unwrap();
        assert!(polled.is_empty());
    }
}
