//! Storage of reports and feed sources. The SQL is shared by both backends
//! through [`impl_report_store`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Report, ReportDraft, ReportSource};
use crate::lists::ListSlug;
use crate::store::StoreError;

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
    /// Adds a feed; a URL already added is a conflict, an unknown list not found.
    async fn add_source(&self, new: &NewSource) -> Result<Source, StoreError>;
    async fn sources(&self) -> Result<Vec<Source>, StoreError>;
    async fn remove_source(&self, id: i64) -> Result<Source, StoreError>;
    /// Records a fetch. Validators are replaced only on success, so that a
    /// failed fetch keeps the last good ones.
    async fn record_fetch(&self, id: i64, record: &FetchRecord) -> Result<(), StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReportRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub meeting_date: Option<NaiveDate>,
    pub summary: Option<String>,
    pub body_markdown: String,
    pub source_kind: String,
    pub source_ref: Option<String>,
    pub source_guid: Option<String>,
    pub source_link: Option<String>,
    pub content_hash: String,
    pub published_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A stored report with the same content, or the same feed item.
pub(crate) const SAME_REPORT: &str = "SELECT id FROM reports WHERE content_hash = $1
    OR (source_guid IS NOT NULL AND source_ref = $2 AND source_guid = $3) ORDER BY id LIMIT 1";

pub(crate) const SELECT_REPORTS: &str =
    "SELECT id, slug, title, meeting_date, summary, body_markdown, source_kind,
    source_ref, source_guid, source_link, content_hash, published_at, created_at FROM reports";

impl TryFrom<ReportRow> for Report {
    type Error = StoreError;

    fn try_from(r: ReportRow) -> Result<Self, StoreError> {
        let corrupt =
            || StoreError::Unavailable(format!("the stored report {} has a corrupt source", r.id));
        let source = match r.source_kind.as_str() {
            "file" => ReportSource::File {
                path: r.source_ref.clone().ok_or_else(corrupt)?,
            },
            "paste" => ReportSource::Paste,
            "url" => ReportSource::Url {
                url: r.source_ref.clone().ok_or_else(corrupt)?,
            },
            "feed" => ReportSource::Feed {
                feed_url: r.source_ref.clone().ok_or_else(corrupt)?,
                guid: r.source_guid.clone().ok_or_else(corrupt)?,
                link: r.source_link.clone(),
            },
            _ => return Err(corrupt()),
        };
        Ok(Report {
            id: r.id,
            slug: r.slug,
            title: r.title,
            meeting_date: r.meeting_date,
            summary: r.summary,
            body_markdown: r.body_markdown,
            source,
            content_hash: r.content_hash,
            published_at: r.published_at,
            created_at: r.created_at,
        })
    }
}

