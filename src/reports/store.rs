//! What reports, feed sources and the archive need from storage;
//! `crate::store` implements it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Report, ReportDraft};
use crate::error::StoreError;
use crate::lists::ListSlug;

/// A report named on the command line: its id or its slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRef {
    Id(i64),
    Slug(String),
}

impl std::str::FromStr for ReportRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a report is named by its id or its slug".into());
        }
        Ok(s.parse()
            .map(ReportRef::Id)
            .unwrap_or_else(|_| ReportRef::Slug(s.to_owned())))
    }
}

impl std::fmt::Display for ReportRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportRef::Id(id) => write!(f, "{id}"),
            ReportRef::Slug(slug) => f.write_str(slug),
        }
    }
}

/// What storing a draft did.
#[derive(Debug, Clone)]
pub enum Stored {
    New(Report),
    /// The same content, or the same feed item, was stored before.
    Duplicate(Report),
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores a draft under a unique slug, unless its content hash or its
    /// feed item is already stored.
    async fn insert_report(&self, draft: &ReportDraft) -> Result<Stored, StoreError>;
    /// Every report, newest first.
    async fn reports(&self) -> Result<Vec<Report>, StoreError>;
    async fn report(&self, which: &ReportRef) -> Result<Report, StoreError>;
    /// Deletes a report. While a campaign uses it this is refused, unless
    /// `force`, which deletes those campaigns and their deliveries too.
    async fn delete_report(&self, which: &ReportRef, force: bool) -> Result<Report, StoreError>;
}

/// A feed to poll for new reports.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub url: String,
    /// Only items with this category are imported.
    pub category: Option<String>,
    /// The lists new reports from this feed go to.
    pub lists: Vec<ListSlug>,
}

impl NewSource {
    /// The conflict of adding a feed that is already a source.
    pub fn already_added(&self) -> StoreError {
        StoreError::Conflict(format!("the feed {} is already a source", self.url))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: i64,
    pub url: String,
    pub category: Option<String>,
    pub lists: Vec<ListSlug>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The outcome of one fetch of a source, kept for the next conditional GET.
#[derive(Debug, Clone, Default)]
pub struct FetchRecord {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub error: Option<String>,
}

#[async_trait]
pub trait SourceStore: Send + Sync {
    /// Adds a feed, with the guids of its items that are recorded as seen
    /// (never imported); a URL already added is a conflict, an unknown list
    /// not found.
    async fn add_source(&self, new: &NewSource, seen: &[String]) -> Result<Source, StoreError>;
    /// The guids of the items of source `id` recorded as seen when it was added.
    async fn seen_items(&self, id: i64) -> Result<Vec<String>, StoreError>;
    async fn sources(&self) -> Result<Vec<Source>, StoreError>;
    async fn remove_source(&self, id: i64) -> Result<Source, StoreError>;
    /// Records a fetch. Validators are replaced only on success, so that a
    /// failed fetch keeps the last good ones.
    async fn record_fetch(&self, id: i64, record: &FetchRecord) -> Result<(), StoreError>;
}

/// A report in the archive: one that has been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveEntry {
    pub slug: String,
    pub title: String,
    pub meeting_date: Option<NaiveDate>,
    pub summary: Option<String>,
    /// When its first campaign started.
    pub sent_at: DateTime<Utc>,
}

#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// The reports that have been sent (a campaign of theirs is sending or
    /// done), newest first.
    async fn archive(&self) -> Result<Vec<ArchiveEntry>, StoreError>;
    /// The report `slug`, when it has been sent.
    async fn archived_report(&self, slug: &str) -> Result<Option<Report>, StoreError>;
}
