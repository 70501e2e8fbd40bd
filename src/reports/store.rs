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
    /// The same content, or the same post kept as it was, is stored already.
    Duplicate(Report),
    /// The same post was stored with other text, which the draft's replaced.
    Updated(Report),
}

/// What giving a report new text did.
#[derive(Debug, Clone)]
pub enum Revised {
    /// The old text is kept as an earlier version.
    Updated(Report),
    /// The report had that text already.
    Unchanged(Report),
}

/// What [`ReportStore::insert_report`] does with a draft of a post stored
/// already with other text: the same feed item, or for any other source the
/// same title from the same file, page or stdin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SamePost {
    /// Keep the stored report as it is. Polling a feed does, so that a
    /// correction made in necmail stands.
    #[default]
    Keep,
    /// Give the stored report the draft's text, as
    /// [`ReportStore::revise_report`] does.
    Update { after_send: bool },
}

/// How [`ReportStore::insert_report`] stores a draft.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The new report's slug, instead of one made from its title. A draft
    /// found stored already under another slug is refused.
    pub slug: Option<String>,
    pub same_post: SamePost,
}

/// The first campaign of a report that started sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentBy {
    pub campaign: i64,
    /// The campaign's state now: sending, paused, done or cancelled.
    pub state: String,
}

impl SentBy {
    /// Why `report` gets new text only with `--after-send`.
    pub fn refusal(&self, report: &Report) -> String {
        format!(
            "report {} {} went out in campaign {} ({}): add --after-send to correct it anyway; \
             the text it was sent with is kept as an earlier version",
            report.id, report.slug, self.campaign, self.state
        )
    }
}

/// A report with what correcting it depends on.
#[derive(Debug, Clone)]
pub struct ReportHistory {
    pub report: Report,
    /// How many texts it had before its current one.
    pub earlier_versions: i64,
    pub sent_by: Option<SentBy>,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores a draft under a unique slug, unless its post (see [`SamePost`])
    /// or its content hash is stored already. A slug given in `options`
    /// that another report has is a conflict.
    async fn insert_report(
        &self,
        draft: &ReportDraft,
        options: &ImportOptions,
    ) -> Result<Stored, StoreError>;
    /// Gives a report the title, meeting date, summary and body of `text`,
    /// keeping the ones it had as an earlier version; its slug and source
    /// stay. Refused once a campaign has started sending it, unless
    /// `after_send`, and when another report has that text.
    async fn revise_report(
        &self,
        which: &ReportRef,
        text: &ReportDraft,
        after_send: bool,
    ) -> Result<Revised, StoreError>;
    /// Every report, newest first.
    async fn reports(&self) -> Result<Vec<Report>, StoreError>;
    /// The report stored from the item `guid` of the feed at `feed_url`.
    async fn feed_item_report(
        &self,
        feed_url: &str,
        guid: &str,
    ) -> Result<Option<Report>, StoreError>;
    async fn report(&self, which: &ReportRef) -> Result<Report, StoreError>;
    async fn report_history(&self, which: &ReportRef) -> Result<ReportHistory, StoreError>;
    /// Deletes a report, with its earlier versions. Always refused once a
    /// campaign of it has sent or tried to send anything, whose deliveries
    /// are the record of who got it, and while a campaign of it is sending.
    /// Otherwise refused while a campaign uses it, unless `force`, which
    /// deletes those campaigns too.
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
