//! Reports, their archive and feed sources, for both backends: compiled
//! into each (see [`crate::store`]).

use chrono::{DateTime, NaiveDate, Utc};

use sqlx::AssertSqlSafe;

use super::Db;
use crate::error::StoreError;
use crate::lists::ListSlug;
use crate::reports::{
    ArchiveEntry, ArchiveStore, FetchRecord, ImportOptions, NewSource, Report, ReportDraft,
    ReportHistory, ReportRef, ReportSource, ReportStore, Revised, SamePost, SentBy, Source,
    SourceStore, Stored, is_opening_of, slug_candidates,
};
use crate::store::SqlStore;
use crate::store::error::is_unique_violation;

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: i64,
    slug: String,
    title: String,
    meeting_date: Option<NaiveDate>,
    summary: Option<String>,
    body_markdown: String,
    source_kind: String,
    source_ref: Option<String>,
    source_guid: Option<String>,
    source_link: Option<String>,
    content_hash: String,
    published_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    excerpt: bool,
}

/// The stored report of a feed item: (feed URL, guid).
const SAME_FEED_ITEM: &str =
    "SELECT id FROM reports WHERE source_ref = $1 AND source_guid = $2 ORDER BY id DESC LIMIT 1";

/// The newest stored report of the same title from the same file, page or
/// stdin: (kind, ref or NULL, title).
const SAME_TITLE_AND_SOURCE: &str = "SELECT id FROM reports
    WHERE source_guid IS NULL AND source_kind = $1 AND COALESCE(source_ref, '') = COALESCE($2, '')
      AND title = $3
    ORDER BY id DESC LIMIT 1";

/// The first campaign of a report (`$1`) that started sending it.
const SENT_BY: &str = "SELECT id, state FROM campaigns
    WHERE report_id = $1 AND started_at IS NOT NULL ORDER BY id LIMIT 1";

const SELECT_REPORTS: &str =
    "SELECT id, slug, title, meeting_date, summary, body_markdown, source_kind,
    source_ref, source_guid, source_link, content_hash, published_at, created_at, excerpt
    FROM reports";

/// The reports titled `$1` that are excerpts (`$2`) or complete, newest
/// first, as (id, body).
const WITH_TITLE: &str =
    "SELECT id, body_markdown FROM reports WHERE title = $1 AND excerpt = $2 ORDER BY id DESC";

impl TryFrom<ReportRow> for Report {
    type Error = StoreError;

    fn try_from(r: ReportRow) -> Result<Self, StoreError> {
        let corrupt =
            || StoreError::corrupt(format_args!("the source of report {}", r.id), "missing");
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
            excerpt: r.excerpt,
        })
    }
}

