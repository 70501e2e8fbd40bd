//! Storage of meetings, shared by both backends through [`impl_meeting_store`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{LinkedReport, Meeting};
use crate::store::StoreError;

#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Records a meeting; a second meeting on the same date is refused (Conflict).
    async fn add_meeting(
        &self,
        held_on: NaiveDate,
        title: Option<&str>,
    ) -> Result<Meeting, StoreError>;
    /// Every meeting, the most recent first.
    async fn meetings(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Links meetings that have no report to the report that covers them (a
    /// report whose meeting date is the meeting's; otherwise the first report
    /// with no meeting date published on or after the meeting — for a pasted
    /// report, when it was imported), and gives that report the meeting's
    /// date when it had none. A report covers one meeting at most. Returns
    /// the meetings linked by this call.
    async fn link_reports(&self) -> Result<Vec<Meeting>, StoreError>;
    /// Meetings held on or before `held_by` that still have no report and
    /// whose overdue notice was not sent yet.
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError>;
    /// Records that the overdue notice for meeting `id` was sent.
    async fn mark_overdue_notified(&self, id: i64) -> Result<(), StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct MeetingRow {
    pub id: i64,
    pub held_on: NaiveDate,
    pub title: Option<String>,
    pub report_id: Option<i64>,
    pub report_slug: Option<String>,
    pub report_title: Option<String>,
    pub overdue_notice_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<MeetingRow> for Meeting {
    fn from(row: MeetingRow) -> Self {
        let report = match (row.report_id, row.report_slug, row.report_title) {
            (Some(id), Some(slug), Some(title)) => Some(LinkedReport { id, slug, title }),
            _ => None,
        };
        Meeting {
            id: row.id,
            held_on: row.held_on,
            title: row.title,
            report,
            overdue_notice_at: row.overdue_notice_at,
            created_at: row.created_at,
        }
    }
}

pub(crate) const SELECT_MEETINGS: &str = "SELECT m.id, m.held_on, m.title, m.report_id,
    r.slug AS report_slug, r.title AS report_title, m.overdue_notice_at, m.created_at
    FROM meetings m LEFT JOIN reports r ON r.id = m.report_id";

/// The report that covers the meeting held on `$1`: the one dated for it
/// that covers no meeting yet.
pub(crate) const REPORT_DATED_FOR_MEETING: &str = "SELECT r.id FROM reports r
    WHERE r.meeting_date = $1 AND NOT EXISTS (SELECT 1 FROM meetings o WHERE o.report_id = r.id)
    ORDER BY r.published_at, r.id LIMIT 1";

/// Otherwise, the first undated report published from `$1`, the start of
/// the meeting's day.
pub(crate) const REPORT_PUBLISHED_AFTER_MEETING: &str = "SELECT r.id FROM reports r
    WHERE r.meeting_date IS NULL AND r.published_at >= $1
      AND NOT EXISTS (SELECT 1 FROM meetings o WHERE o.report_id = r.id)
    ORDER BY r.published_at, r.id LIMIT 1";

/// Implements [`MeetingStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>` and which implements [`crate::store::Dialect`].
macro_rules! impl_meeting_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn load_meeting(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: i64,
            ) -> Result<$crate::meetings::Meeting, $crate::store::StoreError> {
                sqlx::query_as::<$db, $crate::meetings::store::MeetingRow>(&format!(
                    "{} WHERE m.id = $1",
                    $crate::meetings::store::SELECT_MEETINGS
                ))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .map(Into::into)
                .ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no meeting {id}")))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meetings::MeetingStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(%held_on))]
            async fn add_meeting(
                &self,
                held_on: chrono::NaiveDate,
                title: Option<&str>,
            ) -> Result<$crate::meetings::Meeting, $crate::store::StoreError> {
                let inserted = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO meetings (held_on, title, created_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(held_on)
                .bind(title)
                .bind(chrono::Utc::now())
                .fetch_one(&self.pool)
                .await;
                let id = match inserted {
                    Err(e) if $crate::store::error::is_unique_violation(&e) => {
                        return Err($crate::store::StoreError::Conflict(format!(
                            "a meeting on {held_on} is already recorded"
                        )));
                    }
                    other => other?,
                };
                let mut conn = self.pool.acquire().await?;
                Self::load_meeting(&mut conn, id).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn meetings(&self) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                Ok(sqlx::query_as::<$db, $crate::meetings::store::MeetingRow>(&format!(
                    "{} ORDER BY m.held_on DESC",
                    $crate::meetings::store::SELECT_MEETINGS
                ))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn link_reports(&self) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let unlinked = sqlx::query_as::<$db, (i64, chrono::NaiveDate)>(
                    "SELECT id, held_on FROM meetings WHERE report_id IS NULL ORDER BY held_on",
                )
                .fetch_all(&mut *tx)
                .await?;
                let mut linked = Vec::new();
                for (id, held_on) in unlinked {
                    let dated = sqlx::query_scalar::<$db, i64>($crate::meetings::store::REPORT_DATED_FOR_MEETING)
                        .bind(held_on)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let report = match dated {
                        Some(report) => Some(report),
                        None => {
                            sqlx::query_scalar::<$db, i64>($crate::meetings::store::REPORT_PUBLISHED_AFTER_MEETING)
                                .bind(held_on.and_time(chrono::NaiveTime::MIN).and_utc())
                                .fetch_optional(&mut *tx)
                                .await?
                        }
                    };
                    let Some(report) = report else { continue };
                    let updated = sqlx::query::<$db>("UPDATE meetings SET report_id = $1 WHERE id = $2 AND report_id IS NULL")
                        .bind(report)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if updated == 0 {
                        continue;
                    }
                    sqlx::query::<$db>("UPDATE reports SET meeting_date = $1 WHERE id = $2 AND meeting_date IS NULL")
                        .bind(held_on)
                        .bind(report)
                        .execute(&mut *tx)
                        .await?;
                    linked.push(Self::load_meeting(&mut tx, id).await?);
                }
                tx.commit().await?;
                Ok(linked)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(%held_by))]
            async fn overdue_meetings(
                &self,
                held_by: chrono::NaiveDate,
            ) -> Result<Vec<$crate::meetings::Meeting>, $crate::store::StoreError> {
                Ok(sqlx::query_as::<$db, $crate::meetings::store::MeetingRow>(&format!(
                    "{} WHERE m.report_id IS NULL AND m.overdue_notice_at IS NULL AND m.held_on <= $1
                      ORDER BY m.held_on",
                    $crate::meetings::store::SELECT_MEETINGS
                ))
                .bind(held_by)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            }

            #[tracing::instrument(level = "debug", skip_all, fields(meeting = id))]
            async fn mark_overdue_notified(&self, id: i64) -> Result<(), $crate::store::StoreError> {
                let updated = sqlx::query::<$db>("UPDATE meetings SET overdue_notice_at = $1 WHERE id = $2")
                    .bind(chrono::Utc::now())
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return Err($crate::store::StoreError::not_found(format_args!("there is no meeting {id}")));
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_meeting_store;
