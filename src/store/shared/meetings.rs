//! Meetings, for both backends: compiled into each (see [`crate::store`]).

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use sqlx::AssertSqlSafe;

use super::Db;
use crate::error::StoreError;
use crate::meetings::{
    Imported, LinkBasis, LinkRules, LinkedReport, Meeting, MeetingLink, MeetingStore, NewMeeting,
    OPENING_CHARS, ReportFacts, assign,
};
use crate::store::error::is_unique_violation;
use crate::store::{Dialect, SqlStore};

#[derive(sqlx::FromRow)]
struct MeetingRow {
    id: i64,
    held_on: NaiveDate,
    title: Option<String>,
    report_id: Option<i64>,
    report_slug: Option<String>,
    report_title: Option<String>,
    linked_by: Option<String>,
    overdue_notice_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// Why meeting `id`'s report is linked, from its `linked_by`.
fn link_basis(id: i64, linked_by: Option<&str>) -> Result<LinkBasis, StoreError> {
    linked_by
        .unwrap_or_default()
        .parse()
        .map_err(|e| StoreError::corrupt(format_args!("the report link of meeting {id}"), e))
}

impl TryFrom<MeetingRow> for Meeting {
    type Error = StoreError;

    fn try_from(row: MeetingRow) -> Result<Self, StoreError> {
        let report = match (row.report_id, row.report_slug, row.report_title) {
            (Some(id), Some(slug), Some(title)) => Some(LinkedReport {
                id,
                slug,
                title,
                linked_by: link_basis(row.id, row.linked_by.as_deref())?,
            }),
            _ => None,
        };
        Ok(Meeting {
            id: row.id,
            held_on: row.held_on,
            title: row.title,
            report,
            overdue_notice_at: row.overdue_notice_at,
            created_at: row.created_at,
        })
    }
}

const SELECT_MEETINGS: &str = "SELECT m.id, m.held_on, m.title, m.report_id,
    r.slug AS report_slug, r.title AS report_title, m.linked_by, m.overdue_notice_at,
    m.created_at FROM meetings m LEFT JOIN reports r ON r.id = m.report_id";

/// What linking reads of every report: the start of its body, not all of it.
const REPORT_FACTS: &str = "SELECT id, title, meeting_date, substr(body_markdown, 1, $1),
    published_at FROM reports";

const SET_LINK: &str = "UPDATE meetings SET report_id = $1, linked_by = $2 WHERE id = $3";

const CLEAR_LINK: &str = "UPDATE meetings SET report_id = NULL, linked_by = NULL WHERE id = $1";

impl SqlStore<Db> {
    async fn load_meeting(
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
        .ok_or_else(|| StoreError::not_found(format_args!("there is no meeting {id}")))?
        .try_into()
    }