/// The columns a source is stored in: (ref, guid, link).
fn source_columns(source: &ReportSource) -> (Option<&str>, Option<&str>, Option<&str>) {
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
struct SourceRow {
    id: i64,
    url: String,
    category: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    last_checked_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

fn source(row: SourceRow, slugs: Vec<String>) -> Result<Source, StoreError> {
    Ok(Source {
        id: row.id,
        url: row.url,
        category: row.category,
        lists: slugs
            .iter()
            .map(|s| {
                ListSlug::parse(s).map_err(|e| {
                    StoreError::corrupt(format_args!("the lists of source {}", row.id), e)
                })
            })
            .collect::<Result<_, _>>()?,
        etag: row.etag,
        last_modified: row.last_modified,
        last_checked_at: row.last_checked_at,
        last_error: row.last_error,
        created_at: row.created_at,
    })
}

#[derive(sqlx::FromRow)]
struct ArchiveRow {
    slug: String,
    title: String,
    meeting_date: Option<NaiveDate>,
    summary: Option<String>,
    sent_at: DateTime<Utc>,
}

/// Sent reports, each with the start of its first campaign.
const SELECT_ARCHIVE: &str = "
    SELECT r.slug, r.title, r.meeting_date, r.summary, MIN(c.started_at) AS sent_at
      FROM reports r JOIN campaigns c ON c.report_id = r.id
     WHERE c.state IN ('sending', 'done') AND c.started_at IS NOT NULL
     GROUP BY r.id, r.slug, r.title, r.meeting_date, r.summary
     ORDER BY sent_at DESC, r.id DESC";

/// The condition that a report (of `SELECT_REPORTS`) has been sent.
const WHERE_SENT: &str = " WHERE slug = $1 AND id IN
    (SELECT report_id FROM campaigns WHERE state IN ('sending', 'done') AND started_at IS NOT NULL)";

impl SqlStore<Db> {
    pub(super) async fn find_report(
        conn: &mut <Db as sqlx::Database>::Connection,
        which: &ReportRef,
    ) -> Result<Report, StoreError> {
        let query = match which {
            ReportRef::Id(id) => {
                sqlx::query_as::<Db, ReportRow>(AssertSqlSafe(format!(
                    "{} WHERE id = $1",
                    SELECT_REPORTS
                )))
                .bind(*id)
                .fetch_optional(&mut *conn)
                .await?
            }
            ReportRef::Slug(slug) => {
                sqlx::query_as::<Db, ReportRow>(AssertSqlSafe(format!(
                    "{} WHERE slug = $1",
                    SELECT_REPORTS
                )))
                .bind(slug)
                .fetch_optional(&mut *conn)
                .await?
            }
        };
        query
            .ok_or_else(|| StoreError::not_found(format_args!("there is no report {which}")))?
            .try_into()
    }

    /// The stored report of the same post as `draft`: see [`SamePost`].
    async fn same_post(
        conn: &mut <Db as sqlx::Database>::Connection,
        draft: &ReportDraft,
    ) -> Result<Option<i64>, StoreError> {
        let (source_ref, guid, _) = source_columns(&draft.source);
        let query = match guid {
            Some(guid) => sqlx::query_scalar::<Db, i64>(SAME_FEED_ITEM)
                .bind(source_ref)
                .bind(guid),
            None => sqlx::query_scalar::<Db, i64>(SAME_TITLE_AND_SOURCE)
                .bind(draft.source.kind())
                .bind(source_ref)
                .bind(&draft.title),
        };
        Ok(query.fetch_optional(&mut *conn).await?)
    }

    /// The stored report of the same post as `draft` by its text, from any
    /// source: the same title, and for an excerpt the complete report it
    /// begins, for a complete post the stored excerpt that begins it.
    async fn same_text(
        conn: &mut <Db as sqlx::Database>::Connection,
        draft: &ReportDraft,
    ) -> Result<Option<i64>, StoreError> {
        let excerpt = draft.excerpt.is_some();
        let others = sqlx::query_as::<Db, (i64, String)>(WITH_TITLE)
            .bind(&draft.title)
            .bind(!excerpt)
            .fetch_all(&mut *conn)
            .await?;
        Ok(others
            .into_iter()
            .find(|(_, body)| match excerpt {
                true => is_opening_of(&draft.body_markdown, body),
                false => is_opening_of(body, &draft.body_markdown),
            })
            .map(|(id, _)| id))
    }

    /// The report stored with the content hash `hash`, if any.
    async fn with_hash(
        conn: &mut <Db as sqlx::Database>::Connection,
        hash: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar::<Db, i64>("SELECT id FROM reports WHERE content_hash = $1")
                .bind(hash)
                .fetch_optional(&mut *conn)
                .await?,
        )
    }

    async fn sent_by(
        conn: &mut <Db as sqlx::Database>::Connection,
        report: i64,
    ) -> Result<Option<SentBy>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as::<Db, (i64, String)>(SENT_BY)
            .bind(report)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|(campaign, state)| SentBy { campaign, state }))
    }

    /// The first slug free for a new report titled `title`.
    async fn free_slug(
        conn: &mut <Db as sqlx::Database>::Connection,
        title: &str,
    ) -> Result<String, StoreError> {
        for slug in slug_candidates(title) {
            if Self::slug_owner(conn, &slug).await?.is_none() {
                return Ok(slug);
            }
        }
        Err(StoreError::Conflict(format!(
            "every slug for {title:?} is taken; give one with --slug"
        )))
    }

    /// The id of the report with `slug`, if any.
    async fn slug_owner(
        conn: &mut <Db as sqlx::Database>::Connection,
        slug: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar::<Db, i64>("SELECT id FROM reports WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&mut *conn)
                .await?,
        )
    }

    /// Gives `report` the text of `text`, keeping its old text as an earlier
    /// version: see [`ReportStore::revise_report`].
    async fn revise(
        conn: &mut <Db as sqlx::Database>::Connection,
        report: Report,
        text: &ReportDraft,
        after_send: bool,
    ) -> Result<Revised, StoreError> {
        let hash = text.content_hash();
        if hash == report.content_hash
            && text.meeting_date == report.meeting_date
            && text.summary == report.summary
            && text.excerpt.is_some() == report.excerpt
        {
            return Ok(Revised::Unchanged(report));
        }
        if !after_send && let Some(sent_by) = Self::sent_by(conn, report.id).await? {
            return Err(StoreError::Refused(sent_by.refusal(&report)));
        }
        let same_text = || {
            StoreError::Conflict(format!(
                "that text is already stored as another report, so report {} keeps its own",
                report.id
            ))
        };
        if let Some(other) = Self::with_hash(conn, &hash).await?
            && other != report.id
        {
            let other = Self::find_report(conn, &ReportRef::Id(other)).await?;
            return Err(StoreError::Conflict(format!(
                "that text is already stored as report {} {}, so report {} keeps its own",
                other.id, other.slug, report.id
            )));
        }
        sqlx::query::<Db>(
            "INSERT INTO report_versions
                 (report_id, title, meeting_date, summary, body_markdown, content_hash, replaced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(report.id)
        .bind(&report.title)
        .bind(report.meeting_date)
        .bind(report.summary.as_deref())
        .bind(&report.body_markdown)
        .bind(&report.content_hash)
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?;
        let updated = sqlx::query::<Db>(
            "UPDATE reports SET title = $1, meeting_date = $2, summary = $3, body_markdown = $4,
                                content_hash = $5, excerpt = $6
              WHERE id = $7",
        )
        .bind(&text.title)
        .bind(text.meeting_date)
        .bind(text.summary.as_deref())
        .bind(&text.body_markdown)
        .bind(&hash)
        .bind(text.excerpt.is_some())
        .bind(report.id)
        .execute(&mut *conn)
        .await;
        match updated {
            Err(e) if is_unique_violation(&e) => return Err(same_text()),
            other => other?,
        };
        let revised = Self::find_report(conn, &ReportRef::Id(report.id)).await?;
        Ok(Revised::Updated(revised))
    }

    pub(super) async fn source_lists(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<Db, String>(
            "SELECT l.slug FROM source_lists x JOIN lists l ON l.id = x.list_id
              WHERE x.source_id = $1 ORDER BY l.slug",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?)
    }
}

#[async_trait::async_trait]
impl ReportStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(title = %draft.title))]
    async fn insert_report(
        &self,
        draft: &ReportDraft,
        options: &ImportOptions,
    ) -> Result<Stored, StoreError> {
        let hash = draft.content_hash();
        let (source_ref, guid, link) = source_columns(&draft.source);
        let mut tx = self.begin_write().await?;
        let same_post = match Self::same_post(&mut tx, draft).await? {
            None if draft.excerpt.is_none() => Self::same_text(&mut tx, draft).await?,
            same_post => same_post,
        };
        let stored_before = match same_post {
            Some(id) => Some(id),
            None => match Self::with_hash(&mut tx, &hash).await? {
                None if draft.excerpt.is_some() => Self::same_text(&mut tx, draft).await?,
                stored => stored,
            },
        };
        if let Some(id) = stored_before {
            let report = Self::find_report(&mut tx, &ReportRef::Id(id)).await?;
            if let Some(slug) = options.slug.as_ref().filter(|s| **s != report.slug) {
                return Err(StoreError::Refused(format!(
                    "this is report {} {}, stored already, which keeps its slug: \
                     it cannot become {slug}",
                    report.id, report.slug
                )));
            }
            // An excerpt never replaces its complete post, and the complete
            // post replaces its stored excerpt even where a post is kept, unless
            // the excerpt was sent.
            let completes = report.excerpt && draft.excerpt.is_none();
            let update = match options.same_post {
                _ if draft.excerpt.is_some() && !report.excerpt => None,
                SamePost::Update { after_send } => Some(after_send),
                SamePost::Keep
                    if completes && Self::sent_by(&mut tx, report.id).await?.is_none() =>
                {
                    Some(false)
                }
                SamePost::Keep => None,
            };
            return match (same_post, update) {
                (Some(_), Some(after_send)) => {
                    let text = draft.clone().keeping_details_of(&report);
                    let revised = Self::revise(&mut tx, report, &text, after_send).await?;
                    tx.commit().await?;
                    Ok(match revised {
                        Revised::Updated(report) => Stored::Updated(report),
                        Revised::Unchanged(report) => Stored::Duplicate(report),
                    })
                }
                _ => Ok(Stored::Duplicate(report)),
            };
        }
        let slug = match &options.slug {
            Some(slug) => match Self::slug_owner(&mut tx, slug).await? {
                Some(owner) => {
                    return Err(StoreError::Conflict(format!(
                        "the slug {slug} is taken by report {owner}; give another with --slug"
                    )));
                }
                None => slug.clone(),
            },
            None => Self::free_slug(&mut tx, &draft.title).await?,
        };
        let now = Utc::now();
        let inserted = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO reports (slug, title, meeting_date, summary, body_markdown, source_kind, source_ref,
                                  source_guid, source_link, content_hash, published_at, created_at,
                                  excerpt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
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
        .bind(draft.excerpt.is_some())
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                // Another process stored the same report, or took its slug, meanwhile.
                drop(tx);
                let mut conn = self.pool.acquire().await?;
                let existing = match Self::same_post(&mut conn, draft).await? {
                    Some(id) => Some(id),
                    None => Self::with_hash(&mut conn, &hash).await?,
                };
                return match existing {
                    Some(id) => Ok(Stored::Duplicate(
                        Self::find_report(&mut conn, &ReportRef::Id(id)).await?,
                    )),
                    None => Err(StoreError::Conflict(format!(
                        "another report took the slug {slug:?} at the same moment; import it again"
                    ))),
                };
            }
            Err(e) => return Err(e.into()),
        };
        let report = Self::find_report(&mut tx, &ReportRef::Id(id)).await?;
        tx.commit().await?;
        Ok(Stored::New(report))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
    async fn revise_report(
        &self,
        which: &ReportRef,
        text: &ReportDraft,
        after_send: bool,
    ) -> Result<Revised, StoreError> {
        let mut tx = self.begin_write().await?;
        let report = Self::find_report(&mut tx, which).await?;
        let revised = Self::revise(&mut tx, report, text, after_send).await?;
        tx.commit().await?;
        Ok(revised)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reports(&self) -> Result<Vec<Report>, StoreError> {
        sqlx::query_as::<Db, ReportRow>(AssertSqlSafe(format!(
            "{} ORDER BY published_at DESC, id DESC",
            SELECT_REPORTS
        )))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%feed_url, %guid))]
    async fn feed_item_report(
        &self,
        feed_url: &str,
        guid: &str,
    ) -> Result<Option<Report>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let id = sqlx::query_scalar::<Db, i64>(SAME_FEED_ITEM)
            .bind(feed_url)
            .bind(guid)
            .fetch_optional(&mut *conn)
            .await?;
        match id {
            Some(id) => Self::find_report(&mut conn, &ReportRef::Id(id))
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
    async fn report(&self, which: &ReportRef) -> Result<Report, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::find_report(&mut conn, which).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
    async fn report_history(&self, which: &ReportRef) -> Result<ReportHistory, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let report = Self::find_report(&mut conn, which).await?;
        let earlier_versions = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM report_versions WHERE report_id = $1",
        )
        .bind(report.id)
        .fetch_one(&mut *conn)
        .await?;
        let sent_by = Self::sent_by(&mut conn, report.id).await?;
        Ok(ReportHistory {
            report,
            earlier_versions,
            sent_by,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(report = %which))]
    async fn delete_report(&self, which: &ReportRef, force: bool) -> Result<Report, StoreError> {
        let mut tx = self.begin_write().await?;
        let report = Self::find_report(&mut tx, which).await?;
        let slug = &report.slug;
        let sent: Option<i64> = sqlx::query_scalar::<Db, i64>(
            "SELECT c.id FROM campaigns c JOIN deliveries d ON d.campaign_id = c.id
              WHERE c.report_id = $1
                AND (d.state NOT IN ('queued', 'skipped') OR d.attempts > 0 OR d.ambiguous > 0)
              ORDER BY c.id LIMIT 1",
        )
        .bind(report.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(campaign) = sent {
            return Err(StoreError::Refused(format!(
                "report {slug} is kept: campaign {campaign} sent it, and its deliveries are the \
                 record of who got what; to correct it, use `necmail report edit {slug} --after-send`"
            )));
        }
        let sending: Option<i64> = sqlx::query_scalar::<Db, i64>(
            "SELECT id FROM campaigns WHERE report_id = $1 AND state = 'sending' ORDER BY id LIMIT 1",
        )
        .bind(report.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(campaign) = sending {
            return Err(StoreError::Refused(format!(
                "campaign {campaign} is sending report {slug}: \
                 cancel it first with `necmail campaign cancel {campaign}`"
            )));
        }
        let campaigns: i64 =
            sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM campaigns WHERE report_id = $1")
                .bind(report.id)
                .fetch_one(&mut *tx)
                .await?;
        if campaigns > 0 && !force {
            return Err(StoreError::Refused(format!(
                "report {slug} is used by {campaigns} campaign(s), which sent nothing; \
                 use --force to delete it and them"
            )));
        }
        sqlx::query::<Db>("DELETE FROM reports WHERE id = $1")
            .bind(report.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }
}

#[async_trait::async_trait]
impl SourceStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(url = %new.url))]
    async fn add_source(&self, new: &NewSource, seen: &[String]) -> Result<Source, StoreError> {
        let mut tx = self.begin_write().await?;
        let list_ids: Vec<i64> = Self::resolve_lists(&mut tx, &new.lists)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let inserted = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO sources (url, category, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&new.url)
        .bind(new.category.as_deref())
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Err(e) if is_unique_violation(&e) => return Err(new.already_added()),
            other => other?,
        };
        for list_id in list_ids {
            sqlx::query::<Db>(
                "INSERT INTO source_lists (source_id, list_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(list_id)
            .execute(&mut *tx)
            .await?;
        }
        for guid in seen {
            sqlx::query::<Db>(
                "INSERT INTO source_seen_items (source_id, guid) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(guid)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query_as::<Db, SourceRow>("SELECT * FROM sources WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let slugs = Self::source_lists(&mut tx, id).await?;
        tx.commit().await?;
        source(row, slugs)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(source = id))]
    async fn seen_items(&self, id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<Db, String>(
            "SELECT guid FROM source_seen_items WHERE source_id = $1 ORDER BY guid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn sources(&self) -> Result<Vec<Source>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query_as::<Db, SourceRow>("SELECT * FROM sources ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
        let mut sources = Vec::with_capacity(rows.len());
        for row in rows {
            let slugs = Self::source_lists(&mut conn, row.id).await?;
            sources.push(source(row, slugs)?);
        }
        Ok(sources)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(source = id))]
    async fn remove_source(&self, id: i64) -> Result<Source, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<Db, SourceRow>("SELECT * FROM sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format_args!("there is no source {id}")))?;
        let slugs = Self::source_lists(&mut tx, id).await?;
        sqlx::query::<Db>("DELETE FROM sources WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        source(row, slugs)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(source = id))]
    async fn record_fetch(&self, id: i64, record: &FetchRecord) -> Result<(), StoreError> {
        let now = Utc::now();
        let _turn = self.turn().await;
        if record.error.is_some() {
            sqlx::query::<Db>(
                "UPDATE sources SET last_checked_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(now)
            .bind(record.error.as_deref())
            .bind(id)
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query::<Db>(
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

#[async_trait::async_trait]
impl ArchiveStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn archive(&self) -> Result<Vec<ArchiveEntry>, StoreError> {
        let rows = sqlx::query_as::<Db, ArchiveRow>(SELECT_ARCHIVE)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ArchiveEntry {
                slug: r.slug,
                title: r.title,
                meeting_date: r.meeting_date,
                summary: r.summary,
                sent_at: r.sent_at,
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn archived_report(&self, slug: &str) -> Result<Option<Report>, StoreError> {
        let sql = format!("{}{}", SELECT_REPORTS, WHERE_SENT);
        sqlx::query_as::<Db, ReportRow>(AssertSqlSafe(sql))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }
}
