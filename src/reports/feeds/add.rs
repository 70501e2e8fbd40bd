//! Adding a source: its feed is read once, with the fetcher and limits of a
//! poll, and the items it has then are recorded as seen, so that polls
//! import only the items published later. Without this, the first poll of a
//! feed would take its whole back catalogue for new reports.
//!
//! A feed that cannot be read is not added: a source added without its
//! items recorded would mail them all once its feed could be read.

use chrono::{DateTime, Utc};

use super::poll::{ReadError, read_feed};
use super::{FeedItem, Fetcher, parse_url};
use crate::error::StoreError;
use crate::lists::ListStore;
use crate::reports::{NewSource, Source, SourceStore};

/// Which of the items a feed has when it is added are new, to be imported
/// by the next poll; the others are recorded as seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// None of them.
    Seen,
    /// Those published at this time or later; undated ones are not.
    Since(DateTime<Utc>),
    /// All of them.
    New,
}

/// A feed's category as typed: a word or two, on one line.
pub fn parse_category(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        Err("a category is a word or two, such as NEC".into())
    } else {
        Ok(s.to_owned())
    }
}

/// A source added, and what became of the items its feed had.
#[derive(Debug, Clone)]
pub struct Added {
    pub source: Source,
    /// How many items were recorded as seen.
    pub seen: usize,
    /// How many items the next poll takes for new.
    pub new: usize,
}

/// Why a source was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}; the source is not added, as the items it has now could not be recorded as seen")]
    Read(#[from] ReadError),
}

impl AddError {
    pub fn is_bad_input(&self) -> bool {
        match self {
            AddError::Store(e) => e.is_bad_input(),
            AddError::Read(e) => e.is_bad_input(),
        }
    }
}

/// Adds `new` as a source, reading its feed with `fetcher` and recording
/// the items it has now as seen, unless `existing` says they are new. What
/// the store would refuse (a feed already added, an unknown list) is refused
/// before the feed is read.
#[tracing::instrument(skip_all, fields(source.url = %new.url))]
pub async fn add_source<S: SourceStore + ListStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
    new: &NewSource,
    existing: Existing,
) -> Result<Added, AddError> {
    if store.sources().await?.iter().any(|s| s.url == new.url) {
        return Err(new.already_added().into());
    }
    for list in &new.lists {
        store.list(list).await?;
    }
    let url = parse_url(&new.url).map_err(ReadError::from)?;
    let items = read_feed(fetcher, &url).await?;
    let (seen, fresh) = baseline(&items, new.category.as_deref(), existing);
    let source = store.add_source(new, &seen).await?;
    Ok(Added {
        source,
        seen: seen.len(),
        new: fresh,
    })
}

/// Of the items a poll would import (those with a guid, in `category` when
/// there is one): the guids of those `existing` does not make new, to
/// record as seen, and how many it does make new.
fn baseline(
    items: &[FeedItem],
    category: Option<&str>,
    existing: Existing,
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut fresh = Vec::new();
    let importable = items
        .iter()
        .filter(|item| !item.guid.is_empty() && category.is_none_or(|c| item.has_category(c)));
    for item in importable {
        let new = match existing {
            Existing::Seen => false,
            Existing::Since(since) => item.published.is_some_and(|p| p >= since),
            Existing::New => true,
        };
        let into = if new { &mut fresh } else { &mut seen };
        into.push(item.guid.clone());
    }
    for guids in [&mut seen, &mut fresh] {
        guids.sort();
        guids.dedup();
    }
    (seen, fresh.len())
}