    async fn meeting_held_on(
        conn: &mut <Db as sqlx::Database>::Connection,
        held_on: NaiveDate,
    ) -> Result<Meeting, StoreError> {
        sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} WHERE m.held_on = $1",
            SELECT_MEETINGS
        )))
        .bind(held_on)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format_args!("there is no meeting on {held_on}")))?
        .try_into()
    }

    /// Serialises the transactions that link reports (see [`Dialect`]).
    async fn lock_meetings(
        conn: &mut <Db as sqlx::Database>::Connection,
    ) -> Result<(), StoreError> {
        if let Some(sql) = <Db as Dialect>::MEETINGS_LOCK {
            sqlx::query::<Db>(sql).execute(&mut *conn).await?;
        }
        Ok(())
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

    #[tracing::instrument(level = "debug", skip_all, fields(meetings = meetings.len()))]
    async fn import_meetings(&self, meetings: &[NewMeeting]) -> Result<Imported, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = Utc::now();
        let mut imported = Imported::default();
        for meeting in meetings {
            let added = sqlx::query::<Db>(
                "INSERT INTO meetings (held_on, title, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (held_on) DO NOTHING",
            )
            .bind(meeting.held_on)
            .bind(meeting.title.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 0 {
                imported.known += 1;
            } else {
                imported.added += 1;
            }
        }
        tx.commit().await?;
        Ok(imported)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn meetings(&self) -> Result<Vec<Meeting>, StoreError> {
        sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} ORDER BY m.held_on DESC",
            SELECT_MEETINGS
        )))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%held_on))]
    async fn remove_meeting(&self, held_on: NaiveDate) -> Result<Meeting, StoreError> {
        let mut tx = self.begin_write().await?;
        let meeting = Self::meeting_held_on(&mut tx, held_on).await?;
        sqlx::query::<Db>("DELETE FROM meetings WHERE id = $1")
            .bind(meeting.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(meeting)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%held_on, report = report))]
    async fn link_report(&self, held_on: NaiveDate, report: i64) -> Result<Meeting, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_meetings(&mut tx).await?;
        let meeting = Self::meeting_held_on(&mut tx, held_on).await?;
        sqlx::query_scalar::<Db, i64>("SELECT id FROM reports WHERE id = $1")
            .bind(report)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format_args!("there is no report {report}")))?;
        let elsewhere = sqlx::query_as::<Db, (i64, NaiveDate, Option<String>)>(
            "SELECT id, held_on, linked_by FROM meetings WHERE report_id = $1 AND id <> $2",
        )
        .bind(report)
        .bind(meeting.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((other, other_held_on, linked_by)) = elsewhere {
            if link_basis(other, linked_by.as_deref())? == LinkBasis::Hand {
                return Err(StoreError::Conflict(format!(
                    "that report is linked by hand to the meeting of {other_held_on}; \
                     unlink it from that meeting first"
                )));
            }
            sqlx::query::<Db>(CLEAR_LINK)
                .bind(other)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query::<Db>(
            "DELETE FROM meeting_unlinked_reports WHERE meeting_id = $1 AND report_id = $2",
        )
        .bind(meeting.id)
        .bind(report)
        .execute(&mut *tx)
        .await?;
        sqlx::query::<Db>(SET_LINK)
            .bind(report)
            .bind(LinkBasis::Hand.as_str())
            .bind(meeting.id)
            .execute(&mut *tx)
            .await?;
        let linked = Self::load_meeting(&mut tx, meeting.id).await?;
        tx.commit().await?;
        Ok(linked)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%held_on))]
    async fn unlink_report(&self, held_on: NaiveDate) -> Result<Meeting, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_meetings(&mut tx).await?;
        let meeting = Self::meeting_held_on(&mut tx, held_on).await?;
        let Some(report) = &meeting.report else {
            return Err(StoreError::Refused(format!(
                "the meeting of {held_on} has no report linked to it"
            )));
        };
        sqlx::query::<Db>(
            "INSERT INTO meeting_unlinked_reports (meeting_id, report_id) VALUES ($1, $2)
             ON CONFLICT (meeting_id, report_id) DO NOTHING",
        )
        .bind(meeting.id)
        .bind(report.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query::<Db>(CLEAR_LINK)
            .bind(meeting.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(meeting)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn link_reports(&self, rules: LinkRules) -> Result<Vec<Meeting>, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_meetings(&mut tx).await?;
        let current = sqlx::query_as::<Db, (i64, NaiveDate, Option<i64>, Option<String>)>(
            "SELECT id, held_on, report_id, linked_by FROM meetings",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, held_on, report, linked_by)| {
            let report = match report {
                Some(report) => Some((report, link_basis(id, linked_by.as_deref())?)),
                None => None,
            };
            Ok(MeetingLink {
                id,
                held_on,
                report,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let refused: HashSet<(i64, i64)> = sqlx::query_as::<Db, (i64, i64)>(
            "SELECT meeting_id, report_id FROM meeting_unlinked_reports",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let reports: Vec<ReportFacts> = sqlx::query_as::<
            Db,
            (i64, String, Option<NaiveDate>, String, DateTime<Utc>),
        >(REPORT_FACTS)
        .bind(OPENING_CHARS)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(
            |(id, title, meeting_date, opening, published_at)| ReportFacts {
                id,
                title,
                meeting_date,
                opening,
                published_at,
            },
        )
        .collect();
        let wanted = assign(&current, &reports, &refused, rules);
        let changed: Vec<&MeetingLink> = current
            .iter()
            .filter(|m| m.report != wanted.get(&m.id).copied())
            .collect();
        // Every changed link is cleared first, as a report may move from
        // one meeting to another and covers one at a time.
        for meeting in changed.iter().filter(|m| m.report.is_some()) {
            sqlx::query::<Db>(CLEAR_LINK)
                .bind(meeting.id)
                .execute(&mut *tx)
                .await?;
        }
        let mut linked = Vec::new();
        for meeting in changed {
            let Some((report, basis)) = wanted.get(&meeting.id) else {
                continue;
            };
            sqlx::query::<Db>(SET_LINK)
                .bind(*report)
                .bind(basis.as_str())
                .bind(meeting.id)
                .execute(&mut *tx)
                .await?;
            linked.push(Self::load_meeting(&mut tx, meeting.id).await?);
        }
        tx.commit().await?;
        Ok(linked)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%held_by))]
    async fn overdue_meetings(&self, held_by: NaiveDate) -> Result<Vec<Meeting>, StoreError> {
        sqlx::query_as::<Db, MeetingRow>(AssertSqlSafe(format!(
            "{} WHERE m.report_id IS NULL AND m.overdue_notice_at IS NULL AND m.held_on <= $1
              ORDER BY m.held_on",
            SELECT_MEETINGS
        )))
        .bind(held_by)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
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
