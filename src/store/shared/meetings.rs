//! Meetings, for both backends: compiled into each (see [`crate::store`]).

use chrono::{DateTime, NaiveDate, Utc};

use sqlx::AssertSqlSafe;

use super::Db;
use crate::error::StoreError;
use crate::meetings::{LinkedReport, Meeting, MeetingStore};
use crate::store::SqlStore;
use crate::store::error::is_unique_violation;

#[derive(sqlx::FromRow)]
struct MeetingRow {
    id: i64,
    held_on: NaiveDate,
    title: Option<String>,
    report_id: Option<i64>,
    report_slug: Option<String>,
    report_title: Option<String>,
    overdue_notice_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
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

const SELECT_MEETINGS: &str = "SELECT m.id, m.held_on, m.title, m.report_id,
    r.slug AS report_slug, r.title AS report_title, m.overdue_notice_at, m.created_at
    FROM meetings m LEFT JOIN reports r ON r.id = m.report_id";

/// The report that covers the meeting held on `$1`: the one dated for it
/// that covers no meeting yet.
const REPORT_DATED_FOR_MEETING: &str = "SELECT r.id FROM reports r
    WHERE r.meeting_date = $1 AND NOT EXISTS (SELECT 1 FROM meetings o WHERE o.report_id = r.id)
    ORDER BY r.published_at, r.id LIMIT 1";

/// Otherwise, the first undated report published from `$1`, the start of
/// the meeting's day.
const REPORT_PUBLISHED_AFTER_MEETING: &str = "SELECT r.id FROM reports r
    WHERE r.meeting_date IS NULL AND r.published_at >= $1
      AND NOT EXISTS (SELECT 1 FROM meetings o WHERE o.report_id = r.id)
    ORDER BY r.published_at, r.id LIMIT 1";

impl SqlStore<Db> {
    pub(super) async fn load_meeting(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
    ) -> Result<Meeting, StoreError> {
        sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} WHERE m.id = $1",
            SELECT_MEETINGS
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .map(Into::into)
        .ok_or_else(|| StoreError::not_found(format_args!("there is no meeting {id}")))
    }
}

#[async_trait::async_trait]
impl MeetingStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(%held_on))]
    async fn add_meeting(
        &self,
        held_on: NaiveDate,
        title: Option<&str>,
    ) -> Result<Meeting, StoreError> {
        let turn = self.turn().await;
        let inserted = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO meetings (held_on, title, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(held_on)
        .bind(title)
        .bind(Utc::now())
        .fetch_one(&self.pool)
        .await;
        drop(turn);
        let id = match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a meeting on {held_on} is already recorded"
                )));
            }
            other => other?,
        };
        let mut conn = self.pool.acquire().await?;
        Self::load_meeting(&mut conn, id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn meetings(&self) -> Result<Vec<Meeting>, StoreError> {
        Ok(sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} ORDER BY m.held_on DESC",
            SELECT_MEETINGS
        )))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn link_reports(&self) -> Result<Vec<Meeting>, StoreError> {
        let mut tx = self.begin_write().await?;
        let unlinked = sqlx::query_as::<Db, (i64, NaiveDate)>(
            "SELECT id, held_on FROM meetings WHERE report_id IS NULL ORDER BY held_on",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut linked = Vec::new();
        for (id, held_on) in unlinked {
            let dated = sqlx::query_scalar::<Db, i64>(REPORT_DATED_FOR_MEETING)
                .bind(held_on)
                .fetch_optional(&mut *tx)
                .await?;
            let report = match dated {
                Some(report) => Some(report),
                None => {
                    sqlx::query_scalar::<Db, i64>(REPORT_PUBLISHED_AFTER_MEETING)
                        .bind(held_on.and_time(chrono::NaiveTime::MIN).and_utc())
                        .fetch_optional(&mut *tx)
                        .await?
                }
            };
            let Some(report) = report else { continue };
            let updated = sqlx::query::<Db>(
                "UPDATE meetings SET report_id = $1 WHERE id = $2 AND report_id IS NULL",
            )
            .bind(report)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                continue;
            }
            sqlx::query::<Db>(
                "UPDATE reports SET meeting_date = $1 WHERE id = $2 AND meeting_date IS NULL",
            )
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
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError> {
        Ok(sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} WHERE m.report_id IS NULL AND m.overdue_notice_at IS NULL AND m.held_on <= $1
              ORDER BY m.held_on",
            SELECT_MEETINGS
        )))
        .bind(held_by)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(meeting = id))]
    async fn mark_overdue_notified(&self, id: i64) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        let updated = sqlx::query::<Db>("UPDATE meetings SET overdue_notice_at = $1 WHERE id = $2")
            .bind(Utc::now())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::not_found(format_args!(
                "there is no meeting {id}"
            )));
        }
        Ok(())
    }
}