/// The columns a source is stored in: (ref, guid, link).
pub(crate) fn source_columns(source: &ReportSource) -> (Option<&str>, Option<&str>, Option<&str>) {
    match source {
        ReportSource::File { path } => (Some(path), None, None),
        ReportSource::Paste => (None, None, None),
        ReportSource::Url { url } => (Some(url), None, None),
        ReportSource::Feed {
            feed_url,
            guid,
            link,
        } => (Some(feed_url), Some(guid), link.as_deref()),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SourceRow {
    pub id: i64,
    pub url: String,
    pub category: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn source(row: SourceRow, slugs: Vec<String>) -> Result<Source, StoreError> {
    Ok(Source {
        id: row.id,
        url: row.url,
        category: row.category,
        lists: slugs
            .iter()
            .map(|s| ListSlug::parse(s).map_err(|e| StoreError::Unavailable(e.to_string())))
            .collect::<Result<_, _>>()?,
        etag: row.etag,
        last_modified: row.last_modified,
        last_checked_at: row.last_checked_at,
        last_error: row.last_error,
        created_at: row.created_at,
    })
}

/// Implements [`ReportStore`] and [`SourceStore`] for a store type whose
/// `pool` field is a `sqlx::Pool<$db>`.
macro_rules! impl_report_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn find_report(
                conn: &mut <$db as sqlx::Database>::Connection,
                which: &$crate::reports::ReportRef,
            ) -> Result<$crate::reports::Report, $crate::store::StoreError> {
                let query = match which {
                    $crate::reports::ReportRef::Id(id) => {
                        sqlx::query_as::<$db, $crate::reports::store::ReportRow>(&format!(
                            "{} WHERE id = $1",
                            $crate::reports::store::SELECT_REPORTS
                        ))
                        .bind(*id)
                        .fetch_optional(&mut *conn)
                        .await?
                    }
                    $crate::reports::ReportRef::Slug(slug) => {
                        sqlx::query_as::<$db, $crate::reports::store::ReportRow>(&format!(
                            "{} WHERE slug = $1",
                            $crate::reports::store::SELECT_REPORTS
                        ))
                        .bind(slug)
                        .fetch_optional(&mut *conn)
                        .await?
                    }
                };
                query
                    .ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no report {which}")))?
                    .try_into()
            }

            async fn source_lists(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: i64,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar::<$db, String>(
                    "SELECT l.slug FROM source_lists x JOIN lists l ON l.id = x.list_id
                      WHERE x.source_id = $1 ORDER BY l.slug",
                )
                .bind(id)
                .fetch_all(&mut *conn)
                .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::reports::ReportStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(title = %draft.title))]
            async fn insert_report(
                &self,
                draft: &$crate::reports::ReportDraft,
            ) -> Result<$crate::reports::store::Stored, $crate::store::StoreError> {
                use $crate::reports::store::Stored;
                let hash = draft.content_hash();
                let (source_ref, guid, link) = $crate::reports::store::source_columns(&draft.source);
                let mut tx = self.begin_write().await?;
                let existing: Option<i64> = sqlx::query_scalar::<$db, i64>($crate::reports::store::SAME_REPORT)
                    .bind(&hash)
                    .bind(source_ref)
                    .bind(guid)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(id) = existing {
                    let report = Self::find_report(&mut tx, &$crate::reports::ReportRef::Id(id)).await?;
                    return Ok(Stored::Duplicate(report));
                }
                let base = $crate::reports::slugify(&draft.title);
                let taken: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT slug FROM reports WHERE slug = $1 OR slug LIKE $2",
                )
                .bind(&base)
                .bind(format!("{base}-%"))
                .fetch_all(&mut *tx)
                .await?;
                let slug = (1..)
                    .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
                    .find(|s| !taken.contains(s))
                    .expect("some suffix is free");
                let now = chrono::Utc::now();
                let inserted = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO reports (slug, title, meeting_date, summary, body_markdown, source_kind, source_ref,
                                          source_guid, source_link, content_hash, published_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                )
                .bind(&slug)
                .bind(&draft.title)
                .bind(draft.meeting_date)
                .bind(draft.summary.as_deref())
                .bind(&draft.body_markdown)
                .bind(draft.source.kind())
                .bind(source_ref)
                .bind(guid)
                .bind(link)
                .bind(&hash)
                .bind(draft.published_at.unwrap_or(now))
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
                let id = match inserted {
                    Ok(id) => id,
                    Err(e) if $crate::store::error::is_unique_violation(&e) => {
                        // Another process stored the same report, or took its slug, meanwhile.
                        drop(tx);
                        let existing: Option<i64> = sqlx::query_scalar::<$db, i64>($crate::reports::store::SAME_REPORT)
                            .bind(&hash)
                            .bind(source_ref)
                            .bind(guid)
                            .fetch_optional(&self.pool)
                            .await?;
                        return match existing {
                            Some(id) => Ok(Stored::Duplicate(self.report(&$crate::reports::ReportRef::Id(id)).await?)),
                            None => Err($crate::store::StoreError::Conflict(format!(
                                "another report took the slug {slug:?} at the same moment; import it again"
                            ))),
                        };
                    }
                    Err(e) => return Err(e.into()),
                };
                let report = Self::find_report(&mut tx, &$crate::reports::ReportRef::Id(id)).await?;
                tx.commit().await?;
                Ok(Stored::New(report))
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn reports(&self) -> Result<Vec<$crate::reports::Report>, $crate::store::StoreError> {
                sqlx::query_as::<$db, $crate::reports::store::ReportRow>(&format!(
                    "{} ORDER BY published_at DESC, id DESC",
                    $crate::reports::store::SELECT_REPORTS
                ))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
            async fn report(
                &self,
                which: &$crate::reports::ReportRef,
            ) -> Result<$crate::reports::Report, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::find_report(&mut conn, which).await
            }

            #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
            async fn delete_report(
                &self,
                which: &$crate::reports::ReportRef,
                force: bool,
            ) -> Result<$crate::reports::Report, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let report = Self::find_report(&mut tx, which).await?;
                let campaigns: i64 = sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM campaigns WHERE report_id = $1")
                    .bind(report.id)
                    .fetch_one(&mut *tx)
                    .await?;
                if campaigns > 0 && !force {
                    return Err($crate::store::StoreError::Refused(format!(
                        "report {} is used by {campaigns} campaign(s); use --force to delete it and them",
                        report.slug
                    )));
                }
                sqlx::query::<$db>("DELETE FROM reports WHERE id = $1").bind(report.id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(report)
            }
        }

        #[async_trait::async_trait]
        impl $crate::reports::SourceStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(url = %new.url))]
            async fn add_source(
                &self,
                new: &$crate::reports::NewSource,
            ) -> Result<$crate::reports::Source, $crate::store::StoreError> {
                use $crate::store::StoreError;
                let mut tx = self.begin_write().await?;
                let list_ids: Vec<i64> = Self::resolve_lists(&mut tx, &new.lists).await?.into_iter().map(|(id, _)| id).collect();
                let inserted = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO sources (url, category, created_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&new.url)
                .bind(new.category.as_deref())
                .bind(chrono::Utc::now())
                .fetch_one(&mut *tx)
                .await;
                let id = match inserted {
                    Err(e) if $crate::store::error::is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(format!("the feed {} is already a source", new.url)));
                    }
                    other => other?,
                };
                for list_id in list_ids {
                    sqlx::query::<$db>(
                        "INSERT INTO source_lists (source_id, list_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(list_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let row = sqlx::query_as::<$db, $crate::reports::store::SourceRow>("SELECT * FROM sources WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                let slugs = Self::source_lists(&mut tx, id).await?;
                tx.commit().await?;
                $crate::reports::store::source(row, slugs)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn sources(&self) -> Result<Vec<$crate::reports::Source>, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                let rows = sqlx::query_as::<$db, $crate::reports::store::SourceRow>("SELECT * FROM sources ORDER BY id")
                    .fetch_all(&mut *conn)
                    .await?;
                let mut sources = Vec::with_capacity(rows.len());
                for row in rows {
                    let slugs = Self::source_lists(&mut conn, row.id).await?;
                    sources.push($crate::reports::store::source(row, slugs)?);
                }
                Ok(sources)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(source = id))]
            async fn remove_source(&self, id: i64) -> Result<$crate::reports::Source, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<$db, $crate::reports::store::SourceRow>("SELECT * FROM sources WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no source {id}")))?;
                let slugs = Self::source_lists(&mut tx, id).await?;
                sqlx::query::<$db>("DELETE FROM sources WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                $crate::reports::store::source(row, slugs)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(source = id))]
            async fn record_fetch(
                &self,
                id: i64,
                record: &$crate::reports::store::FetchRecord,
            ) -> Result<(), $crate::store::StoreError> {
                let now = chrono::Utc::now();
                if record.error.is_some() {
                    sqlx::query::<$db>("UPDATE sources SET last_checked_at = $1, last_error = $2 WHERE id = $3")
                        .bind(now)
                        .bind(record.error.as_deref())
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                } else {
                    sqlx::query::<$db>(
                        "UPDATE sources SET last_checked_at = $1, last_error = NULL, etag = $2, last_modified = $3
                          WHERE id = $4",
                    )
                    .bind(now)
                    .bind(record.etag.as_deref())
                    .bind(record.last_modified.as_deref())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_report_store;
